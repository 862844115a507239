"""Deploy and teardown on a namespace host: a daemon starts once, is left alone when nothing changed, restarts
when its configuration changed; teardown stops it and a second teardown finds nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from testbed.local.hosts import Hosts
from tests.testbed.conftest import edited_inventory, harness


def _redis_on_h3(ns_hosts: Hosts, tmp_path: Path) -> Path:
    def edit(data: dict[str, Any]) -> None:
        # h3 alone: without its NIC, whose peer (h2) is not in this inventory
        h3 = {k: v for k, v in data["hosts"]["h3"].items() if k != "nics"}
        data["hosts"] = {"h3": {**h3, "roles": ["redis"]}}

    return edited_inventory(ns_hosts.inventory, tmp_path / "redis.yaml", edit)


def _ping(ns_hosts: Hosts) -> bool:
    p = subprocess.run(ns_hosts.ns_exec("h3", "redis-cli", "-h", ns_hosts.addresses["h3"], "-p", "6379",
                                        "ping"), capture_output=True, text=True, timeout=10)
    return p.stdout.strip() == "PONG"


def test_deploy_starts_once_restarts_on_change_and_teardown_is_idempotent(
        ns_hosts: Hosts, provisioned: dict[str, Any], tmp_path: Path) -> None:
    inv = _redis_on_h3(ns_hosts, tmp_path)
    try:
        first = harness("testbed", "deploy", "-i", str(inv))
        assert first.exit_code == 0, first.output
        assert "redis-server (re)started: not running" in first.output
        assert _ping(ns_hosts)
        pid = (Path(ns_hosts.dir) / "hosts/h3/root/run/redis-server.pid").read_text().strip()
        second = harness("testbed", "deploy", "-i", str(inv))
        assert second.exit_code == 0 and "0 changed" in second.output, second.output
        assert (Path(ns_hosts.dir) / "hosts/h3/root/run/redis-server.pid").read_text().strip() == pid
        # a changed configuration (another install root's dir line would do; here: the stored hash)
        (Path(ns_hosts.dir) / "hosts/h3/root/run/redis-server.hash").write_text("0\n")
        third = harness("testbed", "deploy", "-i", str(inv))
        assert "redis-server (re)started: configuration changed" in third.output, third.output
        assert (Path(ns_hosts.dir) / "hosts/h3/root/run/redis-server.pid").read_text().strip() != pid
        assert _ping(ns_hosts)
    finally:
        down = harness("testbed", "teardown", "-i", str(inv))
    assert down.exit_code == 0, down.output
    assert "stopped redis-server" in down.output
    assert not _ping(ns_hosts)
    again = harness("testbed", "teardown", "-i", str(inv))
    assert again.exit_code == 0 and "0 changed" in again.output, again.output
