"""The testbed's tasks, one per file, and the order each verb runs them in (check → apply → verify each:
testbed/runner.py)."""

from __future__ import annotations

from testbed.runner import Task
from testbed.tasks.build import Build
from testbed.tasks.daemons import Deploy
from testbed.tasks.dirs import Dirs
from testbed.tasks.harness_config import HarnessConfig
from testbed.tasks.hugepages import Hugepages
from testbed.tasks.nics import Nics
from testbed.tasks.packages import Packages
from testbed.tasks.python_env import PythonEnv
from testbed.tasks.reach import Reach
from testbed.tasks.source import Source
from testbed.tasks.teardown import Teardown
from testbed.tasks.trex_config import TrexConfig


def provision() -> list[Task]:
    return [Reach(), Nics(), Dirs(), Packages(), Hugepages(), Source(), Build(), PythonEnv(), HarnessConfig(),
            TrexConfig()]


def deploy() -> list[Task]:
    return [Reach(), Deploy()]


def teardown() -> list[Task]:
    return [Reach(), Teardown()]
