#!/usr/bin/env bash
# One-shot, idempotent set-up of a fresh Debian/Ubuntu machine (as root) for serpens-harness:
#   system packages → Python virtualenv → C build → hugepages.
# Called by `make setup` (and so by `make test` and `make reproduce`). Safe to run again: each step checks
# whether it is already done. Prints what it did.
set -euo pipefail
cd "$(dirname "$0")/.."

HUGEPAGES="${HUGEPAGES:-1024}"            # 2 MiB pages (2 GiB); matches machine.hugepages in the defaults
HUGE_MOUNT="${HUGE_MOUNT:-/dev/hugepages}"
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# Debian package names; Ubuntu has the same ones.
APT_PACKAGES=(
  build-essential pkg-config meson ninja-build
  dpdk dpdk-dev libdpdk-dev libnuma-dev libpcap-dev   # DPDK 22.11 and what its pkg-config pulls in
  libjansson-dev                                       # JSON in the C parts (stream files, reports)
  libhiredis-dev redis-server                          # remote state for the Fission/SNF baselines
  libhyperscan-dev libssl-dev                          # IDS (Hyperscan) and VPN (OpenSSL EVP, AES-NI)
  openssh-server iproute2                              # testbed tests: sshd in network namespaces
  python3-venv
)

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: must run as root (apt-get, hugepages, DPDK); try: sudo make setup" >&2
    exit 1
  fi
}

install_packages() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    say "system packages: all present"
    return
  fi
  say "system packages: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # redis-server's package starts a system instance; the harness starts its own on free ports.
  if command -v systemctl >/dev/null && systemctl is-active -q redis-server 2>/dev/null; then
    systemctl stop redis-server || true
  fi
}

python_env() {
  if [ ! -x "$VENV/bin/python" ]; then
    say "python: creating $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    say "python: installing the harness and its dependencies into $VENV"
    if ! "$VENV/bin/pip" install -q -e '.[dev]' > "$VENV/pip.log" 2>&1; then
      cat "$VENV/pip.log" >&2
      echo "setup: pip install failed (log above, also in $VENV/pip.log)" >&2
      exit 1
    fi
    touch "$stamp"
  else
    say "python: $VENV up to date"
  fi
}

build_native() {
  if [ ! -f build/native/build.ninja ]; then
    say "C build: meson setup build/native"
    meson setup build/native native --buildtype=release >/dev/null
  fi
  say "C build: ninja -C build/native"
  ninja -C build/native >/dev/null
}

hugepages() {
  local nr_file=/proc/sys/vm/nr_hugepages
  local have
  have=$(cat "$nr_file")
  if [ "$have" -lt "$HUGEPAGES" ]; then
    echo "$HUGEPAGES" > "$nr_file"
    have=$(cat "$nr_file")
    say "hugepages: reserved $have x 2 MiB (asked for $HUGEPAGES)"
    if [ "$have" -lt "$HUGEPAGES" ]; then
      echo "setup: only $have hugepages could be reserved (memory fragmented?); DPDK runs may fail" >&2
    fi
  else
    say "hugepages: $have x 2 MiB reserved"
  fi
  if ! awk -v m="$HUGE_MOUNT" '$2 == m && $3 == "hugetlbfs" {found=1} END {exit !found}' /proc/mounts; then
    mkdir -p "$HUGE_MOUNT"
    mount -t hugetlbfs nodev "$HUGE_MOUNT"
    say "hugepages: mounted hugetlbfs at $HUGE_MOUNT"
  fi
}

need_root
case "${1:-all}" in
  packages) install_packages ;;
  python) python_env ;;
  build) build_native ;;
  hugepages) hugepages ;;
  all) install_packages; python_env; build_native; hugepages ;;
  *) echo "usage: $0 [all|packages|python|build|hugepages]" >&2; exit 2 ;;
esac
