"""Facts about this machine and this checkout, for run metadata and for `harness doctor`.

Besides static facts (CPU, kernel, versions, hugepages) it reads what the machine was doing during a run,
for the sidecar (docs/machine-floor.md): :func:`cpu_times_snapshot` at the start and end of a run and
:func:`run_facts` between the two give steal time per vCPU, the load average, and which processes that are
not this harness's used CPU meanwhile; :func:`affinities` reads back where started processes may run, as
the OS has it; :func:`pin_self` moves the harness's own Python off the DUT's core. The /proc parsers take
text or a root directory so that tests can run them on fixtures.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
PROC = Path("/proc")
SYS_CPU = Path("/sys/devices/system/cpu")


def _run(cmd: list[str], cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_bytes() -> int:
    try:
        m = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        return int(m.group(1)) * 1024 if m else 0
    except OSError:
        return 0


def host_facts() -> dict[str, Any]:
    return {
        "hostname": platform.node(),
        "kernel": platform.release(),
        "os": _os_release(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "memory_bytes": memory_bytes(),
        "virtualised": _virt(),
    }


def _os_release() -> str:
    try:
        m = re.search(r'^PRETTY_NAME="?([^"\n]*)', Path("/etc/os-release").read_text(), re.M)
        return m.group(1) if m else "unknown"
    except OSError:
        return "unknown"


def _virt() -> str:
    return _run(["systemd-detect-virt"]) or ("hypervisor" if "hypervisor" in _cpu_flags() else "none")


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def dpdk_version() -> str | None:
    return _run(["pkg-config", "--modversion", "libdpdk"])


def software_versions() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "dpdk": dpdk_version(),
        "redis_server": _first_line(_run(["redis-server", "--version"])),
        "gcc": _first_line(_run(["gcc", "--version"])),
    }


def _first_line(text: str | None) -> str | None:
    return text.splitlines()[0] if text else None


def git_revision() -> dict[str, Any]:
    rev = _run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT)
    dirty = _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT)
    return {"revision": rev, "dirty": bool(dirty) if dirty is not None else None}


def hugepages() -> dict[str, int]:
    """2 MiB hugepage counters from /proc/meminfo."""
    out = {"total": 0, "free": 0, "size_kb": 0}
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return out
    for key, name in (("HugePages_Total", "total"), ("HugePages_Free", "free"), ("Hugepagesize", "size_kb")):
        m = re.search(rf"{key}:\s+(\d+)", text)
        if m:
            out[name] = int(m.group(1))
    return out


def hugetlbfs_mounted(mount: str) -> bool:
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[1] == mount and parts[2] == "hugetlbfs":
                return True
    except OSError:
        pass
    return False


def which(name: str) -> str | None:
    return shutil.which(name)


# --- CPU time, load, affinity: what the machine was doing during a run ----------------------------------

# /proc/stat's per-CPU columns, in order (proc(5)). guest and guest_nice are already counted in user and
# nice, so they are left out of the total.
CPU_TIME_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


class PinError(RuntimeError):
    """A CPU to pin to is not a CPU of this machine, or the OS refused the affinity."""


def parse_cpu_list(text: str) -> list[int]:
    """A kernel CPU list ("0-2,5", as in Cpus_allowed_list or /sys/.../online) → [0, 1, 2, 5]."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def online_cpus(sys_cpu: Path = SYS_CPU) -> list[int]:
    try:
        return parse_cpu_list((sys_cpu / "online").read_text())
    except (OSError, ValueError):
        return list(range(os.cpu_count() or 1))


def parse_proc_stat(text: str) -> dict[str, dict[str, int]]:
    """/proc/stat's CPU lines → {"cpu": {...}, "cpu0": {...}, ...}, jiffies (USER_HZ) per field of
    :data:`CPU_TIME_FIELDS`; fields an old kernel lacks are 0."""
    out: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts or not parts[0].startswith("cpu"):
            continue
        values = [int(v) for v in parts[1:1 + len(CPU_TIME_FIELDS)]]
        values += [0] * (len(CPU_TIME_FIELDS) - len(values))
        out[parts[0]] = dict(zip(CPU_TIME_FIELDS, values, strict=True))
    return out


def read_proc_stat(root: Path = PROC) -> dict[str, dict[str, int]]:
    return parse_proc_stat((root / "stat").read_text())


def cpu_time_ratios(before: dict[str, int], after: dict[str, int]) -> dict[str, float | None]:
    """Steal and busy (neither idle, iowait nor steal) as shares of one CPU line's time between two
    readings; None when no tick passed (the window was shorter than one USER_HZ tick)."""
    d = {k: after.get(k, 0) - before.get(k, 0) for k in CPU_TIME_FIELDS}
    total = sum(d.values())
    if total <= 0:
        return {"steal_ratio": None, "busy_ratio": None}
    idle = d["idle"] + d["iowait"] + d["steal"]
    return {"steal_ratio": d["steal"] / total, "busy_ratio": (total - idle) / total}


@dataclass(frozen=True)
class PidStat:
    """What run facts need of /proc/<pid>/stat: who it is, its parent, and its CPU time so far."""
    pid: int
    comm: str
    state: str
    ppid: int
    cpu_ticks: int        # utime + stime of all its threads, USER_HZ ticks
    children_ticks: int   # cutime + cstime: of its children that ended and were reaped
    starttime: int        # ticks after boot; (pid, starttime) names a process even if the pid is reused


def parse_pid_stat(text: str) -> PidStat:
    """One /proc/<pid>/stat line. The command name is in parentheses and may itself contain spaces and
    parentheses, so the fields after it are found from the last ')'."""
    open_paren, close_paren = text.index("("), text.rindex(")")
    rest = text[close_paren + 1:].split()
    # rest[0] is field 3 of proc(5): state; ppid is 4, utime 14, stime 15, cutime 16, cstime 17, starttime 22
    return PidStat(pid=int(text[:open_paren]), comm=text[open_paren + 1:close_paren], state=rest[0],
                   ppid=int(rest[1]), cpu_ticks=int(rest[11]) + int(rest[12]),
                   children_ticks=int(rest[13]) + int(rest[14]), starttime=int(rest[19]))


def read_pid_stat(pid: int, root: Path = PROC) -> PidStat | None:
    """None when the process is gone (or the line cannot be read)."""
    try:
        return parse_pid_stat((root / str(pid) / "stat").read_text())
    except (OSError, ValueError, IndexError):
        return None


def read_processes(root: Path = PROC) -> dict[int, PidStat]:
    out: dict[int, PidStat] = {}
    try:
        entries = [e.name for e in os.scandir(root) if e.name.isdigit()]
    except OSError:
        return out
    for name in entries:
        st = read_pid_stat(int(name), root)
        if st is not None:
            out[st.pid] = st
    return out


def process_tree(processes: dict[int, PidStat], roots: Iterable[int]) -> set[int]:
    """The roots and all their descendants among ``processes``."""
    children: dict[int, list[int]] = {}
    for p in processes.values():
        children.setdefault(p.ppid, []).append(p.pid)
    tree: set[int] = set()
    todo = [r for r in roots if r in processes]
    while todo:
        pid = todo.pop()
        if pid not in tree:
            tree.add(pid)
            todo.extend(children.get(pid, ()))
    return tree


def read_loadavg(root: Path = PROC) -> list[float] | None:
    try:
        return [float(v) for v in (root / "loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return None


@dataclass
class CpuTimesSnapshot:
    """Everything :func:`run_facts` compares; take one at the start and one at the end of a run."""
    monotonic_s: float
    cpus: dict[str, dict[str, int]]
    loadavg: list[float] | None
    processes: dict[int, PidStat]
    ours: set[tuple[int, int]] = field(default_factory=set)   # (pid, starttime) of our process tree


def cpu_times_snapshot(root: Path = PROC, self_pid: int | None = None,
                       clock: Callable[[], float] = time.monotonic) -> CpuTimesSnapshot:
    """/proc/stat, /proc/loadavg and every process's CPU time now, and which processes are ours: this
    harness (``self_pid``, default this process) and its descendants (generator, platform, Redis, and what
    those started)."""
    cpus = read_proc_stat(root)
    processes = read_processes(root)
    tree = process_tree(processes, [os.getpid() if self_pid is None else self_pid])
    return CpuTimesSnapshot(monotonic_s=clock(), cpus=cpus, loadavg=read_loadavg(root),
                            processes=processes,
                            ours={(pid, processes[pid].starttime) for pid in tree})


def run_facts(before: CpuTimesSnapshot, after: CpuTimesSnapshot, busy_share: float = 0.02,
              top: int = 10, clk_tck: int | None = None) -> dict[str, Any]:
    """What the machine did between two snapshots, for a sidecar. CPU amounts are in vCPUs (0.5 = half
    of one vCPU for the whole window).

    ``steal_ratio`` / ``busy_ratio``: per vCPU (``cpu0``…) and over all (``all``), shares of the window.
    ``busy_vcpus`` is all CPU time used (/proc/stat); ``ours_vcpus`` what our process tree used (including
    children that ended and were reaped in the window: the kernel adds them to their parent);
    ``irq_vcpus`` interrupt and softirq time (not attributed to a process: partly ours, e.g. loopback
    TCP to Redis); ``others_vcpus`` the rest — other processes, also those that ended in the window.
    ``others_top`` names the other processes still running at ``after`` that used more than
    ``busy_share`` of one vCPU, the busiest first. ``others_busy``: others used more than ``busy_share``.
    """
    window = after.monotonic_s - before.monotonic_s
    if window <= 0:
        raise ValueError("run_facts: the 'after' snapshot must be taken after the 'before' one")
    hz = clk_tck or os.sysconf("SC_CLK_TCK")
    steal: dict[str, float | None] = {}
    busy: dict[str, float | None] = {}
    for name in sorted(set(before.cpus) & set(after.cpus), key=lambda n: (len(n), n)):
        key = "all" if name == "cpu" else name
        ratios = cpu_time_ratios(before.cpus[name], after.cpus[name])
        steal[key], busy[key] = ratios["steal_ratio"], ratios["busy_ratio"]

    def vcpus(ticks: float) -> float:
        return round(ticks / hz / window, 4)

    d_all = {k: after.cpus.get("cpu", {}).get(k, 0) - before.cpus.get("cpu", {}).get(k, 0)
             for k in CPU_TIME_FIELDS}
    busy_ticks = sum(d_all.values()) - d_all["idle"] - d_all["iowait"] - d_all["steal"]
    irq_ticks = d_all["irq"] + d_all["softirq"]
    ours = before.ours | after.ours
    ours_ticks = 0
    others: list[dict[str, Any]] = []
    for pid, p in after.processes.items():
        b = before.processes.get(pid)
        same = b is not None and b.starttime == p.starttime
        ticks = p.cpu_ticks - (b.cpu_ticks if same and b is not None else 0)
        if (pid, p.starttime) in ours:
            reaped = p.children_ticks - (b.children_ticks if same and b is not None else 0)
            ours_ticks += ticks + reaped
        elif ticks / hz / window > busy_share:
            others.append({"pid": pid, "comm": p.comm, "vcpus": vcpus(ticks)})
    others.sort(key=lambda o: -o["vcpus"])
    others_ticks = max(0, busy_ticks - irq_ticks - ours_ticks)
    return {
        "window_s": round(window, 3),
        "steal_ratio": steal,
        "busy_ratio": busy,
        "loadavg_before": before.loadavg,
        "loadavg_after": after.loadavg,
        "busy_vcpus": vcpus(busy_ticks),
        "ours_vcpus": vcpus(ours_ticks),
        "irq_vcpus": vcpus(irq_ticks),
        "others_vcpus": vcpus(others_ticks),
        "others_busy": others_ticks / hz / window > busy_share or bool(others),
        "others_busy_threshold_vcpus": busy_share,
        "others_top": others[:top],
    }


def parse_status(text: str) -> dict[str, str]:
    """/proc/<pid>/status → {field: value}."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key] = value.strip()
    return out


def _status(path: Path) -> dict[str, str] | None:
    try:
        return parse_status(path.read_text())
    except OSError:
        return None


def affinities(pids: Iterable[int], root: Path = PROC) -> dict[int, dict[str, Any]]:
    """Where each process may run, read back from the OS (/proc/<pid>/status ``Cpus_allowed_list``).

    ``{pid: {"comm", "cpus_allowed", "alive", "other_threads"}}``: ``cpus_allowed`` is the main thread's
    CPUs; ``other_threads`` lists threads allowed elsewhere (a DPDK process's control threads, e.g.,
    are not on its lcore). A process that is gone has ``alive`` false and None for the rest; a zombie
    (exited, not yet reaped) still shows its last affinity, with ``alive`` false.
    """
    out: dict[int, dict[str, Any]] = {}
    for pid in pids:
        st = _status(root / str(pid) / "status")
        if st is None or "Cpus_allowed_list" not in st:
            out[pid] = {"comm": None, "cpus_allowed": None, "alive": False, "other_threads": []}
            continue
        cpus = parse_cpu_list(st["Cpus_allowed_list"])
        threads = []
        try:
            tids = sorted(int(t) for t in os.listdir(root / str(pid) / "task") if t.isdigit())
        except OSError:
            tids = []
        for tid in tids:
            ts = _status(root / str(pid) / "task" / str(tid) / "status")
            if ts is not None and tid != pid and "Cpus_allowed_list" in ts:
                tcpus = parse_cpu_list(ts["Cpus_allowed_list"])
                if tcpus != cpus:
                    threads.append({"tid": tid, "comm": ts.get("Name"), "cpus_allowed": tcpus})
        out[pid] = {"comm": st.get("Name"), "cpus_allowed": cpus,
                    "alive": not st.get("State", "").startswith(("Z", "X")), "other_threads": threads}
    return out


def descendants(pid: int, root: Path = PROC) -> list[int]:
    """The processes ``pid`` started, and theirs, from /proc/<pid>/task/<tid>/children (cheap: no scan of
    every process, so it can run on the generator's core during a trial)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tids = os.listdir(root / str(parent) / "task")
        except OSError:
            continue
        for tid in tids:
            try:
                kids = [int(k) for k in (root / str(parent) / "task" / tid / "children").read_text().split()]
            except (OSError, ValueError):
                continue
            found.extend(k for k in kids if k not in found)
            todo.extend(kids)
    return found


def check_cpu(cpu: object, what: str, online: list[int] | None = None) -> int:
    """``cpu`` if it is an online CPU of this machine, else a :class:`PinError` naming ``what``."""
    cpus = online_cpus() if online is None else online
    if isinstance(cpu, bool) or not isinstance(cpu, int) or cpu not in cpus:
        raise PinError(f"{what} = {cpu!r}: expected one of this machine's online CPUs "
                       f"({', '.join(map(str, cpus))})")
    return cpu


def pin_self(config: dict[str, Any]) -> list[int]:
    """Pin the harness's own Python process — every thread it has, and so whatever it starts later unless
    that re-pins itself (DPDK's -l does) — to the generator's core ``cores.generator``, off the DUT's core.
    The harness mostly waits while the generator runs, so it takes little from it; on the DUT's core it
    would preempt the data plane being measured. Returns the CPUs read back."""
    core = check_cpu(config["cores"]["generator"], "cores.generator")
    try:
        tids = [int(t) for t in os.listdir(PROC / "self" / "task")]
        for tid in tids:
            try:
                os.sched_setaffinity(tid, {core})
            except ProcessLookupError:
                pass        # a thread that ended meanwhile
    except OSError as exc:
        raise PinError(f"cannot pin the harness to CPU {core} (cores.generator): {exc.strerror}") from exc
    return sorted(os.sched_getaffinity(0))
