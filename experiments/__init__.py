"""One module per paper figure/table (and the testbed's own limit). Each defines an Experiment subclass;
EXPERIMENTS maps the make target name to it."""

from __future__ import annotations

from experiments.base import Experiment
from experiments.figure_12 import Figure12
from experiments.figure_13 import Figure13
from experiments.figure_14 import Figure14
from experiments.figure_15 import Figure15
from experiments.limit import Limit
from experiments.soak import Soak
from experiments.startup import Figure11a, Figure11b, Table4
from experiments.table_2 import Table2

EXPERIMENTS: dict[str, type[Experiment]] = {
    Limit.name: Limit,
    Table2.name: Table2,
    Figure11a.name: Figure11a,
    Figure11b.name: Figure11b,
    Table4.name: Table4,
    Figure12.name: Figure12,
    Figure13.name: Figure13,
    Figure14.name: Figure14,
    Figure15.name: Figure15,
    Soak.name: Soak,   # `make soak`, not part of `make reproduce`
}
