"""Serpens across namespace hosts: `harness testbed run figure-15` with serpens-gen on h1, the gateway
serpensd on h2 and the worker serpensd on h3, each its own DPDK primary on its host's veth NICs
(net_af_packet), controlled over SSH. Starts DPDK busy-pollers: run this file under the bench lock
(`flock /tmp/bench.lock pytest ...`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from testbed.local.hosts import Hosts
from tests.testbed.conftest import harness

pytestmark = pytest.mark.dpdk


def test_figure_15_runs_across_three_hosts_and_every_hop_closes(
        ns_hosts: Hosts, provisioned: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "results"
    result = harness("testbed", "run", "-i", str(ns_hosts.inventory), "figure-15", "--rate-mpps", "0.01",
                     "--duration", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    csvs = list(out.glob("*.csv"))
    assert len(csvs) == 1 and "figure-15-servers2-testbed" in csvs[0].name
    row = pd.read_csv(csvs[0]).iloc[0]
    assert row["platform"] == "serpens" and row["workload"] == "fw,mon,nat"
    assert row["tx_packets"] > 5_000
    sidecar = json.loads(csvs[0].with_suffix(".json").read_text())
    assert sidecar["testbed"]["placement"] == {"generator": "h1", "gateway": "h2", "worker": ["h3"]}
    rig = sidecar["rig"]["platform"]
    assert rig["host"] == "h2" and rig["workers"][0]["host"] == "h3"
    # the instance ran on the worker, with its share of NAT's pool moved there before it started
    (placed,) = rig["placements"]
    assert placed["server"] == 1 and any(s["table"].endswith("nat_pool") and s["items"] > 0
                                         for s in placed["shares"])
    hops = sidecar["per_hop"]["hops"]
    names = [h["hop"] for h in hops]
    assert "gateway -> worker 1" in names and "worker 1 SFC" in names and "worker 1 -> gateway" in names
    # every packet the generator sent crossed each hop or was counted dropped at it
    for h in hops:
        assert h["sent"] == h["received"] + h["dropped"], h
    first, last = hops[0], hops[-1]
    assert first["sent"] >= row["tx_packets"] and last["received"] > 0
    # the worker did the SFC's work: what it processed came over the link from the gateway
    worker_sfc = next(h for h in hops if h["hop"] == "worker 1 SFC")
    assert worker_sfc["sent"] > 5_000
    fetched = out / csvs[0].stem
    assert (fetched / "per-hop.json").is_file()
    assert any(p.name.startswith("h3-serpensd") for p in fetched.iterdir())
