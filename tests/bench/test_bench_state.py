"""`make bench`: how long scaling pauses packet processing to split or merge global|write state (paper
Sec. III-D2: "a very short time", e.g. 10 µs), per state backend, with NAT+MON carrying traffic.

One NAT+MON SFC starts with one instance; while the generator sends 0.2 Mpps over 1024 flows, a second
instance is started and stopped ``ROUNDS`` times. Each start splits NAT's pool (release) and MON's host
replicas (eventual) — on the serpens backend in shared memory, on fission in Redis — and each stop merges
them back; serpensd times every pause (`stats.state.pauses`). The table at the end of `make bench` shows
count, mean and max per kind. Fig. 14's experiment (the scaling issue) will write these as split_pause_us.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from harness import config as cfg
from harness.rig import rig
from harness.serpens.sfc import SfcSpec
from harness.traffic import profiles

pytestmark = pytest.mark.dpdk

ROUNDS = 20


@pytest.mark.parametrize("backend", ["serpens", "fission-state"])
def test_split_and_merge_pause_under_traffic(benchmark: Any, record: Any, dpdk_ready: cfg.Config,
                                             backend: str) -> None:
    spec = SfcSpec("monnat", {}, ["mon", "nat"], {})
    with rig(dpdk_ready, backend, sfc=spec) as r:
        p = r.platform
        before = p.stats()["state"]["pauses"]
        done = threading.Event()

        def scale() -> None:
            try:
                for _ in range(ROUNDS):
                    p.stop_instance(int(p.start_instance("monnat")["instance"]))
            finally:
                done.set()

        worker = threading.Thread(target=scale)
        worker.start()
        result = benchmark.pedantic(r.generator.run_trial,
                                    args=(profiles.udp_flows(200_000, 64, 1024), 3.0), rounds=1, iterations=1)
        worker.join()
        after = p.stats()["state"]["pauses"]
    for kind in ("split", "merge"):
        n = after[kind]["count"] - before[kind]["count"]
        assert n >= ROUNDS, (kind, after)
        total_us = (after[kind]["mean_us"] * after[kind]["count"]
                    - before[kind]["mean_us"] * before[kind]["count"])
        mean = total_us / n
        info = {"name": f"{backend} {kind} pause", "kind": "pause", "count": n, "mean_us": mean,
                "max_us": after[kind]["max_us"], "loss_ratio": result.loss_ratio}
        benchmark.extra_info[kind] = info
        record(info)
