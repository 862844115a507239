"""One module per paper figure/table (and the testbed's own limit). Each defines an Experiment subclass;
EXPERIMENTS maps the make target name to it."""

from __future__ import annotations

from experiments.base import Experiment
from experiments.figure_15 import Figure15
from experiments.limit import Limit

EXPERIMENTS: dict[str, type[Experiment]] = {
    Limit.name: Limit,
    Figure15.name: Figure15,
}
