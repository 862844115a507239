"""The shared throughput runner end to end on the real wire: a measured point writes every trial to the
trial log, and its CSV row links to them (issue 10: a trial log behind every number)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pandas as pd
import pytest

from experiments.throughput import Point, ThroughputExperiment
from harness import config as cfg
from harness.trial_log import points, trials_of

pytestmark = pytest.mark.dpdk


class OneWirePoint(ThroughputExperiment):
    name = "test-wire-point"

    def points(self) -> list[Point]:
        return [Point("wire", "forward", 64)]

    def plot(self, df: pd.DataFrame, path: Path) -> None:
        path.write_text("no figure in this test\n")


def test_a_wire_point_writes_its_trials_and_the_row_links_to_them(dpdk_ready: cfg.Config, tmp_path) -> None:
    conf = copy.deepcopy(dpdk_ready)
    conf["results"]["dir"] = str(tmp_path)
    conf["measurement"]["repetitions"] = 1
    conf["measurement"]["latency_duration_s"] = 0.5
    conf["search"]["max_rate_mpps"] = 1.0          # a low ceiling keeps the search short: the wire passes it
    conf["results"]["figures_dir"] = str(tmp_path)
    csv_path, _ = OneWirePoint(conf, quick=True).run()

    rows = pd.read_csv(csv_path)
    assert len(rows) == 1
    row = rows.iloc[0]
    log = tmp_path / row["trials_file"]
    assert log.exists()
    trials = trials_of(log, row["point_id"])
    phases = [t["phase"] for t in trials]
    assert "latency" in phases and any(p in ("search", "warmup") for p in phases)
    assert row["search_trials"] == sum(p != "latency" for p in phases)
    for t in trials:   # what every trial must say (issue 10, item 2)
        for key in ("intended_load_pps", "intended_duration_s", "offered_pps", "tx_packets", "rx_packets",
                    "loss_ratio", "dut_rx_full", "skipped_stall_packets", "skipped_slow_packets",
                    "reached_intended_load", "generator_stalls", "dut"):
            assert key in t, key
        assert t["dut"].get("loop_stalls") is not None     # the wire's own stall counter, per trial
    (point,) = points(log)
    assert point["point_id"] == row["point_id"] and point["search"]["pdr_mpps"] == pytest.approx(
        row["pdr_mpps"], rel=1e-5)
    sidecar = json.loads(csv_path.with_suffix(".json").read_text())
    assert sidecar["quick"] is True and sidecar["trials_file"] == log.name
