"""Task ``packages``: the Debian packages a host's roles need, checked with dpkg-query; apt-get installs only
the missing ones (so a second run never calls apt). The lists are scripts/setup.sh's, split by role."""

from __future__ import annotations

import shlex

from testbed.inventory import Host
from testbed.remote import Remote
from testbed.runner import Context, Task

# what the shipped tree needs to build (meson configures the whole project, so every build host needs all
# of the build dependencies) and to run its tools
BUILD = ("build-essential", "pkg-config", "meson", "ninja-build", "dpdk", "dpdk-dev", "libdpdk-dev",
         "libnuma-dev", "libpcap-dev", "libjansson-dev", "libhiredis-dev", "libhyperscan-dev", "libssl-dev",
         "iproute2", "util-linux")
BY_ROLE = {
    "generator": BUILD,
    "gateway": BUILD,
    "worker": BUILD,
    "redis": ("redis-server",),
    "trex": ("python3",),
}
VENV = ("python3-venv",)   # only when provision makes the host's Python environment (no python: given)


def wanted(host: Host) -> list[str]:
    out: list[str] = []
    for role in host.roles:
        out += BY_ROLE[role]
    if host.python is None:
        out += VENV
    out += host.packages
    return list(dict.fromkeys(out))


def missing(r: Remote) -> list[str]:
    pkgs = wanted(r.host)
    if not pkgs:
        return []
    # one dpkg-query for all: a package dpkg has never heard of prints nothing for it
    out = r.run("dpkg-query -W -f='${Package} ${Status}\\n' " + " ".join(shlex.quote(p) for p in pkgs)
                + " 2>/dev/null", check=False, what="dpkg-query")[1]
    installed = {ln.split()[0].split(":")[0] for ln in out.splitlines()
                 if ln.endswith("install ok installed")}
    return [p for p in pkgs if p not in installed]


class Packages(Task):
    name = "packages"

    def check(self, r: Remote, ctx: Context) -> str | None:
        gone = missing(r)
        return f"missing {' '.join(gone)}" if gone else None

    def apply(self, r: Remote, ctx: Context, why: str) -> str | None:
        gone = missing(r)
        env = "DEBIAN_FRONTEND=noninteractive"
        q = " ".join(shlex.quote(p) for p in gone)
        # update the lists only when apt does not know a package yet (an offline host can still install
        # from its cache); the install itself is bounded by the build timeout (downloads can be slow)
        if not r.ok(f"apt-cache show {q} >/dev/null 2>&1", what="apt-cache"):
            r.run(f"{env} apt-get update -qq", timeout=r.host.build_timeout_s, what="apt-get update",
                  check=False)
        r.run(f"{env} apt-get install -y -qq --no-install-recommends {q}", timeout=r.host.build_timeout_s,
              what=f"apt-get install {' '.join(gone)}")
        return f"installed {' '.join(gone)}"
