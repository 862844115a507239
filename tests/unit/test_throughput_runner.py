"""The shared throughput runner's pure parts: the interleaved order, the trial log, and the process step
(point record → CSV row)."""

from __future__ import annotations

import json
import math

from experiments.throughput import Point, interleaved
from harness.results import COLUMNS
from harness.traffic.base import TrialResult
from harness.traffic.measure import POINT_COLUMNS, point_row
from harness.trial_log import TrialLogWriter, points, read, trials_of, trials_path


def test_repetitions_are_interleaved_across_points_never_in_blocks() -> None:
    a, b, c = (Point(p, "fw", 64) for p in ("fission", "snf", "serpens"))
    order = interleaved([a, b, c], 2)
    assert [(rep, p.platform) for rep, p in order] == [
        (0, "fission"), (0, "snf"), (0, "serpens"), (1, "fission"), (1, "snf"), (1, "serpens")]


def test_every_point_column_is_declared_in_the_schema() -> None:
    assert [c for c in POINT_COLUMNS if c not in COLUMNS] == []


def _record(**over: object) -> dict:
    rec = {
        "platform": "serpens", "workload": "fw", "frame_size_b": 64, "flows": 1024, "trial": 1,
        "point_id": "run/3", "trials_file": "figure-12-trials.jsonl", "generator": "serpens-gen 0.2",
        "load_fraction": 0.8, "pdr_loss_goal": 0.001,
        "search": {"ndr_mpps": 1.0, "pdr_mpps": 1.2, "ndr_lower_bound_mpps": 1.0,
                   "ndr_upper_bound_mpps": 1.01, "pdr_generator_limited": False,
                   "ndr_generator_limited": False,
                   "search_trials": 30, "search_time_s": 70.0, "search_note": "",
                   "some_future_key": 7},
        "latency_trial": {"intended_load_pps": 0.96e6, "offered_mpps": 0.96, "tx_mpps": 0.96, "rx_mpps": 0.96,
                          "throughput_mpps": 0.96, "tx_packets": 100, "rx_packets": 100, "loss_packets": 0,
                          "loss_ratio": 0.0, "latency_mean_us": 12.0, "latency_p50_us": 10.0,
                          "short": False, "valid": True, "stages": {}},
        "extra": {},
    }
    rec.update(over)
    return rec


def test_point_row_takes_the_search_and_latency_trial_and_links_the_trial_log() -> None:
    row = point_row(_record())
    assert row["ndr_mpps"] == 1.0 and row["pdr_mpps"] == 1.2
    assert math.isclose(row["ndr_gbps"], 1.0e6 * (64 + 20) * 8 / 1e9)
    assert row["point_id"] == "run/3" and row["trials_file"] == "figure-12-trials.jsonl"
    assert row["latency_trial_valid"] is True and row["generator_limited"] is False
    assert "some_future_key" not in row          # only declared columns reach the CSV


def test_a_lossy_latency_trial_is_marked_invalid() -> None:
    rec = _record()
    rec["latency_trial"] = {**rec["latency_trial"], "loss_ratio": 0.04, "valid": False}
    assert point_row(rec)["latency_trial_valid"] is False


def test_a_generator_limited_goal_or_short_latency_trial_marks_the_row() -> None:
    rec = _record()
    rec["search"] = {**rec["search"], "pdr_generator_limited": True}
    assert point_row(rec)["generator_limited"] is True
    rec = _record()
    rec["latency_trial"] = {**rec["latency_trial"], "short": True}
    assert point_row(rec)["generator_limited"] is True


def test_fixed_rate_point_has_no_search_columns() -> None:
    row = point_row(_record(search=None))
    assert "ndr_mpps" not in row and row["throughput_mpps"] == 0.96


def test_trial_log_writes_trials_and_points_and_survives_a_torn_last_line(tmp_path) -> None:
    path = trials_path(tmp_path / "limit.csv")
    assert path.name == "limit-trials.jsonl"
    result = TrialResult(offered_pps=1e6, duration_s=1.0, tx_packets=1_000_000, rx_packets=999_000,
                         intended_packets=1_000_500, skipped_stall_packets=500,
                         generator_stalls={"count": 3, "max_us": 4000.0})
    with TrialLogWriter(path, "run") as log:
        pid = log.new_point_id()
        log.trial(pid, 0, "search", 1e6, 1.0, result, mlr_loss_ratio=0.001,
                  passed={"ndr": False, "pdr": True})
        log.point(pid, {"search": {"ndr_mpps": float("nan")}})
    with open(path, "a") as f:
        f.write('{"kind": "trial", "point_id": "run/1", "tor')   # killed mid-write
    lines = list(read(path))
    assert [line["kind"] for line in lines] == ["trial", "point"]
    trial = trials_of(path, pid)[0]
    assert trial["loss_packets"] == 1000 and trial["skipped_stall_packets"] == 500
    assert trial["passed"] == {"ndr": False, "pdr": True} and trial["reached_intended_load"] is True
    assert points(path)[0]["search"]["ndr_mpps"] is None      # NaN is written as null: strict JSON
    for line in path.read_text().splitlines()[:2]:
        json.loads(line)


def _trial_at(load: float, busy_ns: float, packets: float) -> object:
    from harness.traffic.search import TrialLog
    result = TrialResult(offered_pps=load, duration_s=1.0, tx_packets=int(packets), rx_packets=int(packets),
                         dut={"stage_deltas": {"gateway": [packets * 100.0, packets],
                                               "instance": [busy_ns, packets]}})
    return TrialLog(index=0, purpose="search", intended_load_pps=load, intended_duration_s=1.0, result=result,
                    mlr_loss_ratio=0.0, passed={"pdr": True}, wall_s=1.0)


def test_stage_costs_are_read_at_the_pdr_lower_bound_over_all_its_trials() -> None:
    from harness.traffic.measure import costs_at_load
    trials = [_trial_at(1e6, 400e6, 1e6), _trial_at(1e6, 200e6, 1e6), _trial_at(2e6, 9e9, 2e6)]
    costs = costs_at_load(trials, 1e6)          # only the two trials at the lower bound, summed
    assert costs["trials"] == 2
    assert costs["instance_ns_per_packet"] == 300.0 and costs["gateway_ns_per_packet"] == 100.0
    assert math.isclose(costs["instance_capacity_mpps"], 1e3 / 300)
    assert costs_at_load(trials, None) == {}


def test_point_row_takes_costs_at_the_pdr_and_names_the_bottleneck() -> None:
    rec = _record(colocated=False)
    rec["stages_at_pdr"] = {"gateway_ns_per_packet": 100.0, "instance_ns_per_packet": 800.0,
                            "instance_capacity_mpps": 1.25}
    rec["latency_trial"] = {**rec["latency_trial"], "stages": {"instance_ns_per_packet": 5000.0}}
    row = point_row(rec)
    assert row["instance_ns_per_packet"] == 800.0 and row["instance_capacity_mpps"] == 1.25
    assert row["bottleneck"] == "instance"      # PDR 1.2 Mpps against an instance capacity of 1.25
