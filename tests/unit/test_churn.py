"""The churn flow workload: its settings and budget against NAT's pool, each trial's new flows, the rate split
(the churn stream is part of the offered load), and the experiments' points and CLI errors."""

from __future__ import annotations

import ipaddress
import math
from typing import Any

import pytest
from click.testing import CliRunner

pytest.importorskip("trex_stl_lib.api")

from harness import config as cfg  # noqa: E402
from harness.cli import main  # noqa: E402
from harness.config import ConfigError  # noqa: E402
from harness.traffic import churn, profiles  # noqa: E402
from harness.traffic.base import stream_json  # noqa: E402
from harness.traffic.measure import Measurer, point_row  # noqa: E402
from harness.traffic.simulated import SimulatedGenerator  # noqa: E402

CHURN_FIRST = int(ipaddress.IPv4Address(profiles.CHURN_SRC))


class RecordingGenerator(SimulatedGenerator):
    """The simulated DUT, keeping the JSON of every trial's streams."""

    def __init__(self) -> None:
        super().__init__(capacity_pps=1e7)
        self.sent: list[list[dict[str, Any]]] = []

    def add_streams(self, streams: Any, port: int = 0) -> None:
        self.sent.append([stream_json(s) for s in streams])
        super().add_streams(streams, port)


def churn_range(streams: list[dict[str, Any]]) -> range:
    """The churn series' flows one trial's streams open (by the churn stream's flow var)."""
    [var] = [i for s in streams for i in s["vm"]["instructions"] if i.get("name") == "churn"
             and i["type"] == "flow_var"]
    return range(var["min_value"] - CHURN_FIRST, var["max_value"] - CHURN_FIRST + 1)


def test_default_rate_keeps_a_whole_point_inside_nats_pool() -> None:
    conf = cfg.load()
    s = churn.settings(conf)
    assert s.new_flows_per_s == 300 and s.workloads == ("fixed", "churn")
    # warm-up 1 + search 150 + one more 1 s trial + latency trial 5
    assert churn.point_traffic_s(conf) == 157.0
    b = churn.budget(conf, ["fw", "mon", "nat"])
    assert b.flows_per_point == math.ceil(300 * 157 * 1.01) + churn.trials_per_point(conf)
    nat_pool = 65535 - 1024 + 1
    assert b.limit == nat_pool - conf["traffic"]["flows"] - 1 and "NAT" in b.limited_by
    assert b.flows_per_point + conf["traffic"]["flows"] + 1 <= nat_pool
    # QUICK=1: a 45 s search, no warm-up, a 2 s latency trial
    assert churn.point_traffic_s(cfg.load(quick=True)) == 48.0


def test_a_rate_that_could_exhaust_nats_pool_is_refused_with_the_rate_that_fits() -> None:
    conf = cfg.load(overrides=["traffic.churn.new_flows_per_s=500"])
    with pytest.raises(ConfigError, match=r"new_flows_per_s = 500 .*NAT's pool of 64512.*at most 399 new"):
        churn.budget(conf, ["nat"])
    churn.budget(conf, ["fw"])                      # no NF that keeps per-flow state forever: fine
    more_ips = cfg.load(overrides=["traffic.churn.new_flows_per_s=500",
                                   "platforms.serpens.nfs.nat.external_ip=198.18.1.1,198.18.1.2"])
    assert churn.budget(more_ips, ["nat"]).limit == 2 * 64512 - 1025


def test_mon_tables_bound_the_churn_too() -> None:
    conf = cfg.load(overrides=["traffic.churn.new_flows_per_s=500"])
    with pytest.raises(ConfigError, match="MON's flow/host tables of 65536"):
        churn.budget(conf, ["mon"])
    assert churn.nf_flow_capacity("mon", {"flows": "100000", "hosts": "10000"})[0] == 10000
    assert churn.nf_flow_capacity("fw", {}) is None


def test_the_churn_series_bounds_even_an_sfc_without_nfs() -> None:
    conf = cfg.load(overrides=["traffic.churn.new_flows_per_s=1000000"])
    with pytest.raises(ConfigError, match=r"churn series \(4194304 flows"):
        churn.budget(conf, [])


@pytest.mark.parametrize(("override", "message"), [
    ("traffic.churn.new_flows_per_s=0", "positive number"),
    ("traffic.churn.new_flows_per_s=-3", "positive number"),
    ("traffic.churn.new_flows_per_s=.nan", "positive number"),
    ("traffic.flows_workloads=[fixed, churny]", "flows_workloads"),
    ("traffic.flows_workloads=[]", "flows_workloads"),
    ("traffic.flows_workloads=[churn, churn]", "flows_workloads"),
])
def test_bad_churn_settings_are_config_errors_naming_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        churn.settings(cfg.load(overrides=[override]))


def test_each_trial_gets_the_next_unused_flows_and_the_budget_stops_a_point() -> None:
    flows = churn.ChurnFlows(300, limit=1000, limited_by="a test pool")
    n = churn.allotment(300, 1.0)
    assert n >= 300 * 1.01 and flows.take(300, 1.0) == (0, n)
    assert flows.take(300, 1.0) == (n, n) and flows.next == 2 * n
    with pytest.raises(churn.ChurnExhausted, match="a test pool"):
        flows.take(300, 2.0)
    assert flows.next == 2 * n                      # a refused trial takes nothing


def test_measurer_splits_the_rate_so_churn_is_part_of_the_offered_load() -> None:
    gen = RecordingGenerator()
    m = Measurer(gen, 64, 1024, 1000, churn=churn.ChurnFlows(300))
    assert m.rates(1e6) == (1e6 - 1300, 300, 1000)
    assert m.rates(1000) == (250, 250, 500)         # low rates: latency half, churn half the rest
    result = m(1e6, 1.0)
    assert result.offered_pps == pytest.approx(1e6)
    load, churn_stream, lat = gen.sent[0]
    assert [profiles.stream_pps(s) for s in (load, churn_stream, lat)] == [1e6 - 1300, 300, 1000]
    # the fixed workload: the same split without a churn stream
    fixed = Measurer(RecordingGenerator(), 64, 1024, 1000)
    assert fixed.rates(1e6) == (1e6 - 1000, 0.0, 1000) and len(fixed.streams(1e6)) == 2


def test_successive_trials_of_a_point_never_repeat_a_churn_flow() -> None:
    gen = RecordingGenerator()
    m = Measurer(gen, 64, 1024, 1000, churn=churn.ChurnFlows(300))
    for rate, duration in ((1e6, 1.0), (5e5, 2.0), (2e6, 0.5)):
        m(rate, duration)
    ranges = [churn_range(s) for s in gen.sent]
    assert [len(r) for r in ranges] == [churn.allotment(300, d) for d in (1.0, 2.0, 0.5)]
    assert all(a.stop == b.start for a, b in zip(ranges, ranges[1:], strict=False))   # back to back
    assert all(len(r) >= 300 * d for r, d in zip(ranges, (1.0, 2.0, 0.5), strict=True))  # never wraps
    assert m.churn is not None and m.churn.next == ranges[-1].stop


def test_point_row_says_which_flow_workload_and_its_rate() -> None:
    record = {"platform": "snf", "workload": "nat", "frame_size_b": 64, "flows": 1024,
              "flows_workload": "churn", "new_flows_per_s": 300.0, "trial": 0, "load_fraction": 0.8,
              "search": None, "latency_trial": None, "extra": {}, "churn": {"flows_handed_out": 40000}}
    row = point_row(record)
    assert row["flows_workload"] == "churn" and row["new_flows_per_s"] == 300.0
    assert "churn" not in row                        # the bookkeeping stays in the trial log's record


def test_figure_12_measures_nat_with_both_workloads_and_figure_15_its_sfc() -> None:
    from experiments.figure_12 import Figure12
    from experiments.figure_15 import Figure15
    conf = cfg.load()
    pts = Figure12(conf).points()
    by_nf = {(p.workload, p.flows_workload) for p in pts}
    assert ("nat", "churn") in by_nf and ("nat", "fixed") in by_nf
    assert {w for nf, w in by_nf if nf != "nat"} == {"fixed"}
    assert len(pts) == len({(p.platform, p.workload, p.flows_workload) for p in pts})
    pts15 = Figure15(conf).points()
    sfc = {(p.platform, p.flows_workload) for p in pts15 if p.platform != "wire"}
    assert {w for _, w in sfc} == {"fixed", "churn"}
    assert [p.flows_workload for p in pts15 if p.platform == "wire"] == ["fixed"]
    only_fixed = cfg.load(overrides=["traffic.flows_workloads=[fixed]"])
    assert {p.flows_workload for p in Figure12(only_fixed).points()} == {"fixed"}


def test_experiment_refuses_a_churn_that_would_exhaust_nat_in_one_line(tmp_path: Any) -> None:
    res = CliRunner().invoke(main, ["--set", f"results.dir={tmp_path}", "--set",
                                    "traffic.churn.new_flows_per_s=2000", "experiment", "figure-12"])
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    assert "NAT's pool" in res.output and "at most 399 new flows/s" in res.output
    assert not list(tmp_path.iterdir())              # refused before any result file was opened


def test_run_refuses_a_churn_that_would_exhaust_nat_before_starting_anything(tmp_path: Any) -> None:
    res = CliRunner().invoke(main, ["--set", "traffic.churn.new_flows_per_s=5000", "run", "--platform",
                                    "serpens", "--sfc", "nat", "--flows-workload", "churn", "--out",
                                    str(tmp_path)])
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    assert "NAT's pool" in res.output and not list(tmp_path.iterdir())


def test_plots_label_churn_rows_apart_and_read_older_csvs_as_fixed() -> None:
    import pandas as pd

    from harness import plots
    df = pd.DataFrame({"workload": ["nat", "nat", "fw"], "flows_workload": ["fixed", "churn", None]})
    assert list(plots.with_flows_workload(df)) == ["nat", plots.churn_label("nat"), "fw"]
    assert list(plots.with_flows_workload(df.drop(columns=["flows_workload"]))) == ["nat", "nat", "fw"]


def test_the_sidecar_records_the_churn_rate_and_each_sfcs_budget(tmp_path: Any) -> None:
    import json

    from experiments.figure_15 import Figure15
    from harness.results import ResultWriter
    exp = Figure15(cfg.load())
    with ResultWriter(tmp_path / "f.csv", "figure-15", ["platform"], exp.config) as writer:
        exp.note_churn(writer, exp.points())
    note = json.loads((tmp_path / "f.json").read_text())["churn"]
    assert note["new_flows_per_s"] == 300 and note["source_block"] == "16.128.0.0/10"
    assert note["limit_per_sfc"] == {"fw,mon,nat": 64512 - 1025}
    assert note["flows_per_point_max"] <= note["flows_per_point_limit"]
