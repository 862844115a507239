"""Bench results that matter are rates and latencies, not the wall time pytest-benchmark tabulates: each
benchmark records them in extra_info, and this prints them as a table at the end of `make bench`, next to
the previous run's numbers (``.benchmarks/measured-latest.json``, replaced by this run's when it ends)."""

from __future__ import annotations

import json
import statistics
from typing import Any

import pytest

from harness.config import repo_path

ROWS: list[dict[str, Any]] = []
BASELINE = repo_path(".benchmarks/measured-latest.json")


@pytest.fixture
def record() -> Any:
    return ROWS.append


def _median(v: Any) -> float | None:
    vals = [x for x in (v if isinstance(v, list) else [v]) if isinstance(x, int | float)]
    return statistics.median(vals) if vals else None


def _versus(now: Any, was: Any, unit: str, digits: int = 2) -> str:
    m, b = _median(now), _median(was)
    if m is None:
        return "—"
    text = f"{m:.{digits}f}{unit}"
    if b:
        text += f" ({(m - b) / b * 100:+.0f} % vs. {b:.{digits}f})"
    return text


def _line(r: dict[str, Any], old: dict[str, Any]) -> str:
    kind = r.get("kind")
    if kind == "pause":
        mean = _versus(r["mean_us"], old.get("mean_us"), " µs", 1)
        loss = f"traffic loss meanwhile {r['loss_ratio'] * 100:.3f} %"
        if "capacity_loss_ratio" in r:   # test_bench_state: the steady trial's loss, and the rest
            drops = ", ".join(f"{k} {v}" for k, v in r.get("drops", {}).items() if v)
            loss += (f" at {r['rate_pps'] / 1e6:.2f} Mpps: capacity {r['capacity_loss_ratio'] * 100:.3f} %, "
                     f"around scaling {r['scaling_loss_ratio'] * 100:.3f} %"
                     + (f"; dropped: {drops}" if drops else "")
                     + ("; generator stalled" if r.get("generator_stalled") else ""))
        return (f"{r['name']:<22} {r['count']:4d} pauses, mean {mean}, max {r['max_us']:8.1f} µs ({loss})")
    if kind == "floor":   # test_bench_start: the machine's floor under a start (medians, µs)
        line = (f"{r['name']:<28} wake: other vCPU {r['wake_other_us']:.1f}, "
                f"same vCPU {r['wake_same_us']:.1f}")
        if "wake_same_proc_us" in r:   # serpens-startprobe since the process and warm/cold fields
            line += (f" (another process: {r['wake_other_proc_us']:.1f}, {r['wake_same_proc_us']:.1f});"
                     f" image mmaps after 1 ms asleep: shared {r['map_shared_us']:.1f} +"
                     f" private {r['map_private_us']:.1f} (warm {r['map_shared_hot_us']:.1f} +"
                     f" {r['map_private_hot_us']:.1f}; the call alone {r['map_bare_us']:.1f});"
                     f" a page fault {r['fault_us']:.1f} µs; so one NF's start on the requester's vCPU"
                     f" >= {r['floor_fw_same_us']:.1f} µs")
        else:
            line += (f"; image mmaps: shared {r['map_shared_us']:.1f} + private {r['map_private_us']:.1f};"
                     f" a page fault {r['fault_us']:.1f} µs")
        return line
    if kind == "start":   # test_bench_start: medians of startup_us and of each of its steps
        steps = " ".join(f"{k[:-3]} {v:.1f}" for k, v in r["steps"].items())
        start = _versus(r["startup_us"], old.get("startup_us"), " µs", 1)
        return (f"{r['name']:<28} {r['reps']:4d} starts, startup p50 {start} (min {r['startup_min_us']:.1f})"
                f" = {steps}; then routes {r['routes_us']:.1f}")
    if kind == "search":
        runs = ", ".join(f"{p:.3f}" for p in r["pdr_mpps"])
        pdr = _versus(r["pdr_mpps"], old.get("pdr_mpps"), " Mpps", 3)
        return (f"{r['name']:<22} PDR {pdr} [runs {runs}]"
                f"  NDR {_versus(r['ndr_mpps'], old.get('ndr_mpps'), ' Mpps', 3)}"
                f"  latency p50 {_versus(r['latency_p50_us'], old.get('latency_p50_us'), ' µs', 1)}"
                f"  bounded by {', '.join(str(b) for b in r['bottleneck'])}")
    if kind == "capacity":
        pdr = _versus(r["pdr_mpps"], old.get("pdr_mpps"), " Mpps", 3)
        cap = _versus(r["instance_capacity_mpps"], old.get("instance_capacity_mpps"), " Mpps", 3)
        return (f"{r['name']:<22} PDR {pdr}, instance capacity {cap}"
                f", bounded by {r['bottleneck']}")
    p50 = r.get("latency_p50_us")
    lat = f"p50 {_versus(p50, old.get('latency_p50_us'), ' µs', 1)}" if p50 is not None else "no latency"
    short = "  (generator short)" if r.get("generator_short") else ""
    return (f"{r['name']:<22} {r['offered_mpps']:6.2f} → {r['tx_mpps']:6.2f} → "
            f"{_versus(r['rx_mpps'], old.get('rx_mpps'), ' Mpps')}  loss {r['loss_ratio'] * 100:7.3f} %  "
            f"{lat}{short}")


def _key(r: dict[str, Any]) -> str:
    return f"{r.get('kind', 'fixed')}|{r['name']}|{r.get('offered_mpps', '')}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ROWS:
        return
    try:
        previous = {_key(r): r for r in json.loads(BASELINE.read_text())}
    except (OSError, ValueError):
        previous = {}
    tr = terminalreporter
    tr.section("measured: rates, loss, latency (vs. the previous `make bench`)")
    for r in ROWS:
        tr.write_line(_line(r, previous.get(_key(r), {})))
    BASELINE.parent.mkdir(parents=True, exist_ok=True)
    BASELINE.write_text(json.dumps(ROWS, indent=1, default=str) + "\n")
    tr.write_line(f"(saved as {BASELINE}; every trial of the searches in {BASELINE.parent / 'trials'})")
