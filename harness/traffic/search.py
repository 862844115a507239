"""NDR/PDR rate search: the highest offered rate whose loss stays under a threshold, over trials.

Pure Python over a *measurer* (``Measurer``: offered rate in pps and duration in s in, one
:class:`TrialResult` out), so it is unit-tested against :class:`~harness.traffic.simulated.SimulatedGenerator`
and runs unchanged over TRex or the built-in generator. docs/search.md says the same at more length.

The algorithm
-------------
Two targets are searched at once: NDR (loss ratio <= ``ndr_loss``, default 0.001 %) and PDR (loss ratio
<= ``pdr_loss``, default 0.1 %). Each has an interval ``[lo, hi]``: ``lo`` is the highest rate known to
pass, ``hi`` the lowest rate known to fail (or the ceiling, ``max_rate_pps``, until a trial is run there).
Both start as ``[min_rate_pps, max_rate_pps]`` with neither end measured.

1. *Search.* The next rate is chosen for PDR while its interval is not converged, then for NDR: the
   untested ceiling first (so a DUT that is lossless at ``max_rate_pps`` costs one trial), then the
   midpoint of ``[lo, hi]`` while ``hi - lo >= resolution * hi``, then, if nothing has passed yet,
   ``min_rate_pps`` itself. The midpoint is geometric (sqrt(lo * hi)) while ``hi > 4 * lo`` and arithmetic
   after, so that a DUT 100× below ``max_rate_pps`` is found as precisely (relative to its rate) as a fast
   one, in a few more trials, not one resolution step of the ceiling wide. Every trial updates *both*
   intervals: loss under a threshold raises that target's ``lo``, loss over it lowers its ``hi``. Since
   ``ndr_loss <= pdr_loss``, a PDR trial that fails also fails NDR and an NDR trial that passes also
   passes PDR, so the NDR search usually starts from an interval the PDR search already narrowed. Search
   trials last ``trial_s``.
2. *Validate.* When both intervals have converged, one ``final_s`` trial is run at PDR's ``lo``, then one
   at NDR's ``lo``. A passing validation trial *is* the result: its ``tx_pps`` is the reported rate.
3. *Search again.* A validation trial that fails proves the short trials wrong for that target: its
   ``hi`` drops to the failed rate, its ``lo`` falls back to the highest rate that passed a trial at least
   ``final_s`` long (or ``min_rate_pps``), its remaining search trials last ``final_s`` (short trials
   have just been shown not to predict long ones), and it is validated again. With no such pass, it steps
   down from the failed rate by ``2 × resolution``, ``4 × resolution``, ... until a trial passes, then
   bisects: the edge is usually just below. After
   ``max_validation_retries`` failed validations the target gives up and reports the highest rate that
   passed a full-length trial, if any, with a note.

Loss is always counted against what the generator actually sent (:attr:`TrialResult.loss_ratio`). A
trial flagged ``short`` (the generator sent less than offered) does not count its shortfall as loss: if
its loss is within a threshold it is a pass *at the rate achieved* (``tx_pps``), which also becomes the
ceiling for every later trial, since nothing above it can be measured; a target found at that ceiling is
``generator_limited`` (the DUT may well do more). If even ``min_rate_pps`` fails, the target's rate is 0
with a note; nothing raises for that.

Assumptions
-----------
* Loss is monotonic in the offered rate (a rate that passes means every lower rate passes). Bisection
  relies on it. When it does not hold (noise, a DUT with a loss "hole") the search still ends, but it
  finds *a* rate at the edge of a pass/fail transition, not necessarily the highest passing one. A trial
  that contradicts the interval (a pass above a measured failure, or a failure below a measured pass of
  the same or greater length) is logged and ignored, except that a *longer* trial failing at or below
  ``lo`` overrides shorter evidence and triggers step 3, like a failed validation.
* Loss does not shrink with trial duration: a short-trial failure is taken as a long-trial failure, but a
  short-trial pass is only a hint that the full-length validation confirms or refutes.
* Rate granularity is relative: the result is within ``resolution`` × the true transition rate of it
  (below it, never above, under the monotonic assumption).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.traffic.base import GeneratorError, TrafficGenerator, TrialResult

Measurer = Callable[[float, float], TrialResult]

NDR = "ndr"
PDR = "pdr"
PURPOSES = ("search-ndr", "search-pdr", "validate-ndr", "validate-pdr")

# A safety net against a bug or a pathological curve; a normal search takes a few dozen trials.
MAX_TRIALS = 200
_DURATION_EPS = 1e-9


def measurer_from_generator(gen: TrafficGenerator, make_streams: Callable[[float], Sequence[Any]], *,
                            port: int = 0) -> Measurer:
    """A measurer that runs one ``gen.run_trial`` of ``make_streams(rate_pps)`` for each trial.

    ``make_streams(rate_pps)`` returns the ``STLStream`` objects (or their dicts) for a total offered rate of
    ``rate_pps``, latency streams included. The generator must already be connected.
    """

    def measure(rate_pps: float, duration_s: float) -> TrialResult:
        return gen.run_trial(make_streams(rate_pps), duration_s, port=port)

    return measure


@dataclass(kw_only=True)
class SearchConfig:
    """Parameters of one NDR/PDR search; defaults follow DESIGN.md section 6."""

    min_rate_pps: float               # lowest rate tried; failing here gives rate 0
    max_rate_pps: float               # highest rate tried (the first trial runs here)
    ndr_loss: float = 0.00001         # NDR: loss ratio <= 0.001 %
    pdr_loss: float = 0.001           # PDR: loss ratio <= 0.1 %
    resolution: float = 0.01          # stop when hi - lo < resolution * hi (a fraction of the rate found)
    trial_s: float = 2.0              # search trials
    final_s: float = 10.0             # validation trials
    max_validation_retries: int = 3   # searches again after a failed validation, per target

    def __post_init__(self) -> None:
        if not 0 < self.min_rate_pps < self.max_rate_pps:
            raise ValueError(f"need 0 < min_rate_pps < max_rate_pps, got {self.min_rate_pps} and "
                             f"{self.max_rate_pps}")
        if not 0 <= self.ndr_loss <= self.pdr_loss < 1:
            raise ValueError(f"need 0 <= ndr_loss <= pdr_loss < 1, got {self.ndr_loss} and {self.pdr_loss}")
        if not 0 < self.resolution < 1:
            raise ValueError(f"resolution is a fraction of the rate in (0, 1), got {self.resolution}")
        if not 0 < self.trial_s <= self.final_s:
            raise ValueError(f"need 0 < trial_s <= final_s, got {self.trial_s} and {self.final_s}")
        if self.max_validation_retries < 0:
            raise ValueError(f"max_validation_retries must be >= 0, got {self.max_validation_retries}")

    def converged(self, lo: float, hi: float) -> bool:
        """Whether an interval [lo, hi] is narrow enough: narrower than ``resolution`` of its top."""
        return hi - lo < self.resolution * hi

    def threshold(self, target: str) -> float:
        return {NDR: self.ndr_loss, PDR: self.pdr_loss}[target]


@dataclass
class TrialLog:
    """One trial of a search: what was asked, why, what came back, and its verdict for both targets."""

    index: int                 # 0-based position in the search
    purpose: str               # one of PURPOSES
    rate_pps: float            # offered
    duration_s: float
    result: TrialResult
    ndr_pass: bool
    pdr_pass: bool

    def passed(self, target: str) -> bool:
        return self.ndr_pass if target == NDR else self.pdr_pass

    @property
    def short(self) -> bool:
        return self.result.short

    @property
    def loss_ratio(self) -> float:
        return self.result.loss_ratio

    @property
    def achieved_pps(self) -> float:
        return self.result.tx_pps

    @property
    def effective_pps(self) -> float:
        """The rate this trial says something about: the offered rate, or what was achieved if short."""
        return self.result.tx_pps if self.result.short else self.rate_pps


@dataclass
class RateResult:
    """The outcome for one target (NDR or PDR)."""

    target: str
    loss_threshold: float
    rate_pps: float                    # achieved: the validation trial's tx_pps (0 when none passed)
    offered_pps: float                 # what that trial offered
    loss_ratio: float                  # that trial's loss ratio
    validation: TrialResult | None     # that trial (None when no full-length trial passed)
    validated: bool                    # a full-length trial passed at rate_pps
    generator_limited: bool = False    # rate_pps is what the generator could do, the DUT may do more
    note: str = ""


@dataclass
class SearchResult:
    ndr: RateResult
    pdr: RateResult
    generator_limited: bool
    trials: list[TrialLog]
    config: SearchConfig
    generator_max_pps: float | None = None   # the fastest a short trial achieved, if any was short
    notes: list[str] = field(default_factory=list)            # search-level remarks
    contradictions: list[str] = field(default_factory=list)   # trials ignored as non-monotonic, one line each

    @property
    def note(self) -> str:
        """Everything worth a human's attention, in one line (empty when the search was uneventful)."""
        parts = [self.pdr.note, self.ndr.note, *self.notes]
        if self.contradictions:
            parts.append(f"{len(self.contradictions)} trial(s) contradicted a monotonic loss curve and were "
                         "ignored (see contradictions)")
        return "; ".join(p for p in parts if p)

    @property
    def trial_time_s(self) -> float:
        """Traffic time the search spent (sum of trial durations)."""
        return sum(t.duration_s for t in self.trials)

    def to_dict(self) -> dict[str, Any]:
        """One flat row of the outcome, units in the names; ready for a results row."""
        row: dict[str, Any] = {}
        for r in (self.ndr, self.pdr):
            p = r.target
            row[f"{p}_rate_pps"] = r.rate_pps
            row[f"{p}_offered_pps"] = r.offered_pps
            row[f"{p}_loss_ratio"] = r.loss_ratio
            row[f"{p}_loss_threshold"] = r.loss_threshold
            row[f"{p}_validated"] = r.validated
            row[f"{p}_generator_limited"] = r.generator_limited
            row[f"{p}_note"] = r.note
        row["generator_limited"] = self.generator_limited
        row["generator_max_pps"] = self.generator_max_pps
        row["search_trials"] = len(self.trials)
        row["search_trial_time_s"] = self.trial_time_s
        row["search_contradictions"] = len(self.contradictions)
        return row


@dataclass
class _Interval:
    """What the search knows about one target."""

    target: str
    threshold: float
    lo: float
    hi: float
    search_s: float
    lo_log: TrialLog | None = None       # the trial that passed at lo; None: lo is the untested floor
    hi_log: TrialLog | None = None       # the trial that failed at hi; None: hi is the untested ceiling
    validation: TrialLog | None = None   # a passed full-length trial at lo
    limited: bool = False                # lo was reached by a short trial (the generator's ceiling)
    dead: bool = False                   # failed at min_rate_pps
    gave_up: bool = False                # too many failed validations
    failures: int = 0
    steps_down: int = 0                  # probes below a failed validation so far (see _next_rate)
    notes: list[str] = field(default_factory=list)

    def evidence_s(self) -> float:
        """How long the longest trial backing lo was."""
        return max(self.lo_log.duration_s if self.lo_log else 0.0,
                   self.validation.duration_s if self.validation else 0.0)


class _Search:
    def __init__(self, measure: Measurer, cfg: SearchConfig, on_trial: Callable[[TrialLog], None] | None):
        self.measure = measure
        self.cfg = cfg
        self.on_trial = on_trial
        self.trials: list[TrialLog] = []
        self.notes: list[str] = []
        self.contradictions: list[str] = []
        self.generator_max: float | None = None
        self.pdr = self._interval(PDR)
        self.ndr = self._interval(NDR)

    def _interval(self, target: str) -> _Interval:
        c = self.cfg
        return _Interval(target, c.threshold(target), c.min_rate_pps, c.max_rate_pps, c.trial_s)

    @property
    def intervals(self) -> tuple[_Interval, _Interval]:
        return (self.pdr, self.ndr)

    def other(self, iv: _Interval) -> _Interval:
        return self.ndr if iv is self.pdr else self.pdr

    # ---- the loop ------------------------------------------------------------------------------------

    def run(self) -> SearchResult:
        while len(self.trials) < MAX_TRIALS:
            step = self._next_search()
            if step is not None:
                iv, rate = step
                self._trial(rate, iv.search_s, f"search-{iv.target}", update=self.intervals)
                continue
            pending = next((iv for iv in self.intervals if self._needs_validation(iv)), None)
            if pending is None:
                break
            self._validate(pending)
        else:
            self.notes.append(f"stopped after {MAX_TRIALS} trials without converging")
        return self._result()

    def _next_rate(self, iv: _Interval) -> float | None:
        if iv.dead or iv.gave_up:
            return None
        ceiling_untested = iv.hi_log is None and not (iv.lo_log is not None and iv.lo >= iv.hi)
        if ceiling_untested:
            return iv.hi
        if not self.cfg.converged(iv.lo, iv.hi):
            if iv.failures and iv.lo_log is None:
                # searching again below a failed validation, with no full-length pass under it: the edge
                # is most likely just below, so step down from it, doubling the step, rather than bisect
                # all the way from min_rate_pps with full-length trials
                iv.steps_down += 1
                return max(iv.lo, iv.hi * (1 - min(0.5, self.cfg.resolution * 2 ** iv.steps_down)))
            if iv.hi > 4 * iv.lo:   # far apart (a slow DUT under a high ceiling): halve the ratio
                return (iv.lo * iv.hi) ** 0.5
            return (iv.lo + iv.hi) / 2
        if iv.lo_log is None:
            return iv.lo
        return None

    def _next_search(self) -> tuple[_Interval, float] | None:
        for iv in self.intervals:
            rate = self._next_rate(iv)
            if rate is not None:
                return iv, rate
        return None

    @staticmethod
    def _needs_validation(iv: _Interval) -> bool:
        return not (iv.dead or iv.gave_up) and iv.lo_log is not None and iv.validation is None

    def _validate(self, iv: _Interval) -> None:
        log = self._trial(iv.lo, self.cfg.final_s, f"validate-{iv.target}", update=(self.other(iv),))
        if log.passed(iv.target):
            iv.validation = log
            iv.limited = iv.limited or log.short
        else:
            self._search_again(iv, log)

    # ---- one trial and what it teaches ---------------------------------------------------------------

    def _trial(self, rate: float, duration: float, purpose: str, update: Sequence[_Interval]) -> TrialLog:
        result = self.measure(rate, duration)
        if result.tx_packets <= 0:
            raise GeneratorError(f"the generator sent nothing in a {duration:g} s trial at {rate:.0f} pps")
        log = TrialLog(
            index=len(self.trials), purpose=purpose, rate_pps=rate, duration_s=duration, result=result,
            ndr_pass=result.loss_ratio <= self.cfg.ndr_loss, pdr_pass=result.loss_ratio <= self.cfg.pdr_loss)
        self.trials.append(log)
        if log.short:
            self._lower_ceiling(result.tx_pps)
        for iv in update:
            self._update(iv, log)
        if self.on_trial is not None:
            self.on_trial(log)
        return log

    def _lower_ceiling(self, achieved: float) -> None:
        """A short trial: nothing above what the generator achieved can be measured."""
        if self.generator_max is None or achieved < self.generator_max:
            self.generator_max = achieved
        for iv in self.intervals:
            if iv.hi > achieved:
                iv.hi, iv.hi_log = achieved, None
            if iv.lo > achieved:
                iv.lo, iv.limited = achieved, True

    def _update(self, iv: _Interval, log: TrialLog) -> None:
        if iv.dead or iv.gave_up:
            return
        rate = log.effective_pps
        if log.passed(iv.target):
            if log.duration_s + _DURATION_EPS < iv.search_s:
                return  # shorter than this target now trusts
            if iv.lo_log is not None and rate <= iv.lo:
                return  # nothing new
            if iv.hi_log is not None and rate >= iv.hi:
                self._contradiction(iv, log, f"passed above a failure at {iv.hi:.0f} pps")
                return
            iv.lo = min(rate, iv.hi)
            iv.lo_log, iv.validation, iv.limited = log, None, log.short
            return
        if iv.hi_log is not None and rate >= iv.hi:
            return  # nothing new
        if iv.lo_log is None and rate <= iv.lo:
            iv.hi, iv.hi_log, iv.dead = rate, log, True
            return
        if iv.lo_log is not None and rate <= iv.lo:
            if log.duration_s > iv.evidence_s() + _DURATION_EPS:
                self._search_again(iv, log)
            else:
                self._contradiction(iv, log, f"failed below a pass at {iv.lo:.0f} pps")
            return
        iv.hi, iv.hi_log = rate, log

    def _contradiction(self, iv: _Interval, log: TrialLog, what: str) -> None:
        self.contradictions.append(f"trial {log.index} ({log.duration_s:g} s at {log.rate_pps:.0f} pps, loss "
                                   f"{_pct(log.loss_ratio)}) {what} for {iv.target.upper()}")

    def _search_again(self, iv: _Interval, log: TrialLog) -> None:
        """A full-length trial failed at (or below) ``iv.lo``: search below it with full-length trials."""
        rate = log.effective_pps
        iv.failures += 1
        what = (f"a {log.duration_s:g} s trial at {log.rate_pps:.0f} pps lost {_pct(log.loss_ratio)} "
                f"> {_pct(iv.threshold)}")
        if iv.failures > self.cfg.max_validation_retries:
            iv.gave_up = True
            iv.notes.append(what)
            return
        iv.notes.append(f"{what}: searched again below it")
        iv.search_s = max(iv.search_s, log.duration_s)
        iv.hi, iv.hi_log, iv.validation, iv.steps_down = rate, log, None, 0
        if rate <= self.cfg.min_rate_pps:
            iv.dead = True
            return
        floor = self._best_pass(iv.target, iv.search_s, below=rate)
        if floor is not None:
            iv.lo, iv.lo_log, iv.limited = floor.effective_pps, floor, floor.short
        else:
            iv.lo, iv.lo_log, iv.limited = min(self.cfg.min_rate_pps, rate), None, False

    def _best_pass(self, target: str, min_duration: float, below: float | None = None) -> TrialLog | None:
        """The fastest trial at least ``min_duration`` long that passed ``target`` (below a rate)."""
        passes = [t for t in self.trials
                  if t.passed(target) and t.duration_s + _DURATION_EPS >= min_duration
                  and (below is None or t.effective_pps < below)]
        return max(passes, key=lambda t: t.effective_pps, default=None)

    # ---- the outcome ---------------------------------------------------------------------------------

    def _result(self) -> SearchResult:
        ndr, pdr = self._rate_result(self.ndr), self._rate_result(self.pdr)
        if ndr.rate_pps > pdr.rate_pps and ndr.validated and ndr.validation is not None:
            # A validated NDR trial also passed the PDR threshold (ndr_loss <= pdr_loss), so the PDR is at
            # least that rate. This happens when both validations ran at one offered rate and achieved
            # slightly different tx rates, or when loss is not monotonic around these rates (noise).
            if ndr.offered_pps > pdr.offered_pps:
                self.notes.append("NDR validated above PDR: loss is not monotonic (noisy?) around these "
                                  "rates; PDR raised to the NDR's rate; repeat the measurement")
            pdr = RateResult(pdr.target, pdr.loss_threshold, ndr.rate_pps, ndr.offered_pps, ndr.loss_ratio,
                             ndr.validation, True, ndr.generator_limited,
                             (pdr.note + "; " if pdr.note else "") + "PDR from the NDR validation trial")
        limited = ndr.generator_limited or pdr.generator_limited
        return SearchResult(ndr=ndr, pdr=pdr, generator_limited=limited, trials=self.trials, config=self.cfg,
                            generator_max_pps=self.generator_max, notes=self.notes,
                            contradictions=self.contradictions)

    def _rate_result(self, iv: _Interval) -> RateResult:
        c, name = self.cfg, iv.target.upper()
        history = "; ".join(iv.notes)

        def make(log: TrialLog | None, note: str, validated: bool, limited: bool = False) -> RateResult:
            if history:
                note = f"{note} ({history})" if note else history
            if log is None:
                return RateResult(iv.target, iv.threshold, 0.0, 0.0, 0.0, None, False, False, note)
            return RateResult(iv.target, iv.threshold, log.achieved_pps, log.rate_pps, log.loss_ratio,
                              log.result, validated, limited, note)

        if iv.dead:
            lost = iv.hi_log.loss_ratio if iv.hi_log else float("nan")
            return make(None, f"{name} not found: loss {_pct(lost)} > {_pct(iv.threshold)} already at "
                              f"{iv.hi:.0f} pps (min_rate_pps {c.min_rate_pps:.0f})", False)
        if iv.gave_up or iv.validation is None:
            why = (f"{name} validation failed {iv.failures} times" if iv.gave_up
                   else f"{name} not validated (search stopped)")
            best = self._best_pass(iv.target, c.final_s)
            if best is None:
                return make(None, f"{why}; no full-length trial passed", False)
            return make(best, f"{why}; reporting the highest rate that passed a full-length trial", True,
                        best.short)
        note = ""
        if iv.limited:
            note = (f"{name} limited by the generator ({iv.validation.achieved_pps:.0f} pps achieved): "
                    "the DUT may forward more")
        elif iv.hi_log is None and iv.lo >= c.max_rate_pps:
            note = f"{name} passed at max_rate_pps ({c.max_rate_pps:.0f}): the DUT may forward more"
        return make(iv.validation, note, True, iv.limited)


def _pct(ratio: float) -> str:
    return f"{ratio * 100:.3g} %"


def find_ndr_pdr(measure: Measurer, cfg: SearchConfig,
                 on_trial: Callable[[TrialLog], None] | None = None) -> SearchResult:
    """Find NDR and PDR in one binary-search pass, then validate each with a full-length trial.

    ``on_trial`` is called with each :class:`TrialLog` right after its trial, in order.
    Raises :class:`GeneratorError` only when a trial sent no packets at all.
    """
    return _Search(measure, cfg, on_trial).run()
