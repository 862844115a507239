"""Results: tidy CSV rows flushed as they come, a sidecar that says how the run went."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from harness.results import COLUMNS, ResultWriter, SchemaError


def test_rows_and_sidecar_of_a_complete_run(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    with ResultWriter(path, "limit", ["platform", "ndr_mpps", "generator_limited"], {"a": 1},
                      cores={"generator": 1}) as w:
        w.write({"platform": "wire", "ndr_mpps": 1.5, "generator_limited": False})
        w.write({"platform": "wire", "ndr_mpps": 2.5})
    df = pd.read_csv(path)
    assert list(df["ndr_mpps"]) == [1.5, 2.5]
    assert set(df["experiment"]) == {"limit"}
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["status"] == "complete" and meta["rows"] == 2
    assert meta["cores"] == {"generator": 1} and meta["config"] == {"a": 1}
    assert {"host", "software", "git", "started", "finished"} <= set(meta)
    assert meta["columns"]["ndr_mpps"] == COLUMNS["ndr_mpps"]


def test_interrupted_run_keeps_rows_written_before(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    with pytest.raises(KeyboardInterrupt), ResultWriter(path, "limit", ["ndr_mpps"], {}) as w:
        w.write({"ndr_mpps": 1.0})
        raise KeyboardInterrupt
    assert len(pd.read_csv(path)) == 1
    assert json.loads(path.with_suffix(".json").read_text())["status"] == "interrupted"


def test_undeclared_columns_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="not declared"):
        ResultWriter(tmp_path / "x.csv", "e", ["throughput"], {})
    with pytest.raises(SchemaError, match="not declared for this file"), \
            ResultWriter(tmp_path / "y.csv", "e", ["ndr_mpps"], {}) as w:
        w.write({"pdr_mpps": 1})


def test_every_metric_column_carries_its_unit() -> None:
    identity = {"experiment", "run_id", "platform", "system", "design", "mechanism", "workload", "flows",
                "flows_workload", "trial", "generator",
                "generator_limited", "load_fraction", "latency_histogram", "n_instances", "n_nfs",
                "chain_length", "tx_packets", "rx_packets", "loss_packets", "loss_ratio", "search_trials",
                "latency_packets", "n_samples", "n_processes", "same_cpu_fraction", "batch_packets",
                "point_id", "trials_file", "search_note", "latency_trial_valid", "bottleneck", "cpu",
                "instance_crashes", "instance_crash_losses", "delivery_batches",
                # Fig. 14: the event and phase a row belongs to, and counts (packets, flows, messages)
                "move", "phase", "sent_packets", "lost_packets", "reordered_packets", "moved_lost_packets",
                "held_packets", "flows_moved", "protocol_msgs",
                # the soak: packets counted as dropped, and those no counter accounts for
                "counted_packets", "unaccounted_packets"}
    # ratios and flags are dimensionless: their names say so
    dimensionless = ("_ratio", "_fraction", "_generator_limited")
    units = ("_mpps", "_gbps", "_us", "_ms", "_ns", "_mb", "_kb", "_b", "_s", "_ns_per_packet")
    assert all(c in identity or c.endswith(units + dimensionless) for c in COLUMNS), \
        [c for c in COLUMNS if c not in identity and not c.endswith(units + dimensionless)]
