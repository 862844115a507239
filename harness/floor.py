"""The machine's own floor: how much of each vCPU a pinned busy loop actually gets (DESIGN.md section 10).

On a small VM a vCPU is taken away for microseconds to milliseconds at a time; at 2.4 Mpps one 8 ms gap
is 19 k packets. Every throughput figure has to be read against that, so `make limit` writes it into its
CSV and `harness doctor` reports it. :func:`measure_floor` runs the C probe ``serpens-stallprobe``
(native/tools/stallprobe.c) on each vCPU *one after another* — two busy loops at once would measure each
other — and reads steal time from /proc/stat over the same window. One row per vCPU, with exactly the
columns of :data:`FLOOR_COLUMNS` (declared in harness/results.py). docs/machine-floor.md says how to read
them.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import sysinfo
from harness.config import Config, repo_path
from harness.native import die_with_parent, popen, record_started, started_processes, terminate

FLOOR_COLUMNS = ("cpu", "probe_s", "floor_lost_ratio", "floor_max_gap_us", "floor_gaps_10us_100us_per_s",
                 "floor_gaps_100us_1ms_per_s", "floor_gaps_1ms_5ms_per_s", "floor_gaps_over_5ms_per_s",
                 "steal_ratio")

# column → gap lengths it counts, [lo, hi) in µs; hi None: no upper end. The probe's histogram is finer;
# these must be among its edges.
GAP_COLUMNS: dict[str, tuple[float, float | None]] = {
    "floor_gaps_10us_100us_per_s": (10, 100),
    "floor_gaps_100us_1ms_per_s": (100, 1000),
    "floor_gaps_1ms_5ms_per_s": (1000, 5000),
    "floor_gaps_over_5ms_per_s": (5000, None),
}


class FloorError(RuntimeError):
    """The probe is missing, failed, printed something unreadable, or would compete with a benchmark."""


def gaps_between(buckets: Sequence[dict[str, Any]], lo_us: float, hi_us: float | None) -> int:
    """How many gaps of the probe's histogram fall in [lo_us, hi_us). Both ends must be edges of the
    histogram (a bucket cannot be split), and the histogram must reach down to lo_us."""
    edges = {b["lo_us"] for b in buckets} | {b["hi_us"] for b in buckets}
    for edge in (lo_us, hi_us):
        if edge not in edges:
            raise FloorError(f"the probe's histogram has no edge at {edge} µs "
                             f"(edges: {sorted(e for e in edges if e is not None)})")
    total = 0
    for b in buckets:
        upper = b["hi_us"]
        if b["lo_us"] >= lo_us and (hi_us is None or (upper is not None and upper <= hi_us)):
            total += int(b["count"])
    return total


def floor_row(probe: dict[str, Any], steal_ratio: float | None) -> dict[str, Any]:
    """One CSV row (the keys of :data:`FLOOR_COLUMNS`) from the probe's JSON and the steal over its window."""
    try:
        seconds = float(probe["probe_s"])
        buckets = probe["buckets"]
        row: dict[str, Any] = {"cpu": int(probe["cpu"]), "probe_s": round(seconds, 3),
                               "floor_lost_ratio": float(probe["lost_ratio"]),
                               "floor_max_gap_us": float(probe["max_gap_us"])}
    except (KeyError, TypeError, ValueError) as exc:
        raise FloorError(f"the probe's report lacks or garbles {exc}") from exc
    if seconds <= 0:
        raise FloorError(f"the probe ran for {seconds} s")
    for column, (lo, hi) in GAP_COLUMNS.items():
        row[column] = round(gaps_between(buckets, lo, hi) / seconds, 3)
    row["steal_ratio"] = steal_ratio
    return row


def probe_binary(config: Config) -> Path:
    p = repo_path(config["floor"]["probe"])
    if not p.is_file() or not os.access(p, os.X_OK):
        raise FloorError(f"{p} is not built: run `make build` (floor.probe)")
    return p


def run_probe(config: Config, cpu: int, seconds: float) -> dict[str, Any]:
    """Run the probe on one CPU; its JSON report."""
    cmd = [str(probe_binary(config)), "--cpu", str(cpu), "--seconds", f"{seconds:g}"]
    proc = popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                 preexec_fn=die_with_parent)
    record_started(proc, "stallprobe", [cpu])
    try:
        out, err = proc.communicate(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        terminate(proc)
        raise FloorError(f"serpens-stallprobe on CPU {cpu} did not finish within {seconds + 30:g} s") \
            from None
    except BaseException:
        terminate(proc)
        raise
    if proc.returncode != 0:
        line = (err.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise FloorError(line)
    try:
        return dict(json.loads(out))
    except ValueError as exc:
        raise FloorError(f"serpens-stallprobe printed no JSON report: {exc}") from exc


def probe_cpu(config: Config, cpu: int, seconds: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """The floor row of one CPU and the probe's full report (with its finer histogram and longest gaps)."""
    before = sysinfo.read_proc_stat()
    probe = run_probe(config, cpu, seconds)
    after = sysinfo.read_proc_stat()
    name = f"cpu{cpu}"
    steal = (sysinfo.cpu_time_ratios(before[name], after[name])["steal_ratio"]
             if name in before and name in after else None)
    return floor_row(probe, steal), probe


def _check_quiet() -> None:
    """A busy loop next to one of our own benchmarks would measure it, and disturb it."""
    running = [f"{e['role']} (pid {pid})" for pid, e in started_processes().items() if e["alive"]]
    if running:
        raise FloorError("the floor is measured on a quiet machine, but the harness is running "
                         + ", ".join(running) + "; measure it before or after, never during a benchmark")


# /proc comm names (15 characters at most) of the harness's data-plane binaries
BENCHMARK_COMMS = ("serpens-gen", "serpens-wire", "serpensd", "serpens-runtime", "serpens-startbe")


def running_benchmarks() -> list[str]:
    """Data-plane processes of the harness running on this machine, started by us or by another harness
    (another user's `make limit`): a probe now would measure them and disturb them."""
    return [f"{p.comm} (pid {p.pid})" for p in sysinfo.read_processes().values()
            if p.comm in BENCHMARK_COMMS and not p.state.startswith(("Z", "X"))]


def _cpus(cpus: Sequence[int] | None) -> list[int]:
    online = sysinfo.online_cpus()
    if cpus is None:
        return online
    try:
        return [sysinfo.check_cpu(c, "floor CPU", online) for c in cpus]
    except sysinfo.PinError as exc:
        raise FloorError(str(exc)) from exc


def measure_floor_detailed(config: Config, seconds: float,
                           cpus: Sequence[int] | None = None) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """:func:`measure_floor` with each probe's full report next to its row (harness doctor shows both)."""
    if not seconds > 0:
        raise FloorError(f"the floor probe needs a positive duration, got {seconds!r} s")
    chosen = _cpus(cpus)
    probe_binary(config)
    _check_quiet()
    return [probe_cpu(config, cpu, seconds) for cpu in chosen]


def measure_floor(config: Config, seconds: float, cpus: list[int] | None = None) -> list[dict[str, Any]]:
    """The floor of each vCPU (default: every online one), one vCPU after another, ``seconds`` each:
    one dict per vCPU with the keys of :data:`FLOOR_COLUMNS`. Never call it while a benchmark runs (it
    refuses while a process the harness started is alive)."""
    return [row for row, _ in measure_floor_detailed(config, seconds, cpus)]
