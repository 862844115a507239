"""The wire across two namespace hosts: serpens-gen on h1, serpens-wire on h2, a veth between them driven by
DPDK's net_af_packet on each end; the row, the sidecar and the hosts' own files come back. Starts DPDK
busy-pollers: run this file under the bench lock (`flock /tmp/bench.lock pytest ...`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from testbed.local.hosts import Hosts
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
