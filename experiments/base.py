"""The shape every experiment has (after SeBS): a parameter grid, a measurement per point and repetition,
and a plot made only from the CSV.

The runner writes each row as soon as it is measured (an interrupted run keeps what it wrote; the sidecar
says ``interrupted``), shows progress on stderr, and prints where the CSV, sidecar and figure went.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from harness.config import Config, repo_path
from harness.progress import Progress
from harness.results import ResultWriter


class ExperimentError(RuntimeError):
    """An experiment cannot run or plot with what it was given (its settings, its CSV): one line."""


class Experiment(abc.ABC):
    name: str = "abstract"
    title: str = ""
    columns: list[str] = []

    def __init__(self, config: Config, progress: Progress | None = None, quick: bool = False) -> None:
        self.config = config
        self.progress = progress or Progress(self.name)
        self.quick = quick   # the QUICK=1 profile is merged into config; the sidecar says so

    @property
    def csv_path(self) -> Path:
        return repo_path(self.config["results"]["dir"]) / f"{self.name}.csv"

    @property
    def figure_path(self) -> Path:
        return repo_path(self.config["results"]["figures_dir"]) / f"{self.name}.png"

    @abc.abstractmethod
    def measure(self, writer: ResultWriter) -> None:
        """Measure every point of the grid, writing each row through ``writer`` as soon as it exists."""

    @abc.abstractmethod
    def plot(self, df: pd.DataFrame, path: Path) -> None:
        """Make the figure from the CSV's rows."""

    def cores(self) -> dict[str, Any]:
        return {}

    def repetition_count(self) -> int:
        """How many times each point is measured (the sidecar says it; the claims checker marks 1)."""
        return int(self.config["measurement"]["repetitions"])

    def repetitions(self) -> Iterator[int]:
        return iter(range(self.config["measurement"]["repetitions"]))

    def check(self) -> None:  # noqa: B027 (a hook: most experiments have nothing to check)
        """Refuse settings the experiment cannot run with (a ConfigError), before any output is opened."""

    def run(self) -> tuple[Path, Path]:
        self.check()
        extra = {"quick": self.quick, "repetitions": self.repetition_count()}
        try:
            cores = self.cores()
        except RuntimeError as exc:   # a placement the experiment refuses with these settings (Fig. 13's)
            raise ExperimentError(str(exc)) from exc
        with ResultWriter(self.csv_path, self.name, self.columns, self.config, cores=cores,
                          extra=extra) as writer:
            self.progress.say(f"writing {self.csv_path} (sidecar {writer.sidecar_path})")
            self.measure(writer)
        return self.csv_path, self.make_plot()

    def make_plot(self) -> Path:
        """The figure, from the CSV alone. A CSV that is missing, empty, not text or not this experiment's is
        one line (``--plot-only`` on the wrong results directory), not a traceback from pandas."""
        try:
            df = pd.read_csv(self.csv_path)
        except FileNotFoundError:
            raise ExperimentError(f"{self.csv_path}: no such file: run the experiment first (harness "
                                  f"experiment {self.name})") from None
        except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            why = " ".join(str(exc).split())
            raise ExperimentError(f"{self.csv_path}: not a CSV to plot: {why}") from None
        if df.empty:
            raise ExperimentError(f"{self.csv_path} has no rows to plot")
        self.figure_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.plot(df, self.figure_path)
        except KeyError as exc:   # a column the plot needs (an older CSV may lack a newer one it does not)
            raise ExperimentError(f"{self.csv_path} is not a {self.name} CSV: no column {exc}") from None
        return self.figure_path
