"""`make bench`: the generator through the wire at fixed offered rates (speed lives here, not in tests).

pytest-benchmark times each trial (its wall time is dominated by the fixed trial length plus generator
start-up, so a regression in start-up shows there); the numbers that matter — achieved tx/rx Mpps and
latency — are stored in each benchmark's extra_info and compared by eye between saved runs
(`.benchmarks/`). The issue-level target is ≥10 Mpps of 64 B through the wire.
"""

from __future__ import annotations

import pytest

from harness import config as cfg
from harness.rig import rig
from harness.traffic import profiles

pytestmark = pytest.mark.dpdk


@pytest.mark.parametrize("offered_mpps", [1.0, 10.0, 20.0])
def test_wire_64b(benchmark, dpdk_ready: cfg.Config, offered_mpps: float) -> None:  # type: ignore[no-untyped-def]
    with rig(dpdk_ready, "wire") as r:
        streams = profiles.load_with_latency(offered_mpps * 1e6, frame_size=64, n_flows=1024)
        result = benchmark.pedantic(r.generator.run_trial, args=(streams, 2.0), rounds=1, iterations=1)
    lat = result.latency.get(0)
    benchmark.extra_info.update({
        "offered_mpps": offered_mpps, "tx_mpps": result.tx_pps / 1e6, "rx_mpps": result.rx_pps / 1e6,
        "loss_ratio": result.loss_ratio, "generator_short": result.short,
        "latency_p50_us": lat.p50_ns / 1e3 if lat else None,
        "latency_p99_us": lat.p99_ns / 1e3 if lat else None,
    })
    assert result.tx_packets > 0
