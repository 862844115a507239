"""One module per paper figure/table (and the testbed's own limit). Each defines an Experiment subclass;
EXPERIMENTS maps the make target name to it."""

from __future__ import annotations

from experiments.base import Experiment
from experiments.limit import Limit

EXPERIMENTS: dict[str, type[Experiment]] = {
    Limit.name: Limit,
}
