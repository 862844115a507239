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
        with ResultWriter(self.csv_path, self.name, self.columns, self.config, cores=self.cores(),
                          extra=extra) as writer:
            self.progress.say(f"writing {self.csv_path} (sidecar {writer.sidecar_path})")
            self.measure(writer)
        return self.csv_path, self.make_plot()

    def make_plot(self) -> Path:
        df = pd.read_csv(self.csv_path)
        if df.empty:
            raise RuntimeError(f"{self.csv_path} has no rows to plot")
        self.figure_path.parent.mkdir(parents=True, exist_ok=True)
        self.plot(df, self.figure_path)
        return self.figure_path
