"""Namespace test hosts for the testbed tests: real network namespaces, a real sshd in each, real SSH.

One set of three hosts per session (h1 generator, h2 gateway, h3 worker; a veth data link h1-h2), owned by
this pytest process: removed at the end, and reclaimed by the next session if this one is killed
(testbed/local/hosts.py). They need root, ip and sshd; without them the tests fail with the reason unless
SERPENS_SKIP_DPDK=1 (like the DPDK tests)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from harness.cli import main
from testbed.local import hosts as local_hosts


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "not root"
    for tool in ("ip", local_hosts.SSHD, "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    return None


@pytest.fixture(scope="session")
def ns_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local_hosts.Hosts]:
    why = _missing()
    if why:
        if os.environ.get("SERPENS_SKIP_DPDK") == "1":
            pytest.skip(f"namespace hosts unavailable: {why}")
        pytest.fail(f"namespace hosts unavailable: {why} (run `make setup` as root)")
    d = tmp_path_factory.mktemp("testbed")
    made = local_hosts.create(d / "hosts", local_hosts.default_spec(3), owner_pid=os.getpid())
    try:
        yield made
    finally:
        local_hosts.destroy_id(made.id)


@pytest.fixture(scope="session")
def provisioned(ns_hosts: local_hosts.Hosts) -> dict[str, Any]:
    """The hosts provisioned once (the first provision's output kept for the test that checks it)."""
    first = harness("testbed", "provision", "-i", str(ns_hosts.inventory))
    return {"first": first}


def harness(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def edited_inventory(src: Path, dest: Path, edit: Any) -> Path:
    """A copy of a generated inventory with ``edit(data)`` applied."""
    data = yaml.safe_load(src.read_text())
    edit(data)
    dest.write_text(yaml.safe_dump(data, sort_keys=False))
    return dest
