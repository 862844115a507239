"""The NDR/PDR search, against SimulatedGenerator response curves (no traffic is sent)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from harness.traffic.base import TrialResult
from harness.traffic.search import (
    SearchConfig,
    SearchResult,
    TrialLog,
    find_ndr_pdr,
    measurer_from_generator,
)
from harness.traffic.simulated import SimulatedGenerator

MIN, MAX = 10_000.0, 2_000_000.0
RES = 0.01          # the default resolution, a fraction of the rate
SLOPE = [(0.0, 0.0), (800_000.0, 0.0), (1_200_000.0, 0.01)]   # 0 up to 800 kpps, then +1 % per 400 kpps
SLOPE_NDR = 800_000 + 400_000 * 0.00001 / 0.01                  # where loss reaches 0.001 %: 800.4 kpps
SLOPE_PDR = 800_000 + 400_000 * 0.001 / 0.01                    # where loss reaches 0.1 %: 840 kpps


def streams(rate_pps: float) -> list[dict]:
    """A load stream plus a 1 kpps latency stream, totalling ``rate_pps``."""
    def s(pps: float, flow_stats: dict) -> dict:
        return {"mode": {"type": "continuous", "rate": {"type": "pps", "value": pps}},
                "flow_stats": flow_stats, "packet": {"binary": ""}}
    latency = min(1_000.0, rate_pps / 2)
    return [s(rate_pps - latency, {"enabled": False}),
            s(latency, {"enabled": True, "rule_type": "latency", "stream_id": 1})]


def search(gen: SimulatedGenerator, on_trial: Callable[[TrialLog], None] | None = None,
           **cfg: Any) -> SearchResult:
    cfg = {"min_rate_pps": MIN, "max_rate_pps": MAX} | cfg
    config = SearchConfig(**cfg)
    return find_ndr_pdr(measurer_from_generator(gen, streams), config, on_trial=on_trial)


def within_step_below(found: float, true: float, resolution: float = RES) -> bool:
    """The search's promise: at most ``resolution`` × the true rate below it, never above (1 pps slack
    for rounding packet counts)."""
    return true * (1 - resolution) < found <= true + 1.0


def test_finds_ndr_and_pdr_of_a_step_curve_within_the_resolution() -> None:
    gen = SimulatedGenerator(1e6, loss_at=lambda rate: 0.0 if rate <= 1e6 else 0.5)
    r = search(gen)
    assert within_step_below(r.pdr.rate_pps, 1e6)
    assert within_step_below(r.ndr.rate_pps, 1e6)
    assert r.ndr.validated and r.pdr.validated
    assert not r.generator_limited
    assert r.note == ""


def test_a_dut_a_hundred_times_below_the_ceiling_is_found_as_precisely_in_few_more_trials() -> None:
    # The remote-state baselines run at tens of kpps under a ceiling of Mpps: a resolution fixed to the
    # ceiling would stop at min_rate_pps; a relative one finds them within 1 % of their own rate.
    slow = 15_000.0
    gen = SimulatedGenerator(1e6, loss_at=lambda rate: 0.0 if rate <= slow else 0.3)
    r = search(gen, min_rate_pps=1_000.0)
    assert within_step_below(r.pdr.rate_pps, slow) and within_step_below(r.ndr.rate_pps, slow)
    fast = search(SimulatedGenerator(1e6, loss_at=lambda rate: 0.0 if rate <= 1e6 else 0.5))
    assert len(r.trials) <= len(fast.trials) + 6


def test_gentle_loss_slope_gives_an_ndr_strictly_below_the_pdr() -> None:
    r = search(SimulatedGenerator(1e6, loss_at=SLOPE))
    assert within_step_below(r.ndr.rate_pps, SLOPE_NDR)
    assert within_step_below(r.pdr.rate_pps, SLOPE_PDR)
    assert r.ndr.rate_pps < r.pdr.rate_pps
    assert r.ndr.loss_ratio <= 0.00001 and r.pdr.loss_ratio <= 0.001


def test_one_pass_serves_both_targets_each_trial_judged_against_both() -> None:
    r = search(SimulatedGenerator(1e6, loss_at=SLOPE))
    for t in r.trials:
        assert t.ndr_pass == (t.loss_ratio <= 0.00001) and t.pdr_pass == (t.loss_ratio <= 0.001)
    # PDR is searched first, and its trials already narrowed NDR: few NDR-only trials are left.
    purposes = [t.purpose for t in r.trials if t.purpose.startswith("search")]
    assert purposes[0] == "search-pdr"
    assert purposes == sorted(purposes, key=lambda p: p != "search-pdr")
    assert purposes.count("search-ndr") <= 4


def test_searches_with_short_trials_and_validates_each_result_with_one_final_trial() -> None:
    gen = SimulatedGenerator(1e6, loss_at=SLOPE)
    r = search(gen, trial_s=1.0, final_s=30.0)
    durations = [d for _, d in gen.trials]
    assert durations[:-2] == [1.0] * (len(durations) - 2)
    assert durations[-2:] == [30.0, 30.0]
    assert [t.purpose for t in r.trials[-2:]] == ["validate-pdr", "validate-ndr"]
    # The reported rate is what the validation trial achieved.
    assert r.pdr.validation is r.trials[-2].result and r.pdr.rate_pps == r.trials[-2].result.tx_pps
    assert r.ndr.validation is r.trials[-1].result and r.ndr.rate_pps == r.trials[-1].result.tx_pps
    assert r.pdr.offered_pps == r.trials[-2].rate_pps


def test_lossless_at_max_rate_costs_one_search_trial_and_says_the_dut_may_do_more() -> None:
    r = search(SimulatedGenerator(1e7))
    assert [t.purpose for t in r.trials] == ["search-pdr", "validate-pdr", "validate-ndr"]
    assert r.pdr.rate_pps == MAX and r.ndr.rate_pps == MAX
    assert "max_rate_pps" in r.pdr.note


def test_failed_validation_searches_again_below_the_failed_rate() -> None:
    # Capacity 1 Mpps and a 400 k-packet buffer: 2 s trials pass up to ~1.2 Mpps, 10 s ones to ~1.04 Mpps.
    gen = SimulatedGenerator(1e6, buffer_packets=400_000)
    r = search(gen)
    failed = next(t for t in r.trials if t.purpose == "validate-pdr" and not t.pdr_pass)
    after = r.trials[failed.index + 1:]
    assert any(t.purpose == "search-pdr" for t in after)
    assert all(t.rate_pps < failed.rate_pps for t in after)
    # stepping down from the failed rate, not bisecting up from min_rate_pps with 10 s trials
    assert min(t.rate_pps for t in after) > 0.8 * failed.rate_pps and len(after) <= 10
    # 10 s trials lose nothing up to 1e6 + 400 k / 10 s = 1.04 Mpps; the loss threshold allows a bit more
    assert within_step_below(r.pdr.rate_pps, 1.04e6 / (1 - 0.001))
    assert within_step_below(r.ndr.rate_pps, 1.04e6 / (1 - 0.00001))
    assert r.pdr.validation is not None and r.pdr.validation.duration_s == 10.0
    assert r.pdr.validated and r.pdr.loss_ratio <= 0.001
    assert r.trials[-1].purpose.startswith("validate") and r.trials[-1].pdr_pass
    assert "lost" in r.pdr.note


def test_out_of_validation_retries_reports_no_unvalidated_rate() -> None:
    r = search(SimulatedGenerator(1e6, buffer_packets=400_000), max_validation_retries=0)
    assert r.pdr.rate_pps == 0.0 and not r.pdr.validated
    assert "validation failed" in r.pdr.note


def test_generator_slower_than_the_dut_gives_a_generator_limited_result_at_the_achieved_rate() -> None:
    gen = SimulatedGenerator(1e6, max_tx_pps=600_000)
    r = search(gen)
    assert r.generator_limited and r.pdr.generator_limited and r.ndr.generator_limited
    assert r.generator_max_pps == pytest.approx(600_000)
    assert r.pdr.rate_pps == pytest.approx(600_000) and r.ndr.rate_pps == pytest.approx(600_000)
    assert all(t.rate_pps <= 600_000 for t in r.trials[1:])   # never offered above what it can do
    first = r.trials[0]
    assert first.short and first.rate_pps == MAX
    assert first.loss_ratio == 0.0 and first.ndr_pass        # the shortfall is not loss
    assert "generator" in r.pdr.note


def test_generator_faster_than_the_dut_but_short_of_max_rate_is_not_generator_limited() -> None:
    gen = SimulatedGenerator(1e6, max_tx_pps=1_500_000)
    r = search(gen)
    assert not r.generator_limited
    assert r.generator_max_pps == pytest.approx(1_500_000)
    assert within_step_below(r.pdr.rate_pps, 1e6)
    assert all(t.rate_pps <= 1_500_000 for t in r.trials[1:])


def test_loss_at_min_rate_gives_rate_zero_and_a_note_without_raising() -> None:
    r = search(SimulatedGenerator(1_000))
    for res in (r.ndr, r.pdr):
        assert res.rate_pps == 0.0 and not res.validated and res.validation is None
        assert "min_rate_pps" in res.note
    assert not any(t.purpose.startswith("validate") for t in r.trials)
    assert r.trials[-1].rate_pps == MIN


def test_on_trial_is_called_once_per_trial_in_order_as_it_happens() -> None:
    gen = SimulatedGenerator(1e6, loss_at=SLOPE)
    seen: list[TrialLog] = []

    def on_trial(log: TrialLog) -> None:
        assert len(gen.trials) == log.index + 1   # called before the next trial runs
        assert isinstance(log.result, TrialResult)
        seen.append(log)

    r = search(gen, on_trial=on_trial)
    assert seen == r.trials
    assert [t.index for t in seen] == list(range(len(gen.trials)))
    assert [(t.rate_pps, t.duration_s) for t in seen] == [(pytest.approx(o), d) for o, d in gen.trials]


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_noisy_curve_still_converges_within_a_tolerance(seed: int) -> None:
    gen = SimulatedGenerator(1e6, loss_at=SLOPE, noise_relative=0.3, noise_absolute=1e-6, seed=seed)
    r = search(gen, resolution=0.002)
    assert r.pdr.validated and r.ndr.validated
    assert r.pdr.rate_pps == pytest.approx(SLOPE_PDR, rel=0.03)
    assert r.ndr.rate_pps == pytest.approx(SLOPE_NDR, rel=0.03)
    assert len(r.trials) < 40


def test_ndr_is_never_reported_above_pdr_even_when_both_validate_at_one_rate() -> None:
    # A step curve: NDR and PDR validate at the same offered rate. The achieved tx rates of the two
    # validation trials may differ by a few pps; a passing NDR trial is also a PDR pass, so PDR >= NDR.
    class Jitter(SimulatedGenerator):
        def simulate(self, streams: Any, duration: float, mult: float = 1.0) -> TrialResult:
            r = super().simulate(streams, duration, mult)
            if duration >= 10.0 and len(self.trials) % 2 == 0:  # every other validation sends 1 more packet
                r.tx_packets += 1
                r.rx_packets += 1
            return r

    for curve_loss in (0.5, 0.9):
        r = search(Jitter(1e6, loss_at=[(0.0, 0.0), (1e6, 0.0), (1e6 + 1, curve_loss)]))
        assert r.ndr.rate_pps <= r.pdr.rate_pps


def test_result_row_has_unit_suffixed_columns() -> None:
    row = search(SimulatedGenerator(1e6, loss_at=SLOPE)).to_dict()
    for key in ("ndr_rate_pps", "pdr_rate_pps", "ndr_loss_ratio", "pdr_validated", "generator_limited",
                "search_trials", "search_trial_time_s"):
        assert key in row
    assert row["search_trial_time_s"] == 2.0 * (row["search_trials"] - 2) + 2 * 10.0


@pytest.mark.parametrize("bad", [dict(min_rate_pps=0), dict(min_rate_pps=MAX), dict(ndr_loss=0.01),
                                 dict(resolution=0), dict(trial_s=20.0), dict(max_validation_retries=-1)])
def test_config_rejects_inconsistent_values(bad: dict) -> None:
    args = dict(min_rate_pps=MIN, max_rate_pps=MAX) | bad
    with pytest.raises(ValueError):
        SearchConfig(**args)


def test_a_point_names_the_generator_as_it_reports_itself_after_running() -> None:
    # The built-in generator learns its version from its first run: a row must not carry the placeholder.
    from harness import config as cfg
    from harness.traffic.measure import Measurer, measure_point

    class LearnsItsVersion(SimulatedGenerator):
        def version(self) -> str:
            return "sim 1.0" if self.trials else "sim"

    conf = cfg.load(quick=True)
    row, _ = measure_point(Measurer(LearnsItsVersion(1e6), 64, 16, 1000.0), conf, rate_pps=1e5)
    assert row["generator"] == "sim 1.0"
