"""`make bench`: conditional throughput (MLRsearch, the configured NDR/PDR goals, default settings) measured
three times in a row, and the per-stage cost model checked against a measured throughput.

Targets (issue 10): the wire at 64 B, PDR conditional throughput within ±10 % of the median of 3 runs and
at least 5 Mpps; Serpens FW→MON→NAT within ±10 % and at least 2 Mpps; where the instance bounds the
throughput (Fission-state MON: every table in Redis), the instance capacity derived from its busy time per
packet agrees with the measured PDR conditional throughput within 20 %. Every trial goes to a trial log in
``.benchmarks/trials/`` so a miss can be read trial by trial.
"""

from __future__ import annotations

import statistics
from typing import Any

import pytest

from harness import config as cfg
from harness.config import repo_path
from harness.rig import rig
from harness.serpens.sfc import SfcSpec
from harness.traffic.base import TrialResult
from harness.traffic.measure import Measurer, measure_point, point_row
from harness.trial_log import TrialLogWriter

pytestmark = pytest.mark.dpdk

RUNS = 3
TRIALS_DIR = repo_path(".benchmarks/trials")


def _points(name: str, platform: str, runs: int, sfc: str | None = None) -> list[dict[str, Any]]:
    """``runs`` points in a row on one rig, default (not quick) settings; every trial logged."""
    conf = cfg.load()
    TRIALS_DIR.mkdir(parents=True, exist_ok=True)
    rows = []
    with TrialLogWriter(TRIALS_DIR / f"{name.replace(' ', '_')}.jsonl", name) as log, \
            rig(conf, platform, sfc=SfcSpec.linear(sfc) if sfc else None) as r:
        for run in range(runs):
            point_id = log.new_point_id()

            def on_trial(phase: str, index: int, load: float, dur: float, result: TrialResult,
                         judgement: dict[str, Any], pid: str = point_id) -> None:
                log.trial(pid, index, phase, load, dur, result, **judgement)

            m = Measurer(r.generator, 64, conf["traffic"]["flows"], conf["traffic"]["latency_pps"],
                         platform=r.platform)
            record = measure_point(m, conf, on_trial=on_trial)
            record.update(platform=platform, workload=sfc or "forward", trial=run, point_id=point_id)
            log.point(point_id, record)
            rows.append(point_row(record))
    return rows


def _repeatable(benchmark: Any, record: Any, name: str, platform: str, floor_mpps: float,
                sfc: str | None = None) -> None:
    rows = benchmark.pedantic(_points, args=(name, platform, RUNS, sfc), rounds=1, iterations=1)
    pdrs = [r["pdr_mpps"] for r in rows]
    median = statistics.median(pdrs)
    info = {"kind": "search", "name": name, "pdr_mpps": pdrs, "ndr_mpps": [r["ndr_mpps"] for r in rows],
            "latency_p50_us": [r.get("latency_p50_us") for r in rows],
            "latency_mean_us": [r.get("latency_mean_us") for r in rows],
            "search_time_s": [r.get("search_time_s") for r in rows],
            "bottleneck": [r.get("bottleneck") for r in rows]}
    benchmark.extra_info.update(info)
    record(info)
    spread = [abs(p - median) / median for p in pdrs] if median else [float("inf")]
    assert max(spread) <= 0.10, f"{name}: PDR {pdrs} Mpps spread beyond ±10 % of the median"
    assert median >= floor_mpps, f"{name}: median PDR {median:.3f} Mpps < {floor_mpps} Mpps"


def test_wire_64b_conditional_pdr_is_repeatable(benchmark: Any, record: Any, dpdk_ready: cfg.Config) -> None:
    _repeatable(benchmark, record, "wire 64B", "wire", 5.0)


def test_serpens_fw_mon_nat_conditional_pdr_is_repeatable(benchmark: Any, record: Any,
                                                          dpdk_ready: cfg.Config) -> None:
    _repeatable(benchmark, record, "serpens fw,mon,nat", "serpens", 2.0, sfc="fw,mon,nat")


def test_instance_capacity_predicts_throughput_where_the_instance_bounds_it(
        benchmark: Any, record: Any, dpdk_ready: cfg.Config) -> None:
    (row,) = benchmark.pedantic(_points, args=("fission mon", "fission-state", 1, "mon"), rounds=1,
                                iterations=1)
    capacity, pdr = row["instance_capacity_mpps"], row["pdr_mpps"]
    info = {"kind": "capacity", "name": "fission mon", "pdr_mpps": pdr, "instance_capacity_mpps": capacity,
            "bottleneck": row.get("bottleneck"), "instance_ns_per_packet": row.get("instance_ns_per_packet"),
            "remote_state_ns_per_packet": row.get("remote_state_ns_per_packet")}
    benchmark.extra_info.update(info)
    record(info)
    assert row.get("bottleneck") == "instance", f"expected the instance to bound Fission MON: {info}"
    assert abs(capacity - pdr) / pdr <= 0.20, f"derived capacity vs measured PDR beyond 20 %: {info}"
