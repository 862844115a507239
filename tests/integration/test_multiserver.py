"""Serpens across servers (docs/multiserver.md): a gateway serpensd and worker serpensds, each its own DPDK
primary, linked over veth by DPDK's af_packet driver, packets between them in VXLAN-GBP with the SFC tag.

Checked on a capture of the link (the gateway's bridge port, both directions) with scapy: the outer header
(198.18.0.0/15 addresses, UDP 4789, the source port from the flow hash), the tag (G flag, Group Policy ID =
the SFC id, VNI = the Router bucket), the inner packet byte for byte as the generator sent it on the way
out and NAT-rewritten on the way back; per-hop counters that close exactly; after an inter-server
scale-out, old flows on their worker, new flows of the moved buckets on the new one, and NAT mappings
consistent across servers (no external port given twice). Behaviour, not speed: low rates, short trials.
Run under `flock /tmp/bench.lock` (three DPDK busy-pollers).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from typing import Any

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN

from harness import config as cfg
from harness import runlock
from harness.native import RunDir
from harness.rig import make_generator
from harness.serpens.controller import SerpensError
from harness.serpens.multiserver import GATEWAY_IP, MultiServerPlatform, per_hop, server_ip
from harness.serpens.sfc import SfcSpec
from harness.traffic import profiles
from harness.traffic.profiles import DEFAULT_DST_MAC, DEFAULT_SRC_MAC, _udp_packet
from tests.integration.link_capture import LinkCapture
from tests.integration.packets import LOAD_DPORT, LOAD_DST, LOAD_SPORT

pytestmark = pytest.mark.dpdk

EXTERNAL_IP = "198.18.1.1"     # platforms.serpens.nfs.nat.external_ip
SPEC = SfcSpec.linear("fw,mon,nat")


@pytest.fixture
def servers(request: pytest.FixtureRequest,
            dpdk_ready: cfg.Config) -> Iterator[tuple[MultiServerPlatform, Any]]:
    """A running MultiServerPlatform of request.param servers and a generator connected to its gateway."""
    runlock.acquire(dpdk_ready)
    run_dir = RunDir(dpdk_ready, "multi")
    try:
        p = MultiServerPlatform(dpdk_ready, run_dir, sfc=SPEC, servers=request.param)
        with p:
            with make_generator(dpdk_ready, p, run_dir) as gen:
                yield p, gen
    finally:
        run_dir.remove()
        runlock.release(dpdk_ready)


def tunnel_frames(frames: list[bytes]) -> tuple[list[Any], list[Any]]:
    """(gateway -> workers, workers -> gateway) VXLAN frames of a capture, parsed."""
    out, back = [], []
    for f in frames:
        pkt = Ether(f)
        if UDP in pkt and pkt[UDP].dport == 4789:
            (out if pkt[IP].src == GATEWAY_IP else back).append(pkt)
    return out, back


def sent_frame(src: str) -> bytes:
    """The frame the generator sends for the flow from ``src`` (udp_flows: only IP.src and its checksum
    vary between flows)."""
    return bytes(Ether(bytes(_udp_packet(64, src, LOAD_DST, LOAD_SPORT, LOAD_DPORT, DEFAULT_SRC_MAC,
                                         DEFAULT_DST_MAC, checksum=0))))


def check_outer(pkt: Any, sfc_id: int, src: str, dst: str) -> None:
    assert (pkt[IP].src, pkt[IP].dst) == (src, dst)
    assert all(ipaddress.IPv4Address(a) in ipaddress.IPv4Network("198.18.0.0/15") for a in (src, dst))
    assert pkt[IP].flags == "DF" and pkt[IP].ttl == 64
    assert pkt[UDP].dport == 4789 and 0xc000 <= pkt[UDP].sport <= 0xffff
    vx = pkt[VXLAN]
    assert vx.flags.G and vx.flags.Instance, f"flags {vx.flags}"
    assert vx.gpid == sfc_id, f"Group Policy ID {vx.gpid}, SFC id {sfc_id}"
    # the VNI is the flow's Router bucket: the low byte of the flow hash, as the source port's low byte
    assert vx.vni == pkt[UDP].sport & 0xff


def sfc_rx(worker: Any) -> int:
    (s,) = worker.stats()["sfcs"]
    return int(s["rx_packets"])


def nat_map(ctl: Any) -> dict[str, int]:
    """nat/nat_map of one server: inside source address -> external port."""
    out = {}
    for key, value in ctl.dump_table("nat/nat_map").items():
        ext_ip, ext_port = struct.unpack("!4sH", value[:6])
        assert str(ipaddress.IPv4Address(ext_ip)) == EXTERNAL_IP
        out[str(ipaddress.IPv4Address(key[:4]))] = ext_port
    return out


def check_closes(stats: dict[str, Any], gen_tx: int, gen_rx: int) -> None:
    """Every packet is accounted for at every hop: sent = received + dropped."""
    gw = stats["link"]
    (sfc,) = stats["sfcs"]
    assert stats["port"]["rx_packets"] == gen_tx
    assert stats["gateway"]["miss"] == 0 and sfc["rx_packets"] == gen_tx   # every packet is the SFC's
    sent_total = 0
    for peer, w in zip(gw["peers"], stats["servers"], strict=True):
        link = w["link"]
        assert peer["dropped"] == 0
        # gateway tx -> worker rx: every frame sent arrived and was decapsulated
        assert link["port_stats"]["imissed"] == 0 and link["port_stats"]["ierrors"] == 0
        assert link["ring_drops"] == 0
        assert peer["sent"] == link["rx"]["decapsulated"] + link["rx"]["bad"] + link["rx"]["unknown_sfc"] \
            + link["rx"]["tag_mismatch"]
        assert link["rx"]["bad"] == link["rx"]["unknown_sfc"] == link["rx"]["tag_mismatch"] == 0
        (wsfc,) = w["sfcs"]
        # worker rx -> its SFC -> worker tx: the SFC drops nothing of this load
        assert wsfc["rx_packets"] == link["rx"]["decapsulated"]
        assert wsfc["no_instance"] == wsfc["ring_full"] == 0
        assert wsfc["tx_packets"] == wsfc["rx_packets"]
        assert link["tx"]["encapsulated"] == wsfc["tx_packets"] and link["tx"]["encap_failed"] == 0
        assert link["tx"]["sent"] == link["tx"]["encapsulated"] and link["tx"]["dropped"] == 0
        # worker tx -> gateway rx
        assert peer["received"] == link["tx"]["sent"]
        sent_total += peer["sent"]
    assert sent_total == sfc["rx_packets"]
    assert gw["rx"]["bad"] == gw["rx"]["unknown_sfc"] == 0
    assert gw["rx"]["decapsulated"] == sum(p["received"] for p in gw["peers"])
    assert gw["out"]["sent"] + gw["out"]["dropped"] == gw["rx"]["decapsulated"]
    assert gw["out"]["dropped"] == 0 and gw["out"]["sent"] == gen_rx == sfc["tx_packets"]
    # the same, as the per-hop table the closing note prints (harness.serpens.multiserver.per_hop)
    hops = per_hop(stats, gen_tx, gen_rx)
    assert all(h["unaccounted"] == 0 and h["dropped"] == 0 for h in hops), hops
    assert hops[0]["sent"] == gen_tx and hops[-1]["received"] == gen_rx


@pytest.mark.parametrize("servers", [2], indirect=True)
def test_vxlan_carries_the_tag_and_the_intact_packet_and_every_hop_closes(servers: Any) -> None:
    p, gen = servers
    sfc_id = p.sfc_ids[SPEC.name]
    n_flows = 16
    with LinkCapture(p.server_link.bridge_port(0)) as cap:
        res = gen.run_trial(profiles.udp_flows(5_000, 64, n_flows), duration=0.4)
    stats = p.stats()
    assert res.tx_packets > 500 and res.dut_rx_full == 0
    assert res.rx_packets == res.tx_packets
    check_closes(stats, res.tx_packets, res.rx_packets)
    out, back = tunnel_frames(cap.frames)
    assert len(out) == res.tx_packets and len(back) == res.rx_packets, \
        f"captured {len(out)} out, {len(back)} back of {res.tx_packets}"
    mapping = nat_map(p.workers[0]._running())
    sport_of: dict[str, int] = {}
    for pkt in out:
        check_outer(pkt, sfc_id, GATEWAY_IP, server_ip(1))
        inner = bytes(pkt[VXLAN].payload)
        src = Ether(inner)[IP].src
        assert inner == sent_frame(src), f"inner packet of flow {src} changed on the way out"
        # one flow, one outer source port (ECMP keeps it on one path)
        assert sport_of.setdefault(src, pkt[UDP].sport) == pkt[UDP].sport
    assert len(sport_of) == n_flows
    inside_of = {port: src for src, port in mapping.items()}
    for pkt in back:
        check_outer(pkt, sfc_id, server_ip(1), GATEWAY_IP)
        inner = Ether(bytes(pkt[VXLAN].payload))
        assert (inner[IP].src, inner[IP].dst, inner[UDP].dport) == (EXTERNAL_IP, LOAD_DST, LOAD_DPORT)
        src = inside_of[inner[UDP].sport]         # NAT-rewritten with this flow's mapping
        assert pkt[UDP].sport == sport_of[src]    # the way back keeps the flow's source port and bucket
    # the gateway placed the instance, the worker runs it; the gateway runs none
    assert not p.instances and len(p.workers[0].instances) == 1
    assert len(mapping) == n_flows


@pytest.mark.parametrize("servers", [2], indirect=True)
def test_bad_link_and_share_requests_are_refused_and_change_nothing(servers: Any) -> None:
    p, gen = servers
    gw, worker = p._running(), p.workers[0]._running()
    pool = next(x for x in gw.share_list() if x["table"] == "nat/nat_pool")
    with pytest.raises(SerpensError, match="no SFC named 'nope'"):
        gw.link_route("nope", 1)
    with pytest.raises(SerpensError, match="'server' must be an integer in 0..1"):
        gw.link_route(SPEC.name, 2)
    with pytest.raises(SerpensError, match="'buckets' is a list of bucket numbers 0..255"):
        gw.link_route(SPEC.name, 1, [256])
    with pytest.raises(SerpensError, match="not a gateway"):
        worker.link_route(SPEC.name, 0)
    with pytest.raises(SerpensError, match="instance slot 0 holds a share"):   # the worker's instance runs
        worker.share_import("nat/nat_pool", pool["key"], [1], replace=True)
    with pytest.raises(SerpensError, match="not global.write.release"):
        gw.share_export("nat/nat_map", "00" * 16, 1)
    with pytest.raises(SerpensError, match="key must be 4 bytes"):
        gw.share_export("nat/nat_pool", "00", 1)
    assert gw.share_list() == [pool]                 # nothing moved
    res = gen.run_trial(profiles.udp_flows(5_000, 64, 8), duration=0.2)
    assert res.tx_packets > 0 and res.rx_packets == res.tx_packets   # still all through worker 1
    assert p.stats()["link"]["sfcs"][0]["servers"] == [{"server": 1, "buckets": 256}]


@pytest.mark.parametrize("servers", [3], indirect=True)
def test_scale_out_to_another_server_keeps_old_flows_and_nat_ports_unique(servers: Any) -> None:
    p, gen = servers
    old_src, new_src, n = "16.0.0.1", "16.0.1.1", 32
    old = profiles.udp_flows(2_000, 64, n, src=old_src)
    first = gen.run_trial(old, duration=0.3)
    assert first.rx_packets == first.tx_packets > 0
    before = nat_map(p.workers[0]._running())
    assert len(before) == n
    record = p.scale_out(SPEC.name, 2)                 # buckets 128..255 -> worker 2, for new flows
    assert record["buckets_moved"] == 128 and record["shares"]
    (share,) = record["shares"]
    assert share["table"] == "nat/nat_pool" and share["items"] == share["worker_nfree"] > 0
    with LinkCapture(p.server_link.bridge_port(0)) as cap:
        res = gen.run_trial(old + profiles.udp_flows(2_000, 64, n, src=new_src), duration=0.4)
    stats = p.stats()
    assert res.rx_packets == res.tx_packets and res.dut_rx_full == 0
    check_closes(stats, first.tx_packets + res.tx_packets, first.rx_packets + res.rx_packets)
    out, _ = tunnel_frames(cap.frames)
    where: dict[str, set[str]] = {}
    bucket: dict[str, int] = {}
    for pkt in out:
        src = Ether(bytes(pkt[VXLAN].payload))[IP].src
        where.setdefault(src, set()).add(pkt[IP].dst)
        bucket[src] = pkt[VXLAN].vni
    olds = {str(ipaddress.IPv4Address(old_src) + i) for i in range(n)}
    news = {str(ipaddress.IPv4Address(new_src) + i) for i in range(n)}
    assert set(where) == olds | news
    for src in olds:        # old flows stay on their instance, moved bucket or not
        assert where[src] == {server_ip(1)}, f"old flow {src} (bucket {bucket[src]}) went to {where[src]}"
    for src in news:        # new flows follow the new split
        assert where[src] == {server_ip(2) if bucket[src] >= 128 else server_ip(1)}
    assert any(bucket[s] >= 128 for s in olds) and stats["link"]["flows"]["kept_back"] > 0
    assert any(bucket[s] >= 128 for s in news)
    w1, w2 = nat_map(p.workers[0]._running()), nat_map(p.workers[1]._running())
    assert w1.items() >= before.items()                 # old mappings unchanged
    assert set(w2) == {s for s in news if bucket[s] >= 128}
    assert not set(w1) & set(w2)
    ports = list(w1.values()) + list(w2.values())
    assert len(ports) == len(set(ports)) == 2 * n, "an external port was given out twice across servers"
    # replies from outside reach the worker whose share gave their port out (link_steer), whatever their
    # bucket, and are translated back there: 8 mapped ports of each worker
    assert record["shares"][0]["steered_ports"] == share["items"]
    chosen = {**dict(list(w1.items())[:8]), **dict(list(w2.items())[:8])}
    replies = [s for port in chosen.values()
               for s in profiles.udp_flows(500, 64, 1, src=LOAD_DST, dst=EXTERNAL_IP, sport=LOAD_DPORT,
                                           dport=port, udp_checksum="hw")]
    before_w = [sfc_rx(p.workers[i]) for i in range(2)]
    back = gen.run_trial(replies, duration=0.3)
    assert back.tx_packets > 0 and back.rx_packets == back.tx_packets, \
        f"{back.tx_packets - back.rx_packets} replies found no mapping on the worker they reached"
    got = [sfc_rx(p.workers[i]) - before_w[i] for i in range(2)]
    assert got[0] > 0 and got[1] > 0 and sum(got) == back.tx_packets
    assert p.stats()["link"]["flows"]["steered"] >= back.tx_packets
