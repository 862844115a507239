"""DPDK across namespace hosts. The wire: serpens-gen on h1, serpens-wire on h2, a veth between them driven
by DPDK's net_af_packet on each end; the row, the sidecar and the hosts' own files come back. Deploy:
serpensd on the gateway host h2, on its data NIC through net_af_packet. Starts DPDK busy-pollers: run
this file under the bench lock (`flock /tmp/bench.lock pytest ...`)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from testbed import inventory
from testbed.local.hosts import Hosts
from testbed.remote import Remote
from tests.testbed.conftest import harness

pytestmark = pytest.mark.dpdk


def test_wire_runs_across_two_hosts_and_every_packet_is_accounted_for(
        ns_hosts: Hosts, provisioned: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = harness("testbed", "run", "-i", str(ns_hosts.inventory), "wire", "--rate-mpps", "0.02",
                     "--duration", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    csvs = list(out.glob("*.csv"))
    assert len(csvs) == 1
    row = pd.read_csv(csvs[0]).iloc[0]
    assert row["platform"] == "wire" and row["tx_packets"] > 10_000
    sidecar = json.loads(csvs[0].with_suffix(".json").read_text())
    assert sidecar["testbed"]["placement"] == {"generator": "h1", "gateway": "h2"}
    fetched = out / csvs[0].stem
    gen = json.loads((fetched / "h1-gen-report.json").read_text())
    wire = json.loads((fetched / "wire-final-stats.json").read_text())
    # the generator's report came from h1, the wire's counters from h2, and they agree packet for packet:
    # what h1 sent reached h2, which sent it all back (or counted it dropped), and h1 received it all
    assert gen["tx_packets"] == row["tx_packets"]
    assert wire["rx_packets"] == gen["tx_packets"]
    assert wire["rx_packets"] == wire["tx_packets"] + wire["tx_dropped"]
    assert gen["rx_packets"] == wire["tx_packets"]
    assert "net_af_packet" in (fetched / "h2-serpens-wire.log").read_text() or wire["rx_packets"] > 0


def test_deploy_starts_serpensd_on_the_gateway_and_teardown_stops_it(
        ns_hosts: Hosts, provisioned: dict[str, Any]) -> None:
    inv = inventory.load(ns_hosts.inventory)
    h2 = inv.hosts["h2"]
    try:
        first = harness("testbed", "deploy", "-i", str(ns_hosts.inventory), "--hosts", "h2")
        assert first.exit_code == 0, first.output
        assert "serpensd (re)started: not running" in first.output
        with Remote(h2) as r:
            pid = r.out(f"cat {shlex.quote(h2.path('run', 'serpensd.pid'))}")
            assert r.ok(f"test -S {shlex.quote(h2.path('run', 'serpensd.sock'))} && kill -0 {pid}")
            # its port is the host's data NIC: one of serpensd's sockets is an AF_PACKET socket of h2's
            # namespace (/proc/net/packet lists them by inode)
            fds = r.out(f"ls -l /proc/{pid}/fd")
            inodes = {w.split("[")[1].rstrip("]") for w in fds.split() if w.startswith("socket:[")}
            packet = [ln.split()[-1] for ln in r.out("cat /proc/net/packet").splitlines()[1:]]
            assert inodes & set(packet), (inodes, packet)
        second = harness("testbed", "deploy", "-i", str(ns_hosts.inventory), "--hosts", "h2")
        assert second.exit_code == 0 and "0 changed" in second.output, second.output
    finally:
        down = harness("testbed", "teardown", "-i", str(ns_hosts.inventory), "--hosts", "h2")
    assert down.exit_code == 0 and "stopped serpensd" in down.output, down.output
    with Remote(h2) as r:
        assert not r.ok(f"kill -0 {pid}")
        assert r.out("ls /var/run/dpdk | grep -c serpensd-h2 || true") == "0"
