"""The harness side of Serpens across servers (harness/serpens/multiserver.py) without DPDK: which platform a
design gets, what is refused, the serpensd command lines of gateway and workers, the link's device names,
and the per-hop accounting (docs/multiserver.md)."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness import config as cfg
from harness.native import RunDir
from harness.platforms.base import PlatformError
from harness.serpens import multiserver
from harness.serpens.multiserver import MultiServerPlatform, ServerLink, design_platform, per_hop
from harness.serpens.platform import DesignPlatform


@pytest.fixture
def run_dir(config: cfg.Config) -> Iterator[RunDir]:
    rd = RunDir(config, "multi")
    yield rd
    rd.remove()


def with_servers(config: cfg.Config, n: int) -> cfg.Config:
    c = copy.deepcopy(config)
    c["platforms"]["serpens"]["servers"] = n
    return c


def test_servers_above_one_make_every_design_factory_build_the_gateway_and_its_workers(
        config: cfg.Config, run_dir: RunDir) -> None:
    assert type(design_platform(config, run_dir, "serpens", sfc="fw,mon,nat")) is DesignPlatform
    p = design_platform(with_servers(config, 3), run_dir, "serpens", sfc="fw,mon,nat")
    assert isinstance(p, MultiServerPlatform) and p.name == "serpens"
    assert [w.k for w in p.workers] == [1, 2] and p.settings["instances"] == 0
    assert all(w.settings["instances"] == 0 for w in p.workers)
    # the wire-like use without an SFC stays on one server
    assert type(design_platform(with_servers(config, 2), run_dir, "serpens")) is DesignPlatform


@pytest.mark.parametrize(("design", "why"), [("sand", "consolidated chaining"),
                                             ("fission-state", "remote-store"),
                                             ("snf", "consolidated chaining")])
def test_designs_that_cannot_run_across_servers_are_refused_with_the_reason(
        config: cfg.Config, run_dir: RunDir, design: str, why: str) -> None:
    with pytest.raises(PlatformError, match=why):
        MultiServerPlatform(config, run_dir, design=design, sfc="fw,mon,nat", servers=2)


@pytest.mark.parametrize("servers", [1, 10, "2"])
def test_server_count_out_of_range_is_refused(config: cfg.Config, run_dir: RunDir, servers: Any) -> None:
    with pytest.raises(PlatformError, match="servers must be 2..9"):
        MultiServerPlatform(config, run_dir, sfc="fw,mon,nat", servers=servers)


def test_config_key_is_range_checked() -> None:
    with pytest.raises(cfg.ConfigError, match="platforms.serpens.servers"):
        cfg.load(overrides=["platforms.serpens.servers=10"])


def test_command_lines_give_each_server_its_port_role_and_peers(config: cfg.Config, run_dir: RunDir,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ServerLink, "mac", lambda self, k: f"02:00:00:00:00:0{k}")
    p = MultiServerPlatform(config, run_dir, sfc="fw,mon,nat", servers=3)
    gw = p.command()
    vdevs = [gw[i + 1] for i, a in enumerate(gw) if a == "--vdev"]
    assert vdevs[0].startswith("net_memif0,role=server")
    assert vdevs[1] == f"net_af_packet0,iface={p.server_link.iface(0)},qpairs=1,framecnt=4096"
    own = gw[gw.index("--", ) + 1:]
    assert own[own.index("--link") + 1] == "gateway" and own[own.index("--link-ip") + 1] == "198.18.0.1"
    assert [own[i + 1] for i, a in enumerate(own) if a == "--link-peer"] == [
        "198.18.0.2,02:00:00:00:00:01", "198.18.0.3,02:00:00:00:00:02"]
    w2 = p.workers[1].command()
    assert [w2[i + 1] for i, a in enumerate(w2) if a == "--vdev"] == [
        f"net_af_packet0,iface={p.server_link.iface(2)},qpairs=1,framecnt=4096"]   # the link is its only port
    assert w2[w2.index("--file-prefix") + 1] == f"serpens-w2-{run_dir.tag}"
    assert w2[w2.index("--control") + 1] == str(run_dir / "serpensd-w2.sock")
    assert w2[w2.index("--nf-dir") + 1] == str(run_dir / "nfs-w2")
    assert w2[-6:] == ["--link", "worker", "--link-ip", "198.18.0.3", "--link-peer",
                       "198.18.0.1,02:00:00:00:00:00"]


def test_link_device_names_fit_linux_and_differ_between_runs() -> None:
    a, b = ServerLink("multi-1-aaaaaa", 9), ServerLink("multi-1-bbbbbb", 9)
    names = [a.bridge] + [f(k) for k in range(9) for f in (a.iface, a.bridge_port)]
    assert all(len(n) <= 15 for n in names) and len(set(names)) == len(names)
    assert a.bridge != b.bridge


def stats_of(n_workers: int, per_worker: int) -> dict[str, Any]:
    total = n_workers * per_worker
    return {
        "port": {"rx_packets": total, "imissed": 0}, "gateway": {"miss": 0},
        "sfcs": [{"name": "s", "rx_packets": total, "tx_packets": total, "no_instance": 0, "ring_full": 0}],
        "link": {"peers": [{"server": k, "sent": per_worker, "dropped": 0, "received": per_worker}
                           for k in range(1, n_workers + 1)],
                 "out": {"sent": total, "dropped": 0}, "port_stats": {"imissed": 0}, "ring_drops": 0,
                 "rx": {"decapsulated": total}},
        "servers": [{"link": {"rx": {"decapsulated": per_worker, "bad": 0, "unknown_sfc": 0,
                                     "tag_mismatch": 0},
                              "tx": {"sent": per_worker}, "port_stats": {"imissed": 0}, "ring_drops": 0},
                     "sfcs": [{"name": "s", "rx_packets": per_worker, "tx_packets": per_worker,
                               "no_instance": 0, "ring_full": 0, "stranded": 0}],
                     "instances": [{"sfc_name": "s", "nf_drops": 0}]} for _ in range(n_workers)],
    }


def test_per_hop_closes_when_every_packet_is_counted_and_shows_what_is_not() -> None:
    s = stats_of(2, 500)
    rows = per_hop(s, 1000, 1000)
    assert [r["hop"] for r in rows] == ["generator -> gateway", "gateway router -> link",
                                        "gateway -> worker 1", "worker 1 SFC", "worker 1 -> gateway",
                                        "gateway -> worker 2", "worker 2 SFC", "worker 2 -> gateway",
                                        "workers -> gateway", "gateway -> generator"]
    assert all(r["unaccounted"] == 0 for r in rows)
    # an NF drop is accounted for at its hop
    s["servers"][0]["sfcs"][0]["tx_packets"] -= 3
    s["servers"][0]["instances"][0]["nf_drops"] = 3
    assert per_hop(s, 1000, 1000)[3] == {"hop": "worker 1 SFC", "sent": 500, "received": 497, "dropped": 3,
                                         "unaccounted": 0}
    # the gateway's memif ring refusing packets (the generator counts them), its port 0 refusing packets
    assert per_hop(s, 1010, 1000, gen_refused=10)[0] == {"hop": "generator -> gateway", "sent": 1010,
                                                          "received": 1000, "dropped": 10, "unaccounted": 0}
    s["link"]["out"] = {"sent": 990, "dropped": 10}
    assert per_hop(s, 1000, 990)[-1] == {"hop": "gateway -> generator", "sent": 1000, "received": 990,
                                         "dropped": 10, "unaccounted": 0}
    # a frame lost on the link with no counter is unaccounted; the kernel's drop for a full ring is not
    s["servers"][1]["link"]["rx"]["decapsulated"] -= 2
    s["servers"][1]["link"]["ring_drops"] = 1
    assert per_hop(s, 1000, 1000)[5]["unaccounted"] == 1


def test_module_constants_match_serpensd() -> None:
    assert multiserver.MAX_SERVERS == 9 and multiserver.LINK_VDEV == "net_af_packet0"


@pytest.mark.skipif(os.geteuid() != 0, reason="creates network devices (root)")
def test_links_of_runs_that_are_gone_are_reclaimed_and_live_ones_kept(tmp_path: Path) -> None:
    (tmp_path / "live-run").mkdir()
    dead, live = ServerLink("dead-run", 2), ServerLink("live-run", 2)
    try:
        dead.create()
        live.create()
        assert sorted(ServerLink.reclaim_stale(tmp_path)) == [dead.bridge, dead.iface(0), dead.iface(1)]
        devices = {d.name for d in Path("/sys/class/net").iterdir()}
        assert not {dead.bridge, dead.iface(0), dead.bridge_port(1)} & devices
        assert {live.bridge, live.iface(0), live.bridge_port(1)} <= devices
    finally:
        dead.remove()
        live.remove()


def test_port_ranges_of_a_share_cover_exactly_its_ports() -> None:
    assert multiserver._ranges([7, 1, 3, 2, 2, 9, 8]) == [(1, 3), (7, 9)]
    assert multiserver._ranges([65535]) == [(65535, 65535)]
    assert multiserver._ranges([]) == []
