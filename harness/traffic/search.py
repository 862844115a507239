"""NDR/PDR search: FD.io CSIT's MLRsearch over our measurers (docs/search.md says the same at more length).

The algorithm is not ours. It is the ``MLRsearch`` package from PyPI (FD.io CSIT's implementation of the IETF
BMWG MLRsearch specification): for each *goal* (a loss ratio, an exceed ratio, a relative width, trial
durations and a duration sum) it finds a *relevant lower bound* and a *relevant upper bound* of intended load
and reports the *conditional throughput* at the lower bound. A load is a lower bound for a goal when no more
than ``exceed_ratio`` of its trial time missed the goal's loss ratio, so one unlucky trial (this machine
stalls, DESIGN.md section 10) does not decide a load; ``exceed_ratio: 0`` is strict RFC 2544.

This module supplies what MLRsearch leaves to its user:

* the *measurer* adapter (:class:`_MlrMeasurer`): one of our trials, a :class:`TrialResult`, as an MLRsearch
  ``MeasurementResult`` (:func:`measurement_result`). The judgement calls are there: packets the generator
  skipped while it was descheduled are not counted at all, packets it skipped because it could not keep the
  rate count as unsent, i.e. bad, as MLRsearch intends;
* the goals from the configuration (:func:`search_settings`), and a result that keeps every trial, both
  relevant bounds with their trial statistics, and whether the generator, not the DUT, made the upper bound
  (:class:`SearchResult`).

It is pure Python over a ``Measurer`` (intended load in pps and duration in s in, one :class:`TrialResult`
out), so it is unit-tested against :class:`~harness.traffic.simulated.SimulatedGenerator` and runs unchanged
over TRex or the built-in generator. Exceptions from the measurer propagate unchanged: a fault is never turned
into a result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from MLRsearch import AbstractMeasurer, MeasurementResult, MultipleLossRatioSearch, SearchGoal
from MLRsearch import Config as MlrConfig
from MLRsearch import GoalResult as MlrGoalResult

from harness.config import Config, ConfigError
from harness.traffic.base import TrafficGenerator, TrialResult

Measurer = Callable[[float, float], TrialResult]

NDR = "ndr"
PDR = "pdr"
PURPOSES = ("warmup", "search")

# What MultipleLossRatioSearch raises when search_duration_max has passed (MLRsearch 1.2.1); anything else
# it raises is a bug or a fault and propagates.
_MLR_TIMEOUT = "Optimized search takes too long."

_log = logging.getLogger(__name__)


def measurer_from_generator(gen: TrafficGenerator, make_streams: Callable[[float], Sequence[Any]], *,
                            port: int = 0) -> Measurer:
    """A measurer that runs one ``gen.run_trial`` of ``make_streams(rate_pps)`` for each trial.

    ``make_streams(rate_pps)`` returns the ``STLStream`` objects (or their dicts) for a total offered rate of
    ``rate_pps``, latency streams included. The generator must already be connected.
    """

    def measure(rate_pps: float, duration_s: float) -> TrialResult:
        return gen.run_trial(make_streams(rate_pps), duration_s, port=port)

    return measure


# ---- settings ------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Goal:
    """One MLRsearch ``SearchGoal``, with a name (``ndr``, ``pdr``, or any short name)."""

    name: str
    loss_ratio: float             # a trial is good when its loss ratio is at most this
    exceed_ratio: float           # share of the trial time at a lower bound that may be bad (0: RFC 2544)
    relative_width: float         # stop when (upper - lower) / upper is at most this
    initial_trial_s: float        # shortest trial (the coarse preceding targets use it)
    final_trial_s: float          # trial duration of the goal itself
    duration_sum_s: float         # trial time (with overheads) that classifies a load
    preceding_targets: int = 2    # coarser targets searched first, to narrow the interval cheaply
    expansion_coefficient: int = 2  # external search multiplies the width by this

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise ValueError(f"goal '{self.name}': {problem}")
        try:
            self.mlr()
        except ValueError as exc:  # anything MLRsearch rejects that the checks above missed
            raise ValueError(f"goal '{self.name}': MLRsearch rejects it: {exc}") from None

    def _problem(self) -> str:
        if not self.name or not self.name.isidentifier():
            return "the name must be a short identifier such as ndr or pdr"
        if not 0 <= self.loss_ratio < 1:
            return f"loss_ratio must be in [0, 1), got {self.loss_ratio}"
        if not 0 <= self.exceed_ratio < 1:
            return f"exceed_ratio must be in [0, 1), got {self.exceed_ratio}"
        if not 0 < self.relative_width < 1:
            return f"relative_width must be in (0, 1), got {self.relative_width}"
        if not 0 < self.initial_trial_s <= self.final_trial_s <= self.duration_sum_s:
            return ("need 0 < initial_trial_s <= final_trial_s <= duration_sum_s, got "
                    f"{self.initial_trial_s}, {self.final_trial_s}, {self.duration_sum_s}")
        if self.preceding_targets < 0:
            return f"preceding_targets must be >= 0, got {self.preceding_targets}"
        if self.preceding_targets == 0 and self.initial_trial_s < self.duration_sum_s:
            return "preceding_targets 0 needs initial_trial_s = duration_sum_s (MLRsearch's rule)"
        if self.expansion_coefficient < 2:
            return f"expansion_coefficient must be >= 2, got {self.expansion_coefficient}"
        return ""

    def mlr(self) -> SearchGoal:
        """The MLRsearch goal. ``fail_fast`` is off: a min load that fails gives no lower bound, not an
        exception, and the result says so."""
        return SearchGoal(loss_ratio=self.loss_ratio, exceed_ratio=self.exceed_ratio,
                          relative_width=self.relative_width, initial_trial_duration=self.initial_trial_s,
                          final_trial_duration=self.final_trial_s, duration_sum=self.duration_sum_s,
                          preceding_targets=self.preceding_targets,
                          expansion_coefficient=self.expansion_coefficient, fail_fast=False)


@dataclass(frozen=True, kw_only=True)
class SearchSettings:
    goals: tuple[Goal, ...]
    min_load_pps: float
    max_load_pps: float
    max_search_s: float           # MLRsearch search_duration_max: the search ends (incomplete) after this
    warmup_s: float               # MLRsearch warmup_duration: one ignored trial at max load first (0 = none)

    def __post_init__(self) -> None:
        object.__setattr__(self, "goals", tuple(self.goals))
        names = [g.name for g in self.goals]
        if not names:
            raise ValueError("at least one goal is needed")
        if len(set(names)) != len(names):
            raise ValueError(f"goal names must be unique, got {names}")
        if not 0 < self.min_load_pps < self.max_load_pps:
            raise ValueError(f"need 0 < min load < max load, got {self.min_load_pps:g} and "
                             f"{self.max_load_pps:g} pps")
        if self.max_search_s <= 0:
            raise ValueError(f"max_search_s must be > 0, got {self.max_search_s}")
        if self.warmup_s < 0:
            raise ValueError(f"warmup_s must be >= 0, got {self.warmup_s}")

    def goal(self, name: str) -> Goal:
        return next(g for g in self.goals if g.name == name)

    def mlr_config(self) -> MlrConfig:
        return MlrConfig(goals=_unique(g.mlr() for g in self.goals), min_load=self.min_load_pps,
                         max_load=self.max_load_pps, search_duration_max=self.max_search_s,
                         warmup_duration=self.warmup_s)


def _unique(goals: Any) -> list[SearchGoal]:
    # MLRsearch refuses two equal goals; two names for one goal (say pdr loss set to 0) share its search
    return list(dict.fromkeys(goals))


def search_settings(config: Config) -> SearchSettings:
    """The search settings of a merged configuration (``search:`` in harness/config/defaults.yaml)."""
    s = config["search"]
    goals = []
    for name, values in s["goals"].items():
        try:
            goals.append(Goal(name=name, **values))
        except (TypeError, ValueError) as exc:
            reason = str(exc).removeprefix(f"goal '{name}': ")
            raise ConfigError(f"configuration key 'search.goals.{name}': {reason}") from None
    if not 0 < s["min_rate_mpps"] < s["max_rate_mpps"]:
        raise ConfigError("configuration key 'search': need 0 < min_rate_mpps < max_rate_mpps, got "
                          f"{s['min_rate_mpps']} and {s['max_rate_mpps']}")
    try:
        return SearchSettings(goals=tuple(goals), min_load_pps=s["min_rate_mpps"] * 1e6,
                              max_load_pps=s["max_rate_mpps"] * 1e6, max_search_s=s["max_search_s"],
                              warmup_s=s["warmup_s"])
    except ValueError as exc:
        raise ConfigError(f"configuration key 'search': {exc}") from None


# ---- results -------------------------------------------------------------------------------------------


@dataclass
class TrialLog:
    """One trial, as the search saw it."""

    index: int                    # 0-based, in order
    purpose: str                  # "warmup" (ignored by MLRsearch) or "search"
    intended_load_pps: float
    intended_duration_s: float
    result: TrialResult
    mlr_loss_ratio: float         # the loss ratio MLRsearch judged the trial by (loss + unsent, see docs)
    passed: dict[str, bool]       # goal name -> mlr_loss_ratio <= the goal's loss ratio
    wall_s: float                 # wall time of the measure() call (trial + overheads)


@dataclass
class GoalResult:
    goal: Goal
    conditional_throughput_pps: float    # 0.0 when there is no relevant lower bound (note says why)
    lower_bound_pps: float | None        # relevant lower bound (intended load)
    upper_bound_pps: float | None        # relevant upper bound; None when max load was a lower bound
    lower_bad_fraction: float | None     # bad trial seconds / all trial seconds at the lower bound
    upper_bad_fraction: float | None
    lower_stats: dict[str, float]        # MLRsearch's TargetStat at that bound (good_long, bad_long, ...)
    upper_stats: dict[str, float]
    generator_limited: bool              # the generator, not the DUT, may have made the bound (docs)
    note: str


@dataclass
class SearchResult:
    goals: dict[str, GoalResult]         # by goal name, in the settings' order
    trials: list[TrialLog]
    settings: SearchSettings
    wall_s: float
    notes: list[str] = field(default_factory=list)
    complete: bool = True                # False when max_search_s ended the search before every goal

    @property
    def ndr(self) -> GoalResult:
        return self.goals[NDR]

    @property
    def pdr(self) -> GoalResult:
        return self.goals[PDR]

    @property
    def note(self) -> str:
        """Everything worth a reader's attention, in one line (empty when the search was uneventful)."""
        parts = [f"{name.upper()}: {g.note}" for name, g in self.goals.items() if g.note]
        return "; ".join(parts + self.notes)

    def to_dict(self) -> dict[str, Any]:
        """One flat row, units in the names (column meanings: harness/results.py COLUMNS)."""
        row: dict[str, Any] = {}
        for name, g in self.goals.items():
            row[f"{name}_mpps"] = g.conditional_throughput_pps / 1e6
            row[f"{name}_lower_bound_mpps"] = _mpps(g.lower_bound_pps)
            row[f"{name}_upper_bound_mpps"] = _mpps(g.upper_bound_pps)
            row[f"{name}_lower_bad_fraction"] = g.lower_bad_fraction
            row[f"{name}_upper_bad_fraction"] = g.upper_bad_fraction
            row[f"{name}_generator_limited"] = g.generator_limited
        row["search_trials"] = len(self.trials)
        row["search_time_s"] = self.wall_s
        row["search_note"] = self.note
        return row


def _mpps(pps: float | None) -> float | None:
    return None if pps is None else pps / 1e6


def _fmt(pps: float | None) -> str:
    return "-" if pps is None else f"{pps / 1e6:.4g}"


# ---- the measurer adapter --------------------------------------------------------------------------------


def measurement_result(result: TrialResult, intended_duration_s: float, intended_load_pps: float,
                       wall_s: float) -> MeasurementResult:
    """One trial as MLRsearch sees it.

    MLRsearch counts loss plus *unsent* packets (intended count - offered count) as bad. Of the schedule the
    generator did not send, what it skipped while descheduled (``skipped_stall_packets``) is left out of both
    counts: it is neither the DUT's doing nor a load the generator cannot offer, and this machine's stalls
    would otherwise fail every PDR trial — unless they exceed ``stall_tolerance`` of the schedule
    (:attr:`TrialResult.stalled`: a busy neighbour, not the VM's usual stalls), when they count as unsent
    too. What it skipped because it could not keep the rate (``skipped_slow_packets``) counts as unsent once
    the trial is ``short`` (beyond ``shortfall_tolerance``), which steers the search away from loads the
    generator cannot offer; a few within the tolerance do not (with NDR's loss ratio 0, one would fail the
    trial). A generator that does not report its schedule (``intended_packets`` 0, e.g. TRex) has its
    shortfall counted as unsent only when the trial is ``short`` (beyond the shortfall tolerance; CSIT counts
    TRex's beyond 10 us of traffic); within the tolerance the sent count stands in for the intended one.

    The duration with overheads is the wall time of the trial, as in CSIT (it counts towards the duration
    sum), but never less than the trial itself (a simulated generator returns at once).
    """
    offered_s = result.duration_s if result.duration_s > 0 else intended_duration_s
    intended: int | None = None
    if result.intended_packets > 0:
        # Within the tolerances a trial offered its load: a few slow skips (a burst refused by a full ring,
        # a page fault) are as little the DUT's doing as stall skips, and with NDR's loss ratio 0 a single
        # one counted as unsent would fail the trial. Beyond them the load was not offered: all of it counts.
        unsent = 0
        if result.short:
            unsent = result.skipped_slow_packets + (result.skipped_stall_packets if result.stalled else 0)
        intended = result.tx_packets + unsent
    elif result.short:
        intended = max(result.tx_packets, round(result.offered_pps * offered_s))
    return MeasurementResult(intended_duration=intended_duration_s, intended_load=intended_load_pps,
                             offered_count=result.tx_packets, loss_count=result.loss_packets,
                             offered_duration=offered_s, duration_with_overheads=max(wall_s, offered_s),
                             intended_count=intended)


class _MlrMeasurer(AbstractMeasurer):
    """Our measurer behind MLRsearch's ``AbstractMeasurer``; keeps a :class:`TrialLog` of every trial."""

    def __init__(self, measure: Measurer, settings: SearchSettings,
                 on_trial: Callable[[TrialLog], None] | None, clock: Callable[[], float]) -> None:
        self._measure = measure
        self._settings = settings
        self._on_trial = on_trial
        self._clock = clock
        self.trials: list[TrialLog] = []
        self.raised: BaseException | None = None   # what the measurer (or on_trial) raised, if anything

    def measure(self, intended_duration: float, intended_load: float) -> MeasurementResult:
        try:
            return self._trial(intended_duration, intended_load)
        except BaseException as exc:
            self.raised = exc
            raise

    def _trial(self, intended_duration: float, intended_load: float) -> MeasurementResult:
        # MLRsearch's first call is its warm-up at max load when warmup_duration is set; it ignores the result
        purpose = "warmup" if self._settings.warmup_s > 0 and not self.trials else "search"
        start = self._clock()
        result = self._measure(intended_load, intended_duration)
        wall_s = self._clock() - start
        mr = measurement_result(result, intended_duration, intended_load, wall_s)
        log = TrialLog(index=len(self.trials), purpose=purpose, intended_load_pps=intended_load,
                       intended_duration_s=intended_duration, result=result, mlr_loss_ratio=mr.loss_ratio,
                       passed={g.name: mr.loss_ratio <= g.loss_ratio for g in self._settings.goals},
                       wall_s=wall_s)
        self.trials.append(log)
        if self._on_trial is not None:
            self._on_trial(log)
        return mr


# ---- the search ----------------------------------------------------------------------------------------


def find_ndr_pdr(measure: Measurer, settings: SearchSettings,
                 on_trial: Callable[[TrialLog], None] | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> SearchResult:
    """Run MLRsearch for every goal of ``settings`` at once over ``measure``.

    ``on_trial`` is called right after every trial, in order. ``clock`` times each trial (its wall time is
    the duration with overheads MLRsearch adds to its duration sums); a test or an estimate may pass a
    simulated one. ``max_search_s`` is timed by MLRsearch itself, on the real monotonic clock.
    """
    adapter = _MlrMeasurer(measure, settings, on_trial, clock)
    search = MultipleLossRatioSearch(config=settings.mlr_config())
    start = clock()
    notes: list[str] = []
    complete = True
    try:
        by_goal = search.search(measurer=adapter, debug=_log.debug)
    except RuntimeError as exc:
        if exc is adapter.raised or str(exc) != _MLR_TIMEOUT:
            raise
        # what the trials so far established, from MLRsearch's own database
        by_goal = {g: MlrGoalResult.from_bounds(
                       search.database.get_relevant_bounds(search.scaling.goal_to_final_target[g]))
                   for g in _unique(goal.mlr() for goal in settings.goals)}
        complete = False
        notes.append(f"the search stopped after max_search_s = {settings.max_search_s:g} s before every goal "
                     "was reached: bounds as far as they got")
    wall_s = clock() - start
    search_trials = [t for t in adapter.trials if t.purpose == "search"]
    goals = {g.name: _goal_result(g, by_goal[g.mlr()], search_trials, settings, complete)
             for g in settings.goals}
    stalled = sum(t.result.skipped_stall_packets for t in adapter.trials)
    if stalled:
        hit = sum(1 for t in adapter.trials if t.result.skipped_stall_packets)
        notes.append(f"the generator was descheduled in {hit} trial(s) and skipped {stalled} packets "
                     "(not counted as sent or lost)")
    return SearchResult(goals=goals, trials=adapter.trials, settings=settings, wall_s=wall_s, notes=notes,
                        complete=complete)


def _stats(bound: Any) -> dict[str, float]:
    """The numbers of MLRsearch's TargetStat at a relevant bound (trimmed to the goal's final target)."""
    if not bound:
        return {}
    stat = next(iter(bound.target_to_stat.values()))
    return {"good_long": stat.good_long, "bad_long": stat.bad_long, "good_short": stat.good_short,
            "bad_short": stat.bad_short, "pessimistic_loss_ratio": stat.pessimistic_loss_ratio}


def _at(trials: list[TrialLog], load: float | None) -> list[TrialLog]:
    return [t for t in trials if load is not None and t.intended_load_pps == load]


def _bad_fraction(trials: list[TrialLog], goal: Goal) -> float | None:
    total = sum(t.intended_duration_s for t in trials)
    if not total:
        return None
    return sum(t.intended_duration_s for t in trials if not t.passed[goal.name]) / total


def _generator_made_it_bad(t: TrialLog, goal: Goal) -> bool:
    """A bad trial the DUT alone would have passed, or one whose generator fell short of the load."""
    return not t.passed[goal.name] and (t.result.short or t.result.loss_ratio <= goal.loss_ratio)


def _goal_result(goal: Goal, found: MlrGoalResult, trials: list[TrialLog], settings: SearchSettings,
                 complete: bool) -> GoalResult:
    lower = float(found.relevant_lower_bound) if found.relevant_lower_bound else None
    upper = float(found.relevant_upper_bound) if found.relevant_upper_bound else None
    throughput = found.conditional_throughput
    at_lower, at_upper = _at(trials, lower), _at(trials, upper)
    # the upper bound is the generator's when one of its bad trials was bad for the generator's sake; a lower
    # bound whose trials fell short was never offered at all
    limited_above = any(_generator_made_it_bad(t, goal) for t in at_upper)
    limited_below = any(t.result.short for t in at_lower)
    notes: list[str] = []
    if lower is None and upper is not None and upper <= settings.min_load_pps:
        notes.append(f"min load {settings.min_load_pps / 1e6:g} Mpps missed the goal (loss ratio <= "
                     f"{goal.loss_ratio:g} in at least {1 - goal.exceed_ratio:.0%} of trial time): "
                     "no lower bound, conditional throughput 0")
    elif lower is None:
        notes.append("no lower bound was established before the search stopped: conditional throughput 0")
    if lower is not None and upper is None:
        notes.append(f"max load {settings.max_load_pps / 1e6:g} Mpps met the goal: the DUT may forward more"
                     if complete else "the search stopped before an upper bound was established")
    if limited_above:
        notes.append(f"the generator did not reach the intended load at the upper bound {_fmt(upper)} Mpps: "
                     "the bound may be the generator's, not the DUT's")
    if limited_below:
        notes.append(f"the generator fell short of the intended load at the lower bound {_fmt(lower)} Mpps: "
                     "that load was never offered")
    if not complete and lower is not None and upper is not None \
            and (upper - lower) > goal.relative_width * upper:
        notes.append(f"bounds {_fmt(lower)}-{_fmt(upper)} Mpps are wider than the goal's relative width")
    return GoalResult(
        goal=goal,
        conditional_throughput_pps=float(throughput) if throughput is not None else 0.0,
        lower_bound_pps=lower, upper_bound_pps=upper,
        lower_bad_fraction=_bad_fraction(at_lower, goal), upper_bad_fraction=_bad_fraction(at_upper, goal),
        lower_stats=_stats(found.relevant_lower_bound), upper_stats=_stats(found.relevant_upper_bound),
        generator_limited=limited_above or limited_below,
        note="; ".join(notes))
