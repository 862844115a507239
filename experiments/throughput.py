"""One runner for every throughput/latency experiment (SeBS's shape: declare, run, process).

An experiment declares its grid of :class:`Point` s (platform, workload, frame size, SFC). The shared loop
here measures every point ``measurement.repetitions`` times, **interleaved**: repetition 0 of every point,
then repetition 1 of every point, ... (A B C A B C, never A A A B B B), so a slow minute of this VM lands on
one repetition of several platforms instead of on every repetition of one. Each (repetition, point) gets
a fresh rig (platform + generator), so repetitions are independent.

Every trial goes to the trial log (harness.trial_log) as it happens; after its last trial a point's record
goes there too, and :func:`harness.traffic.measure.point_row` — the pure process step — turns it into the
CSV row, written at once (an interrupted run keeps what it measured).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiments.base import Experiment
from harness.config import ConfigError
from harness.platforms import designs
from harness.results import ResultWriter
from harness.rig import rig
from harness.traffic import churn
from harness.traffic.base import TrialResult
from harness.traffic.measure import POINT_COLUMNS, Measurer, measure_point, point_row
from harness.trial_log import TrialLogWriter, trials_path


@dataclass(frozen=True)
class Point:
    """One configuration of a grid: measured once per repetition."""

    platform: str
    workload: str                      # the rows' workload: an NF, an SFC ("fw,mon,nat"), "forward"
    frame_size_b: int
    sfc: str | None = None             # what a platform that runs NFs deploys (SfcSpec.linear text)
    identity: tuple[tuple[str, Any], ...] = field(default=())   # further identity columns
    flows_workload: str = "fixed"      # fixed flows, or churn: new flows all the time (harness.traffic.churn)

    @property
    def label(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.identity)
        churning = ", churn" if self.flows_workload == "churn" else ""
        extra = " " + extra if extra else ""
        return f"{self.workload} on {self.platform}, {self.frame_size_b} B{churning}{extra}"


def interleaved(points: Sequence[Point], repetitions: int) -> list[tuple[int, Point]]:
    """The order of measurement: every point once per repetition, repetitions outermost."""
    return [(rep, p) for rep in range(repetitions) for p in points]


class ThroughputExperiment(Experiment):
    """An experiment whose points are conditional-throughput searches plus a latency trial."""

    columns = POINT_COLUMNS
    # The design axis the experiment compares (Fig. 12: state, Fig. 13: chaining): a row's ``mechanism`` is
    # its design's value on it. None: whole systems are compared and ``mechanism`` stays empty.
    axis: str | None = None

    def points(self) -> list[Point]:
        raise NotImplementedError

    def extra_columns(self, point: Point, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
        """An experiment's own columns from the platform's stats around the latency trial."""
        return {}

    @property
    def trials_path(self) -> Path:
        return trials_path(self.csv_path)

    def before_points(self, writer: ResultWriter) -> None:
        """Anything measured once per run before the grid (e.g. the machine's floor)."""

    def measure(self, writer: ResultWriter) -> None:
        grid = self.points()
        reps = self.config["measurement"]["repetitions"]
        order = interleaved(grid, reps)
        writer.note("points", [p.label for p in grid])
        writer.note("trials_file", self.trials_path.name)
        self.note_churn(writer, grid)
        self.before_points(writer)
        self.progress.say(f"{len(grid)} points × {reps} repetitions, interleaved; "
                          f"trials in {self.trials_path}")
        with TrialLogWriter(self.trials_path, writer.run_id) as log:
            for n, (rep, point) in enumerate(order, 1):
                self._measure_one(writer, log, point, rep, f"[{n}/{len(order)}] {point.label} #{rep}: ")

    def check(self) -> None:
        """Every churn point's budget, before anything is measured: a rate that would exhaust NAT's pool
        mid-run is a ConfigError now, not a NAT dropping every new flow an hour later."""
        self.churn_budgets(self.points())

    def churn_budgets(self, grid: Sequence[Point]) -> dict[str, churn.Budget]:
        """SFC text → the budget of its churn points (harness.traffic.churn.budget), checked."""
        bad = [p.label for p in grid if p.flows_workload not in churn.WORKLOADS]
        if bad:
            raise ConfigError(f"points with an unknown flows_workload (want {', '.join(churn.WORKLOADS)}): "
                              f"{'; '.join(bad)}")
        return {p.sfc or "": churn.budget(self.config, churn.sfc_nfs(p.sfc))
                for p in grid if p.flows_workload == "churn"}

    def note_churn(self, writer: ResultWriter, grid: Sequence[Point]) -> None:
        """The churn workload in the sidecar: its rate, source block, and each SFC's budget per point."""
        budgets = self.churn_budgets(grid)
        if budgets:
            tightest = min(budgets.values(), key=lambda b: b.limit)
            limits = {sfc or "(no NFs)": b.limit for sfc, b in budgets.items()}
            writer.note("churn", {**tightest.sidecar(), "limit_per_sfc": limits})

    def _measure_one(self, writer: ResultWriter, log: TrialLogWriter, point: Point, rep: int,
                     prefix: str) -> None:
        from harness.serpens.sfc import SfcSpec
        traffic = self.config["traffic"]
        sfc = SfcSpec.linear(point.sfc) if point.sfc else None
        with rig(self.config, point.platform, sfc=sfc) as r:
            writer.note(f"rig_{point.platform}", r.describe())
            self.on_rig(writer, r)
            point_id = log.new_point_id()

            def on_trial(phase: str, index: int, load: float, duration: float, result: TrialResult,
                         judgement: dict[str, Any]) -> None:
                log.trial(point_id, index, phase, load, duration, result, **judgement)
                self.progress.trial_line(prefix, phase, load, duration, result, judgement)

            flows = (churn.ChurnFlows.for_point(self.config, churn.sfc_nfs(point.sfc))
                     if point.flows_workload == "churn" else None)
            m = Measurer(r.generator, point.frame_size_b, traffic["flows"], traffic["latency_pps"],
                         platform=r.platform, churn=flows)
            self.progress.say(f"{prefix}searching")
            try:
                record = measure_point(m, self.config, on_trial=on_trial,
                                       extra_columns=lambda b, a: self.extra_columns(point, b, a))
            except Exception as exc:
                # a fault is not a result: the trial log says why, the CSV gets no row, the run stops
                log.fault(point_id, exc)
                raise
        record.update(**self.identity(point), workload=point.workload, trial=rep, point_id=point_id,
                      trials_file=self.trials_path.name, identity=dict(point.identity))
        log.point(point_id, record)
        row = point_row(record)
        writer.write(row)
        self.progress.point_line(prefix, row)

    def identity(self, point: Point) -> dict[str, str]:
        """A point's platform, system, design and mechanism columns (harness/platforms/designs.py)."""
        return {"platform": point.platform, **designs.row_identity(point.platform, self.axis)}

    def on_rig(self, writer: ResultWriter, r: Any) -> None:
        """Called with each rig once it is up (the sidecar records what actually runs where)."""
