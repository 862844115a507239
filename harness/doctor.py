"""`harness doctor`: preflight before a run. Each check says what is wrong and exactly what to do about it.

With ``floor=True`` (the `harness doctor` command) it also measures the machine's own floor — a pinned busy
loop on each vCPU in turn (harness/floor.py) — and warns, never fails, where it is worse than DESIGN.md
section 10's profile (``doctor.floor_profile``), or when other processes were busy meanwhile.
"""

from __future__ import annotations

import fcntl
import glob
import os
import socket
from dataclasses import dataclass, field
from typing import Any

from harness import floor as floor_mod
from harness import runlock, sysinfo
from harness.config import Config, repo_path


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True
    lines: list[str] = field(default_factory=list)    # more detail, printed under the check

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
    if t["server"] == "builtin":
        return [Check("TRex server", True, "built-in: a TRex-compatible server in front of serpens-gen, "
                      "started "
                      "per run (docs/trex.md)", "")]
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


def _run_lock(config: Config) -> list[Check]:
    """Whether another run holds the cores now (harness/runlock.py): a warning, since it ends by itself,
    but a run started meanwhile is refused and the floor measured meanwhile is that run's."""
    path = runlock.lock_path(config)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return [Check("run lock", True, f"{path}: no run yet")]
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return [Check("run lock", True, f"{path}: free")]
    except BlockingIOError:
        holder = runlock.describe_holder(runlock.holder(path))
        return [Check("run lock", False, f"held by {holder}", "wait for that run to end, or stop it",
                      required=False)]
    finally:
        os.close(fd)


def _root() -> list[Check]:
    return [Check("root", os.geteuid() == 0, f"euid {os.geteuid()}",
                  "run as root: DPDK needs hugepages and /var/run/dpdk")]


# profile key → (row column, how it is shown)
_PROFILE = {
    "lost_ratio": ("floor_lost_ratio", "lost time"),
    "max_gap_us": ("floor_max_gap_us", "longest gap"),
    "gaps_10us_100us_per_s": ("floor_gaps_10us_100us_per_s", "gaps of 10-100 µs"),
    "gaps_1ms_5ms_per_s": ("floor_gaps_1ms_5ms_per_s", "gaps of 1-5 ms"),
    "gaps_over_5ms_per_s": ("floor_gaps_over_5ms_per_s", "gaps of ≥5 ms"),
    "steal_ratio": ("steal_ratio", "steal"),
}


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.2f} %"


def _us(v: float) -> str:
    return f"{v / 1000:.2f} ms" if v >= 1000 else f"{v:.0f} µs"


def _floor_check(row: dict[str, Any], probe: dict[str, Any], profile: dict[str, float]) -> Check:
    over = [f"{label} {row[col]:.3g} > {profile[key]:g}" for key, (col, label) in _PROFILE.items()
            if row[col] is not None and row[col] > profile[key]]
    detail = (f"{row['probe_s']:g} s: lost {_pct(row['floor_lost_ratio'])} of the time, longest gap "
              f"{_us(row['floor_max_gap_us'])}, steal {_pct(row['steal_ratio'])}; gaps/s: "
              f"10-100 µs {row['floor_gaps_10us_100us_per_s']:.4g}, "
              f"0.1-1 ms {row['floor_gaps_100us_1ms_per_s']:.4g}, "
              f"1-5 ms {row['floor_gaps_1ms_5ms_per_s']:.4g}, ≥5 ms {row['floor_gaps_over_5ms_per_s']:.4g}")
    seconds = row["probe_s"] or 1.0
    hist = "  ".join(f"{_us(b['lo_us'])}+: {b['count'] / seconds:.3g}" for b in probe.get("buckets", [])
                     if b.get("count"))
    lines = [f"gaps/s by length: {hist or 'none'}",
             f"{probe.get('involuntary_switches', '?')} involuntary context switches (the guest kernel ran "
             f"another task here); gaps without one are interrupts or the host taking the vCPU"]
    return Check(f"floor cpu{row['cpu']}", not over, detail,
                 "worse than DESIGN.md section 10's profile (" + "; ".join(over) + "): read every figure "
                 "against it, and look for other load (below)", required=False, lines=lines)


def _floor(config: Config) -> list[Check]:
    seconds = float(config["doctor"]["floor_probe_s"])
    if seconds <= 0:
        return [Check("machine floor", True, "not measured (doctor.floor_probe_s = 0)", required=False)]
    running = floor_mod.running_benchmarks()
    if running:
        return [Check("machine floor", False, "not measured: a benchmark is running (" + ", ".join(running)
                      + "); a busy loop now would measure it and disturb it",
                      "run harness doctor again when it has finished", required=False)]
    before = sysinfo.cpu_times_snapshot()
    try:
        measured = floor_mod.measure_floor_detailed(config, seconds)
    except floor_mod.FloorError as exc:
        return [Check("machine floor", False, str(exc), "make build; run doctor on a quiet machine",
                      required=False)]
    facts = sysinfo.run_facts(before, sysinfo.cpu_times_snapshot())
    checks = [_floor_check(row, probe, config["doctor"]["floor_profile"]) for row, probe in measured]
    others = ", ".join(f"{o['comm']} (pid {o['pid']}) {o['vcpus']:.2f}" for o in facts["others_top"])
    load = f"load average {facts['loadavg_before'][0]:g} → {facts['loadavg_after'][0]:g}" \
        if facts["loadavg_before"] and facts["loadavg_after"] else "load average unknown"
    checks.append(Check("quiet machine", not facts["others_busy"],
                        f"while probing, other processes used {facts['others_vcpus']:.2f} vCPU and "
                        f"interrupts {facts['irq_vcpus']:.2f}; {load}"
                        + (f"; still running: {others}" if others else ""),
                        "the floor above includes their load: measure again when they are done",
                        required=False))
    return checks


def run_checks(config: Config, floor: bool = False) -> list[Check]:
    """The preflight checks; ``floor`` also measures the machine's floor (a few seconds per vCPU)."""
    return [*_root(), *_hugepages(config), *_dpdk(), *_binaries(config), *_cores(config),
            *_runtime_dir(config), *_run_lock(config), *_redis(), *_trex(config),
            *(_floor(config) if floor else [])]


def render(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{c.status:>4}  {c.name:<{width}}  {c.detail}")
        lines.extend(f"{'':>4}  {'':<{width}}  {more}" for more in c.lines)
        if not c.ok and c.fix:
            lines.append(f"{'':>4}  {'':<{width}}  fix: {c.fix}")
    failed = sum(1 for c in checks if c.status == "FAIL")
    lines.append(f"\n{len(checks)} checks, {failed} failed" + ("" if failed else ": ready to run"))
    return "\n".join(lines)
