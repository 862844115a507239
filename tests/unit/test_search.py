"""The NDR/PDR search (MLRsearch behind our measurer adapter), against SimulatedGenerator curves: no traffic.

Run as a script (``.venv/bin/python tests/unit/test_search.py``) it prints the time-budget table of
docs/search.md: estimated search time (trial durations + 0.4 s per trial) over a few curves and seeds.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

if __name__ == "__main__":  # run as a script from anywhere in the tree
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness import config as cfg
from harness.results import COLUMNS
from harness.traffic.base import GeneratorError, TrialResult
from harness.traffic.search import (
    Goal,
    Measurer,
    SearchResult,
    SearchSettings,
    TrialLog,
    find_ndr_pdr,
    measurement_result,
    measurer_from_generator,
    search_settings,
)
from harness.traffic.simulated import MEASURED_STALLS, SimulatedGenerator, StallClass

OVERHEAD_S = 0.4    # per trial: every trial starts a serpens-gen process (the brief's assumption)
EDGE = 3e6          # where the step curves start losing
SLOPE = [(0.0, 0.0), (800_000.0, 0.0), (1_200_000.0, 0.01)]   # 0 up to 800 kpps, then +1 % per 400 kpps
SLOPE_NDR = 800_000.0                                         # where loss becomes > 0
SLOPE_PDR = 800_000 + 400_000 * 0.001 / 0.01                  # where loss reaches 0.1 %: 840 kpps
# The DUT is descheduled now and then, far less often than this machine's vCPUs are (MEASURED_STALLS)
RARE_STALLS = (StallClass(0.2, 0.005, 0.010), StallClass(3.0, 0.001, 0.002))


def step(edge: float = EDGE) -> Callable[[float], float]:
    return lambda rate: 0.0 if rate <= edge else 0.3


def streams(rate_pps: float) -> list[dict]:
    """A load stream plus a 1 kpps latency stream, totalling ``rate_pps``."""
    def s(pps: float, flow_stats: dict) -> dict:
        return {"mode": {"type": "continuous", "rate": {"type": "pps", "value": pps}},
                "flow_stats": flow_stats, "packet": {"binary": ""}}
    latency = min(1_000.0, rate_pps / 2)
    return [s(rate_pps - latency, {"enabled": False}),
            s(latency, {"enabled": True, "rule_type": "latency", "stream_id": 1})]


class VirtualClock:
    """Time as a real search would spend it: each trial takes its duration plus OVERHEAD_S."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def timed(self, measure: Measurer) -> Measurer:
        def m(rate_pps: float, duration_s: float) -> TrialResult:
            self.now += duration_s + OVERHEAD_S
            return measure(rate_pps, duration_s)
        return m


def defaults(quick: bool = False, overrides: tuple[str, ...] = ()) -> SearchSettings:
    return search_settings(cfg.load(quick=quick, overrides=overrides))


STRICT = ("search.goals.ndr.exceed_ratio=0", "search.goals.pdr.exceed_ratio=0")


def search(gen: SimulatedGenerator, settings: SearchSettings | None = None,
           on_trial: Callable[[TrialLog], None] | None = None) -> SearchResult:
    clock = VirtualClock()
    measure = clock.timed(measurer_from_generator(gen, streams))
    return find_ndr_pdr(measure, settings or defaults(), on_trial=on_trial, clock=clock)


def within_width_below(found: float, edge: float, goal: Goal) -> bool:
    """MLRsearch's promise on a monotonic curve: the relevant lower bound is within the goal's relative width
    below the edge, and the conditional throughput takes off at most the goal's loss ratio from that."""
    return edge * (1 - goal.relative_width - goal.loss_ratio) <= found <= edge


# ---- curves ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("quick", [False, True])
def test_step_curve_gives_both_goals_within_their_width_below_the_edge(quick: bool) -> None:
    r = search(SimulatedGenerator(EDGE, loss_at=step()), defaults(quick))
    for g in (r.ndr, r.pdr):
        assert within_width_below(g.conditional_throughput_pps, EDGE, g.goal)
        assert g.lower_bound_pps <= EDGE < g.upper_bound_pps
        assert (g.upper_bound_pps - g.lower_bound_pps) <= g.goal.relative_width * g.upper_bound_pps
        assert g.lower_bad_fraction == 0.0 and g.upper_bad_fraction == 1.0
        assert g.lower_stats["bad_long"] == 0.0
        assert g.lower_stats["good_long"] >= g.goal.duration_sum_s * (1 - g.goal.exceed_ratio)
        assert not g.generator_limited
    assert r.complete and r.note == ""


def test_gentle_slope_gives_ndr_and_pdr_at_their_own_edges() -> None:
    r = search(SimulatedGenerator(1e6, loss_at=SLOPE))
    assert within_width_below(r.ndr.conditional_throughput_pps, SLOPE_NDR, r.ndr.goal)
    assert within_width_below(r.pdr.conditional_throughput_pps, SLOPE_PDR, r.pdr.goal)


def test_a_dut_far_below_max_load_is_found_as_precisely() -> None:
    edge = 50_000.0   # 400 x below max load, 5 x above min load
    r = search(SimulatedGenerator(1e6, loss_at=step(edge)))
    for g in (r.ndr, r.pdr):
        assert within_width_below(g.conditional_throughput_pps, edge, g.goal)


@pytest.mark.parametrize("seed", range(3))
def test_a_seeded_noisy_curve_converges_and_repeats(seed: int) -> None:
    def gen() -> SimulatedGenerator:
        return SimulatedGenerator(1e6, loss_at=SLOPE, noise_relative=0.5, seed=seed)

    r = search(gen())
    assert r.complete
    assert within_width_below(r.ndr.conditional_throughput_pps, SLOPE_NDR, r.ndr.goal)  # 0 stays 0
    assert abs(r.pdr.conditional_throughput_pps / SLOPE_PDR - 1) < 0.05
    again = search(gen())
    assert again.to_dict() == r.to_dict()


# ---- the stall model --------------------------------------------------------------------------------------


def stalled(seed: int) -> SimulatedGenerator:
    return SimulatedGenerator(EDGE, loss_at=step(), dut_stalls=RARE_STALLS, seed=seed)


def test_rare_dut_stalls_do_not_move_the_result_with_the_exceed_ratio() -> None:
    # a stall of 5.5-10 ms overflows a 16 k ring at 3 Mpps, so about one 1 s trial in six loses packets
    results = [search(stalled(seed)) for seed in range(10)]
    hit = [any(not t.passed["ndr"] for t in r.trials if t.intended_load_pps <= EDGE) for r in results]
    assert sum(hit) >= 7  # the stalls did make trials below the edge lose packets
    within = [all(within_width_below(g.conditional_throughput_pps, EDGE, g.goal) for g in (r.ndr, r.pdr))
              for r in results]
    # with the default 10 s duration sum an unlucky load is misjudged now and then (CSIT's 21 s: never in 40
    # seeds; docs/search.md), so: most searches, the median, and none far off
    assert sum(within) >= 8
    ndr = [r.ndr.conditional_throughput_pps for r in results]
    assert within_width_below(statistics.median(ndr), EDGE, results[0].ndr.goal)
    assert min(ndr) > 0.95 * EDGE


def test_rare_dut_stalls_drag_strict_rfc2544_down() -> None:
    strict = defaults(overrides=STRICT)
    assert all(g.exceed_ratio == 0 for g in strict.goals)
    results = [search(stalled(seed), strict) for seed in range(10)]
    ndr = [r.ndr.conditional_throughput_pps for r in results]
    within = [within_width_below(r.ndr.conditional_throughput_pps, EDGE, r.ndr.goal) for r in results]
    assert sum(within) <= 2
    assert statistics.median(ndr) < 0.97 * EDGE


def test_generator_stalls_are_not_loss() -> None:
    gen = SimulatedGenerator(EDGE, loss_at=step(), generator_stalls=MEASURED_STALLS, seed=3)
    r = search(gen)
    below = [t for t in r.trials if t.intended_load_pps <= EDGE]
    assert sum(t.result.skipped_stall_packets for t in below) > 0
    assert all(t.mlr_loss_ratio == 0.0 and all(t.passed.values()) for t in below)
    for g in (r.ndr, r.pdr):
        assert within_width_below(g.conditional_throughput_pps, EDGE, g.goal)
        assert not g.generator_limited
    assert "descheduled" in r.note


# ---- a generator that cannot keep the rate ---------------------------------------------------------------


@pytest.mark.parametrize("reports_schedule", [True, False])
def test_a_slow_generator_sets_generator_limited_and_caps_the_result(reports_schedule: bool) -> None:
    gen_max = 2e6
    gen = SimulatedGenerator(EDGE, loss_at=step(), max_tx_pps=gen_max, reports_schedule=reports_schedule)
    r = search(gen)
    achieved = max(t.result.tx_pps for t in r.trials)
    # a shortfall within the shortfall tolerance is not counted (with or without a schedule)
    slack = 1.0 + gen.shortfall_tolerance
    for g in (r.ndr, r.pdr):
        assert g.generator_limited
        assert 0 < g.conditional_throughput_pps <= achieved * slack
        assert g.conditional_throughput_pps >= gen_max * (1 - g.goal.relative_width - g.goal.loss_ratio)
    assert "generator did not reach" in r.ndr.note


def test_max_load_passing_leaves_no_upper_bound_and_says_the_dut_may_do_more() -> None:
    settings = defaults()
    r = search(SimulatedGenerator(1e9))
    for g in (r.ndr, r.pdr):
        assert g.upper_bound_pps is None and g.upper_bad_fraction is None and g.upper_stats == {}
        assert g.lower_bound_pps == g.conditional_throughput_pps == settings.max_load_pps
        assert not g.generator_limited
        assert "may forward more" in g.note
    assert r.to_dict()["ndr_upper_bound_mpps"] is None


# ---- failures ------------------------------------------------------------------------------------------


def test_min_load_failing_gives_zero_and_a_note_not_an_exception() -> None:
    settings = defaults()
    r = search(SimulatedGenerator(1e6, loss_at=lambda rate: 0.01), settings)
    for g in (r.ndr, r.pdr):
        assert g.conditional_throughput_pps == 0.0
        assert g.lower_bound_pps is None and g.upper_bound_pps == settings.min_load_pps
        assert "min load" in g.note
    assert r.to_dict()["pdr_mpps"] == 0.0


def test_only_the_goal_that_fails_at_min_load_gives_zero() -> None:
    r = search(SimulatedGenerator(1e6, loss_at=lambda rate: 0.0005 if rate <= 1e6 else 0.3))
    assert r.ndr.conditional_throughput_pps == 0.0 and "min load" in r.ndr.note
    assert within_width_below(r.pdr.conditional_throughput_pps, 1e6, r.pdr.goal) and r.pdr.note == ""


@pytest.mark.parametrize("error", [GeneratorError("serpens-gen died"), KeyboardInterrupt(),
                                   RuntimeError("Optimized search takes too long.")])
def test_exceptions_from_the_measurer_propagate_unchanged(error: BaseException) -> None:
    gen = SimulatedGenerator(1e6)
    ok = measurer_from_generator(gen, streams)
    calls = []

    def measure(rate_pps: float, duration_s: float) -> TrialResult:
        calls.append(rate_pps)
        if len(calls) == 3:
            raise error
        return ok(rate_pps, duration_s)

    with pytest.raises(type(error)) as raised:
        find_ndr_pdr(measure, defaults())
    assert raised.value is error and len(calls) == 3


def test_running_out_of_time_gives_the_bounds_so_far_marked_incomplete() -> None:
    r = search(SimulatedGenerator(1e6, loss_at=step(1e6)), dataclasses.replace(defaults(), max_search_s=1e-9))
    assert not r.complete
    assert "max_search_s" in r.note
    assert r.trials  # MLRsearch checks the time after its initial trials


# ---- the trial log and the row -----------------------------------------------------------------------------


def test_on_trial_sees_every_trial_once_in_order_warmup_first() -> None:
    seen: list[TrialLog] = []
    settings = defaults()
    r = search(SimulatedGenerator(EDGE, loss_at=step()), settings, on_trial=seen.append)
    assert seen == r.trials and [t.index for t in seen] == list(range(len(seen)))
    assert seen[0].purpose == "warmup" and seen[0].intended_load_pps == settings.max_load_pps
    assert seen[0].intended_duration_s == settings.warmup_s
    assert {t.purpose for t in seen[1:]} == {"search"}
    assert all(t.wall_s == pytest.approx(t.intended_duration_s + OVERHEAD_S) for t in seen)
    assert all(set(t.passed) == {"ndr", "pdr"} for t in seen)
    assert r.wall_s == pytest.approx(sum(t.wall_s for t in seen))


def test_quick_has_no_warmup() -> None:
    seen: list[TrialLog] = []
    search(SimulatedGenerator(EDGE, loss_at=step()), defaults(quick=True), on_trial=seen.append)
    assert {t.purpose for t in seen} == {"search"}


def test_the_row_has_the_promised_columns_in_mpps() -> None:
    r = search(SimulatedGenerator(EDGE, loss_at=step()))
    row = r.to_dict()
    assert set(row) <= set(COLUMNS)
    for goal in ("ndr", "pdr"):
        g = r.goals[goal]
        assert row[f"{goal}_mpps"] == g.conditional_throughput_pps / 1e6
        assert row[f"{goal}_lower_bound_mpps"] == g.lower_bound_pps / 1e6
        assert row[f"{goal}_upper_bound_mpps"] == g.upper_bound_pps / 1e6
        assert row[f"{goal}_generator_limited"] is False
    assert row["search_trials"] == len(r.trials)
    assert row["search_time_s"] == r.wall_s and row["search_note"] == ""


def test_two_names_for_the_same_goal_share_one_search() -> None:
    same = defaults(overrides=("search.goals.pdr.loss_ratio=0",))
    r = search(SimulatedGenerator(EDGE, loss_at=step()), same)
    assert r.ndr.conditional_throughput_pps == r.pdr.conditional_throughput_pps > 0


# ---- the adapter's accounting ----------------------------------------------------------------------------


def trial(**kw: Any) -> TrialResult:
    base = {"offered_pps": 1e6, "duration_s": 1.0, "tx_packets": 1_000_000, "rx_packets": 1_000_000}
    return TrialResult(**(base | kw))


def test_packets_skipped_while_descheduled_are_neither_sent_nor_lost() -> None:
    r = trial(tx_packets=990_000, rx_packets=990_000, intended_packets=1_000_000,
              skipped_stall_packets=10_000)
    mr = measurement_result(r, 1.0, 1e6, 1.4)
    assert mr.offered_count == 990_000 and mr.intended_count == 990_000 and mr.loss_ratio == 0.0


def test_a_generator_descheduled_beyond_the_stall_tolerance_did_not_offer_the_load() -> None:
    # a busy neighbour on the generator's core: half the schedule skipped while descheduled
    r = trial(tx_packets=500_000, rx_packets=500_000, intended_packets=1_000_000,
              skipped_stall_packets=500_000)
    assert r.stalled and r.short and not r.reached_intended_load
    mr = measurement_result(r, 1.0, 1e6, 1.4)
    assert mr.unsent_count == 500_000 and mr.loss_ratio == pytest.approx(0.5)
    within = trial(tx_packets=960_000, rx_packets=960_000, intended_packets=1_000_000,
                   skipped_stall_packets=40_000)     # this VM's usual stalls: within the tolerance
    assert not within.stalled and not within.short


def test_a_few_slow_skips_within_the_tolerance_are_not_unsent() -> None:
    # with NDR's loss ratio 0, one packet counted as unsent would fail the trial
    r = trial(tx_packets=999_990, rx_packets=999_990, intended_packets=1_000_000, skipped_slow_packets=10)
    mr = measurement_result(r, 1.0, 1e6, 1.4)
    assert not r.short and mr.unsent_count == 0 and mr.loss_ratio == 0.0


def test_packets_skipped_for_being_too_slow_count_as_unsent() -> None:
    r = trial(tx_packets=990_000, rx_packets=990_000, intended_packets=1_000_000, skipped_slow_packets=10_000)
    mr = measurement_result(r, 1.0, 1e6, 1.4)
    assert mr.unsent_count == 10_000 and mr.loss_ratio == pytest.approx(0.01)


def test_dut_loss_is_counted_against_what_was_sent() -> None:
    mr = measurement_result(trial(rx_packets=999_000, intended_packets=1_000_000), 1.0, 1e6, 1.4)
    assert mr.loss_count == 1_000 and mr.loss_ratio == pytest.approx(0.001)


def test_without_a_schedule_only_a_short_trial_counts_its_shortfall() -> None:
    close = measurement_result(trial(tx_packets=999_000, rx_packets=999_000), 1.0, 1e6, 1.4)
    assert close.intended_count == close.offered_count and close.loss_ratio == 0.0
    short = measurement_result(trial(tx_packets=900_000, rx_packets=900_000), 1.0, 1e6, 1.4)
    assert short.intended_count == 1_000_000 and short.loss_ratio == pytest.approx(0.1)


def test_duration_with_overheads_is_the_wall_time_but_never_less_than_the_trial() -> None:
    assert measurement_result(trial(), 1.0, 1e6, 1.4).duration_with_overheads == 1.4
    assert measurement_result(trial(), 1.0, 1e6, 0.0001).duration_with_overheads == 1.0


# ---- settings ------------------------------------------------------------------------------------------


def test_defaults_are_csits_goals_with_the_documented_deviations() -> None:
    s = defaults()
    ndr, pdr = s.goal("ndr"), s.goal("pdr")
    assert (ndr.loss_ratio, pdr.loss_ratio) == (0.0, 0.001)
    for g in (ndr, pdr):
        assert (g.exceed_ratio, g.relative_width) == (0.5, 0.005)
        assert (g.initial_trial_s, g.final_trial_s) == (1.0, 1.0)
        assert (g.preceding_targets, g.expansion_coefficient) == (2, 2)
        assert g.duration_sum_s == 10.0   # CSIT: 21 (docs/search.md, time budget)
    assert s.warmup_s == 1.0 and (s.min_load_pps, s.max_load_pps) == (1e4, 2e7)
    q = defaults(quick=True)
    assert all(g.duration_sum_s < ndr.duration_sum_s and g.relative_width > ndr.relative_width
               for g in q.goals)


@pytest.mark.parametrize("override, key", [
    ("search.goals.pdr.relative_width=1.5", "search.goals.pdr"),
    ("search.goals.ndr.final_trial_s=30", "search.goals.ndr"),
    ("search.goals.ndr.exceed_ratio=1", "search.goals.ndr"),
    ("search.goals.pdr.preceding_targets=0", "search.goals.pdr"),
    ("search.min_rate_mpps=30", "search"),
    ("search.max_search_s=0", "search"),
])
def test_bad_settings_are_one_clear_configuration_error(override: str, key: str) -> None:
    with pytest.raises(cfg.ConfigError) as err:
        defaults(overrides=(override,))
    msg = str(err.value)
    assert f"'{key}" in msg and "\n" not in msg and "SearchGoal(" not in msg   # the key or one below it


def test_old_search_keys_are_gone() -> None:
    with pytest.raises(cfg.ConfigError, match="unknown key 'search.trial_s'"):
        cfg.load(overrides=["search.trial_s=1"])


# ---- the time budget (docs/search.md) --------------------------------------------------------------------

BUDGET_CURVES: dict[str, Callable[[int], SimulatedGenerator]] = {
    "step at 3 Mpps": lambda seed: SimulatedGenerator(EDGE, loss_at=step()),
    "gentle slope (0.80/0.84 Mpps)": lambda seed: SimulatedGenerator(1e6, loss_at=SLOPE),
    "step at 50 kpps": lambda seed: SimulatedGenerator(1e6, loss_at=step(50_000.0)),
    "generator capped at 2 Mpps": lambda seed: SimulatedGenerator(EDGE, loss_at=step(), max_tx_pps=2e6),
    "noisy slope (x N(1, 0.5))": lambda seed: SimulatedGenerator(1e6, loss_at=SLOPE, noise_relative=0.5,
                                                                 seed=seed),
    "rare DUT stalls, 3 Mpps": lambda seed: stalled(seed),
    "measured DUT stalls, 3 Mpps": lambda seed: SimulatedGenerator(EDGE, loss_at=step(),
                                                                   dut_stalls=MEASURED_STALLS, seed=seed),
}
BUDGETS = {"quick": (True, 45.0), "defaults": (False, 150.0)}


def estimated_s(curve: str, quick: bool, seed: int, overrides: tuple[str, ...] = ()) -> float:
    return search(BUDGET_CURVES[curve](seed), defaults(quick, overrides)).wall_s


@pytest.mark.parametrize("profile", BUDGETS)
@pytest.mark.parametrize("curve", [c for c in BUDGET_CURVES if not c.startswith("measured")])
def test_a_search_fits_its_time_budget(profile: str, curve: str) -> None:
    quick, budget = BUDGETS[profile]
    times = [estimated_s(curve, quick, seed) for seed in range(5)]
    assert statistics.median(times) <= budget


CSIT_SUM = ("search.goals.ndr.duration_sum_s=21", "search.goals.pdr.duration_sum_s=21")
BUDGET_PROFILES: dict[str, tuple[bool, tuple[str, ...]]] = {
    "CSIT (duration sum 21 s)": (False, CSIT_SUM),
    "defaults (10 s)": (False, ()),
    "quick (5 s, width 2 %)": (True, ()),
}
# other ways of fitting the budget that were tried (--alternatives)
ALTERNATIVES: dict[str, tuple[bool, tuple[str, ...]]] = {
    "21 s, width 1 %": (False, CSIT_SUM + ("search.goals.ndr.relative_width=0.01",
                                           "search.goals.pdr.relative_width=0.01")),
    "21 s, width 2 %": (False, CSIT_SUM + ("search.goals.ndr.relative_width=0.02",
                                           "search.goals.pdr.relative_width=0.02")),
    "14 s": (False, ("search.goals.ndr.duration_sum_s=14", "search.goals.pdr.duration_sum_s=14")),
    "7 s": (False, ("search.goals.ndr.duration_sum_s=7", "search.goals.pdr.duration_sum_s=7")),
}


def budget_table(profiles: dict[str, tuple[bool, tuple[str, ...]]], seeds: int = 10) -> str:
    """Median and max estimated time per search, and median trials, per curve and settings."""
    lines = ["| curve | " + " | ".join(profiles) + " |", "|---" * (len(profiles) + 1) + "|"]
    for curve in BUDGET_CURVES:
        cells = []
        for quick, overrides in profiles.values():
            settings = defaults(quick, overrides)
            results = [search(BUDGET_CURVES[curve](seed), settings) for seed in range(seeds)]
            t = [r.wall_s for r in results]
            n = [len(r.trials) for r in results]
            cells.append(f"{statistics.median(t):.0f} s / {max(t):.0f} s ({statistics.median(n):.0f} trials)")
        lines.append(f"| {curve} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def stall_table(make: Callable[[int], SimulatedGenerator], edge: float, seeds: int = 40) -> str:
    """How often DUT stalls move the result out of the goal width, with and without the exceed ratio."""
    lines = ["| settings | exceed ratio 0.5: within the width | NDR median [min-max] "
             "| exceed ratio 0 (RFC 2544): within | NDR median [min-max] |", "|---|---|---|---|---|"]
    for label, (quick, overrides) in BUDGET_PROFILES.items():
        cells = []
        for extra in ((), STRICT):
            settings = defaults(quick, overrides + extra)
            results = [search(make(seed), settings) for seed in range(seeds)]
            within = sum(all(within_width_below(g.conditional_throughput_pps, edge, g.goal)
                             for g in (r.ndr, r.pdr)) for r in results)
            ndr = [r.ndr.conditional_throughput_pps / 1e6 for r in results]
            spread = f"{statistics.median(ndr):.3f} [{min(ndr):.2f}-{max(ndr):.2f}] Mpps"
            cells += [f"{within} of {seeds}", spread]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    if "--alternatives" in sys.argv:
        print(budget_table(ALTERNATIVES))
        sys.exit(0)
    print(budget_table(BUDGET_PROFILES))
    print("\nRare DUT stalls (RARE_STALLS), edge 3 Mpps:\n")
    print(stall_table(stalled, EDGE))
    print("\nMeasured DUT stalls (MEASURED_STALLS), edge 10 Mpps:\n")
    print(stall_table(lambda seed: SimulatedGenerator(1e7, loss_at=step(1e7), dut_stalls=MEASURED_STALLS,
                                                      seed=seed), 1e7))
