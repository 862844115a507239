"""One module per paper figure/table (and the testbed's own limit). Each defines an Experiment subclass;
EXPERIMENTS maps the make target name to it."""

from __future__ import annotations

from experiments.base import Experiment
from experiments.figure_15 import Figure15
from experiments.limit import Limit
from experiments.startup import Figure11a, Figure11b, Table4

EXPERIMENTS: dict[str, type[Experiment]] = {
    Limit.name: Limit,
    Figure11a.name: Figure11a,
    Figure11b.name: Figure11b,
    Table4.name: Table4,
    Figure15.name: Figure15,
}
