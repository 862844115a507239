"""`harness doctor`: preflight before a run. Each check says what is wrong and exactly what to do about it."""

from __future__ import annotations

import glob
import os
import socket
from dataclasses import dataclass

from harness import sysinfo
from harness.config import Config, repo_path


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True

    @property
    def status(self) -> str:
        if self.ok:
            return "ok"
        return "FAIL" if self.required else "warn"


def _hugepages(config: Config) -> list[Check]:
    want = config["machine"]["hugepages"]
    mount = config["machine"]["hugepage_mount"]
    hp = sysinfo.hugepages()
    checks = [Check("hugepages reserved", hp["total"] >= want,
                    f"{hp['total']} x {hp['size_kb']} KiB reserved, {hp['free']} free (want {want})",
                    f"echo {want} > /proc/sys/vm/nr_hugepages   (or: make setup)")]
    checks.append(Check("hugetlbfs mounted", sysinfo.hugetlbfs_mounted(mount), f"at {mount}",
                        f"mkdir -p {mount} && mount -t hugetlbfs nodev {mount}   (or: make setup)"))
    if hp["total"] >= want and hp["free"] < min(want, 256):
        checks.append(Check("hugepages free", False, f"only {hp['free']} free: a DPDK process may still "
                            "hold them, or a crashed run left files behind",
                            f"ls {mount}; remove stale rtemap files of dead runs; pkill serpens-", False))
    return checks


def _dpdk() -> list[Check]:
    version = sysinfo.dpdk_version()
    detail = f"libdpdk {version}" if version else "pkg-config libdpdk failed"
    checks = [Check("DPDK", version is not None, detail,
                    "apt-get install dpdk-dev libdpdk-dev   (or: make setup)")]
    memif = glob.glob("/usr/lib/*/dpdk/pmds-*/librte_net_memif.so*") + glob.glob(
        "/usr/local/lib*/**/librte_net_memif.so*", recursive=True)
    checks.append(Check("DPDK memif PMD", bool(memif), memif[0] if memif else "librte_net_memif not found",
                        "apt-get install dpdk   (the PMD package that ships net_memif)"))
    return checks


def _binaries(config: Config) -> list[Check]:
    out = []
    s = config["platforms"]["serpens"]
    for label, path in (("generator binary", config["generator"]["local"]["binary"]),
                        ("wire binary", config["platforms"]["wire"]["binary"]),
                        ("serpensd binary", s["serpensd"]), ("serpens runtime binary", s["runtime"])):
        p = repo_path(path)
        out.append(Check(label, p.is_file() and os.access(p, os.X_OK), str(p), "make build"))
    return out


def _cores(config: Config) -> list[Check]:
    n = os.cpu_count() or 1
    cores = config["cores"]
    used = [cores["generator"], cores["platform"]]
    ok = len(set(used)) == len(used) and all(0 <= c < n for c in used)
    detail = f"{n} online; generator on {cores['generator']}, platform on {cores['platform']}"
    return [Check("cores", ok, detail,
                  "set cores.generator and cores.platform to two different cores below the CPU count "
                  "(two busy-pollers must never share a core)")]


def _redis() -> list[Check]:
    path = sysinfo.which("redis-server")
    return [Check("redis-server", path is not None, path or "not on PATH",
                  "apt-get install redis-server   (needed by the Fission/SNF baselines)", required=False)]


def _trex(config: Config) -> list[Check]:
    if config["generator"]["kind"] != "trex":
        return []
    t = config["generator"]["trex"]
    try:
        with socket.create_connection((t["server"], t["sync_port"]), timeout=3):
            ok, detail = True, f"{t['server']}:{t['sync_port']} reachable"
    except OSError as exc:
        ok, detail = False, f"{t['server']}:{t['sync_port']}: {exc}"
    return [Check("TRex server", ok, detail,
                  "start the TRex server in interactive mode (./t-rex-64 -i) on the generator host, or "
                  "`harness testbed provision`; check generator.trex.server")]


def _runtime_dir(config: Config) -> list[Check]:
    d = config["machine"]["runtime_dir"]
    try:
        os.makedirs(d, exist_ok=True)
        ok = os.access(d, os.W_OK)
    except OSError:
        ok = False
    return [Check("runtime dir", ok, d, f"mkdir -p {d} (as root)")]


def _root() -> list[Check]:
    return [Check("root", os.geteuid() == 0, f"euid {os.geteuid()}",
                  "run as root: DPDK needs hugepages and /var/run/dpdk")]


def run_checks(config: Config) -> list[Check]:
    return [*_root(), *_hugepages(config), *_dpdk(), *_binaries(config), *_cores(config),
            *_runtime_dir(config), *_redis(), *_trex(config)]


def render(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c.status:>4}  {c.name:<{width}}  {c.detail}")
        if not c.ok and c.fix:
            lines.append(f"{'':>4}  {'':<{width}}  fix: {c.fix}")
    failed = sum(1 for c in checks if c.status == "FAIL")
    lines.append(f"\n{len(checks)} checks, {failed} failed" + ("" if failed else ": ready to run"))
    return "\n".join(lines)
