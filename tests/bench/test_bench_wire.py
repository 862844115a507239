"""`make bench`: the generator through the wire and through Serpens (FW→MON→NAT) at fixed offered rates.
Speed lives here, not in tests. pytest-benchmark times each trial (wall time: trial length + generator
start-up); the numbers that matter — achieved Mpps, loss, latency — go into extra_info (saved in
`.benchmarks/`) and are printed as a table at the end, next to the previous run's. These trials assert
nothing about speed: the targets live in test_bench_throughput.py, on conditional throughput.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness import config as cfg
from harness.rig import rig
from harness.traffic import profiles

pytestmark = pytest.mark.dpdk


def measure(benchmark: Any, record: Any, conf: cfg.Config, platform: str, offered_mpps: float,
            **rig_args: Any) -> None:
    with rig(conf, platform, **rig_args) as r:
        streams = profiles.load_with_latency(offered_mpps * 1e6, frame_size=64, n_flows=1024)
        result = benchmark.pedantic(r.generator.run_trial, args=(streams, 2.0), rounds=1, iterations=1)
    lat = result.latency.get(0)
    info = {"name": f"{platform} {rig_args.get('sfc', '')}".strip(), "offered_mpps": offered_mpps,
            "tx_mpps": result.tx_pps / 1e6, "rx_mpps": result.rx_pps / 1e6, "loss_ratio": result.loss_ratio,
            "generator_short": result.short,
            "latency_p50_us": lat.p50_ns / 1e3 if lat and lat.rx_packets else None,
            "latency_p99_us": lat.p99_ns / 1e3 if lat and lat.rx_packets else None}
    benchmark.extra_info.update(info)
    record(info)
    assert result.tx_packets > 0


@pytest.mark.parametrize("offered_mpps", [1.0, 10.0, 20.0])
def test_wire_64b(benchmark: Any, record: Any, dpdk_ready: cfg.Config, offered_mpps: float) -> None:
    measure(benchmark, record, dpdk_ready, "wire", offered_mpps)


@pytest.mark.parametrize("offered_mpps", [1.0, 2.0, 2.5])
def test_serpens_fw_mon_nat_64b(benchmark: Any, record: Any, dpdk_ready: cfg.Config,
                                offered_mpps: float) -> None:
    measure(benchmark, record, dpdk_ready, "serpens", offered_mpps, sfc="fw,mon,nat")
