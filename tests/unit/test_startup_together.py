"""Fig. 11(a)'s rows from serpensd's start_instances records (experiments/startup.py, together_row): the
per-instance percentiles over every start, the all-ready time as the median over rounds, and the row's
identity saying serpensd and the method's design."""

from __future__ import annotations

import math

from experiments.startup import TABLE4_DESIGNS, together_row


def _recs(rounds: list[tuple[float, list[float]]]) -> list[dict[str, object]]:
    return [{"rep": rep, "ready_us": r, "all_ready_us": all_ready}
            for rep, (all_ready, ready) in enumerate(rounds) for r in ready]


def test_a_row_is_per_instance_percentiles_and_the_median_round() -> None:
    # three rounds of 3 instances; the all-ready times 30, 90, 40: median 40 (not the mean, not the max)
    recs = _recs([(30.0, [10.0, 20.0, 30.0]), (90.0, [12.0, 50.0, 90.0]), (40.0, [11.0, 25.0, 40.0])])
    row = together_row("serpens", 3, recs)
    assert row["platform"] == "serpensd" and row["design"] == TABLE4_DESIGNS["serpens"] == "serpens"
    assert row["mechanism"] == "serpens" and row["system"] == "serpens" and row["n_instances"] == 3
    assert row["startup_all_p50_us"] == 40.0
    assert row["startup_p50_us"] == 25.0 and row["n_samples"] == 9
    assert 50.0 < row["startup_p99_us"] <= 90.0
    # serpensd's reply ends at READY: no first-packet time, no requester/instance CPU pair
    assert math.isnan(row["first_packet_p50_us"]) and math.isnan(row["same_cpu_fraction"])


def test_every_serpensd_method_has_its_design() -> None:
    for method, design in (("exec", "exec-startup"), ("fork", "fork-startup"), ("load", "load-startup"),
                           ("snapshot", "snapshot-startup")):
        row = together_row(method, 1, _recs([(5.0, [5.0])]))
        assert row["design"] == design and row["startup_all_p50_us"] == 5.0 == row["startup_p50_us"]
