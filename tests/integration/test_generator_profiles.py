"""The built-in generator against TRex stateless profiles: the packets on the wire follow TRex's semantics.

Each test builds a profile the way TRex's ``scripts/stl`` profiles do (trex-stl-lib ``STLStream`` objects,
written here), sends it with serpens-gen through the real wire forwarder over memif, captures what comes
back, and checks the packets with scapy against what TRex would send (docs/generator.md, "Supported STL
subset"): the tuple generator's (ip, port) order and both of its wraps, a single burst's exact count and a
multi-burst's bursts, repeatable random values and masked writes, flow_stats of type ``stats``, and 9 KB
frames that change length with every packet (TRex's ``udp_inc_len_9k`` pattern). Rates are modest so that
nothing is lost and the capture holds every packet in send order.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from trex_stl_lib.api import (
    STLFlowStats,
    STLPktBuilder,
    STLScVmRaw,
    STLStream,
    STLTXCont,
    STLTXMultiBurst,
    STLTXSingleBurst,
    STLVmFixIpv4,
    STLVmFlowVar,
    STLVmFlowVarRepeatableRandom,
    STLVmTrimPktSize,
    STLVmTupleGen,
    STLVmWrFlowVar,
    STLVmWrMaskFlowVar,
)

from harness import config as cfg
from harness.rig import Rig, rig
from harness.traffic import profiles
from harness.traffic.base import GeneratorError, TrialResult
from tests.integration.packets import read_pcap

MACS = {"src": profiles.DEFAULT_SRC_MAC, "dst": profiles.DEFAULT_DST_MAC}


@pytest.fixture
def wire(dpdk_ready: cfg.Config, tmp_path: Path) -> Iterator[Rig]:
    # a catch-up bound of the whole trial: a stall of this shared machine delays packets instead of skipping
    # them, so every packet of a burst is sent and the capture holds the whole sequence
    conf = cfg.load(quick=True, overrides=["generator.local.catchup_us=1000000"])
    with rig(conf, "wire", capture=tmp_path / "rx.pcap", capture_count=150_000) as r:
        yield r


def send(r: Rig, streams: list[Any], duration: float) -> tuple[TrialResult, list[Any]]:
    """One trial; its result and every frame that came back, parsed by scapy, in receive order."""
    result = r.generator.run_trial(streams, duration=duration)
    capture = r.generator.capture
    assert capture is not None
    frames = [Ether(f) for f in read_pcap(capture)]
    assert result.tx_packets == result.intended_packets, "skipped packets: see skipped_stall/slow_packets"
    assert result.rx_packets == result.tx_packets == len(frames), result.raw
    return result, frames


def udp(src: str = "16.0.0.1", sport: int = 1025, dport: int = 12, payload: int = 18) -> Any:
    return Ether(**MACS) / IP(src=src, dst="48.0.0.1") / UDP(sport=sport, dport=dport, chksum=0) / \
        Raw(b"x" * payload)


def ipv4_checksum_ok(p: Any) -> bool:
    ip = p[IP].copy()
    ip.chksum = None
    return IP(bytes(ip))[IP].chksum == p[IP].chksum


def addr(a: str, k: int) -> str:
    return str(ipaddress.IPv4Address(a) + k)


@pytest.mark.dpdk
def test_tuple_flow_var_walks_ip_then_port_and_restarts_after_limit_flows(wire: Rig) -> None:
    # TRex's STLVmTupleGen example: 5 addresses x 4 ports, at most 10 flows
    vm = STLScVmRaw([STLVmTupleGen(name="t", ip_min="10.0.0.1", ip_max="10.0.0.5", port_min=1025,
                                   port_max=1028, limit_flows=10),
                     STLVmWrFlowVar(fv_name="t.ip", pkt_offset="IP.src"),
                     STLVmWrFlowVar(fv_name="t.port", pkt_offset="UDP.sport"),
                     STLVmFixIpv4(offset="IP")])
    stream = STLStream(packet=STLPktBuilder(pkt=udp(), vm=vm), mode=STLTXCont(pps=5000))
    _, frames = send(wire, [stream], duration=0.5)
    assert len(frames) > 100
    for k, p in enumerate(frames):
        flow = k % 10
        assert (p[IP].src, p[UDP].sport) == (addr("10.0.0.1", flow % 5), 1025 + flow // 5), k
        assert ipv4_checksum_ok(p), k


@pytest.mark.dpdk
def test_udp_flows_above_65536_flows_runs_on_the_tuple_generator(wire: Rig) -> None:
    n_flows = 70_000                       # > 65536 addresses: udp_flows switches to tuple_flow_var
    streams = profiles.udp_flows(100_000, n_flows=n_flows)
    assert streams[0].to_json()["vm"]["instructions"][0]["type"] == "tuple_flow_var"
    _, frames = send(wire, streams, duration=1.0)
    assert len(frames) > n_flows           # the whole series, and its restart at the first flow
    for k, p in enumerate(frames):
        flow = k % n_flows
        assert (p[IP].src, p[UDP].sport) == (addr("16.0.0.1", flow % 65536), 1025 + flow // 65536), k
    assert len({(p[IP].src, p[UDP].sport) for p in frames}) == n_flows
    assert all(ipv4_checksum_ok(p) for p in frames[::997])


@pytest.mark.dpdk
def test_single_burst_sends_exactly_its_packets_and_multi_burst_its_bursts(wire: Rig) -> None:
    single = STLStream(packet=STLPktBuilder(pkt=udp(src="16.0.0.1")), mode=STLTXSingleBurst(total_pkts=1234,
                                                                                             pps=20_000))
    multi = STLStream(packet=STLPktBuilder(pkt=udp(src="16.0.0.2")), isg=1000.0,
                      mode=STLTXMultiBurst(pkts_per_burst=100, ibg=20_000.0, count=7, pps=50_000))
    result, frames = send(wire, [single, multi], duration=0.5)
    by_src: dict[str, int] = {}
    for p in frames:
        by_src[p[IP].src] = by_src.get(p[IP].src, 0) + 1
    assert by_src == {"16.0.0.1": 1234, "16.0.0.2": 700}
    streams = result.raw["streams"]
    assert [(s["mode"], s["total_packets"], s["intended_packets"], s["tx_packets"]) for s in streams] == \
        [("single_burst", 1234, 1234, 1234), ("multi_burst", 700, 700, 700)]
    assert result.intended_packets == result.tx_packets + result.skipped_stall_packets + \
        result.skipped_slow_packets


def trex_rand16(seed: int) -> Iterator[int]:
    """TRex's data-plane random generator (15 bits per step), written out from its definition."""
    while True:
        seed = (seed * 214013 + 2531011) & 0xFFFFFFFF
        yield (seed >> 16) & 0x7FFF


@pytest.mark.dpdk
def test_repeatable_random_and_masked_writes_follow_trex(wire: Rig) -> None:
    vm = STLScVmRaw([STLVmFlowVarRepeatableRandom("r", size=2, limit=7, seed=4242, min_value=1000,
                                                  max_value=2000),
                     STLVmWrFlowVar(fv_name="r", pkt_offset="UDP.dport"),
                     # the var's low 4 bits into the high nibble of the TOS byte, the low nibble kept
                     STLVmWrMaskFlowVar(fv_name="r", pkt_offset="IP.tos", pkt_cast_size=1, mask=0xF0,
                                        shift=4),
                     STLVmFixIpv4(offset="IP")])
    pkt = Ether(**MACS) / IP(src="16.0.0.1", dst="48.0.0.1", tos=0x05) / \
        UDP(sport=1025, dport=12, chksum=0) / Raw(b"x" * 18)
    stream = STLStream(packet=STLPktBuilder(pkt=pkt, vm=vm), mode=STLTXCont(pps=5000))
    _, frames = send(wire, [stream], duration=0.3)
    draws = trex_rand16(4242)
    cycle = [1000 + next(draws) % 1001 for _ in range(7)]
    for k, p in enumerate(frames):
        value = cycle[k % 7]
        assert p[UDP].dport == value, k
        assert p[IP].tos == ((value << 4) & 0xF0) | 0x05, k
        assert ipv4_checksum_ok(p), k


@pytest.mark.dpdk
def test_flow_stats_of_type_stats_count_per_pg_id_without_latency(wire: Rig) -> None:
    counted = STLStream(packet=STLPktBuilder(pkt=udp(src="16.0.0.7")), flow_stats=STLFlowStats(pg_id=7),
                        mode=STLTXSingleBurst(total_pkts=500, pps=10_000))
    load = profiles.udp_flows(10_000, n_flows=4)
    result, _ = send(wire, load + [counted], duration=0.3)
    stats = result.raw["flow_stats"]["7"]
    assert stats["rule_type"] == "stats"
    assert (stats["tx_packets"], stats["rx_packets"]) == (500, 500)
    assert stats["rx_bytes"] == stats["tx_bytes"] == 500 * len(udp())
    assert "7" not in result.raw["latency"] and 7 not in result.latency


def inc_len_9k() -> STLStream:
    """TRex's udp_inc_len_9k idea, written here: a 9 KB IP packet whose length grows by one byte per packet
    from 64 B to the whole frame (trim_pkt_size), with IP and UDP lengths and the IP checksum fixed."""
    base = Ether(**MACS) / IP(src="16.0.0.1", dst="48.0.0.1") / UDP(sport=1025, dport=12, chksum=0)
    base = base / Raw(bytes(i % 251 for i in range(9 * 1024 - 28)))   # 9216 B of IP packet
    vm = STLScVmRaw([STLVmFlowVar(name="len", min_value=64, max_value=len(base), size=2, op="inc"),
                     STLVmTrimPktSize("len"),
                     STLVmWrFlowVar(fv_name="len", pkt_offset="IP.len", add_val=-14),
                     STLVmFixIpv4(offset="IP"),
                     STLVmWrFlowVar(fv_name="len", pkt_offset="UDP.len", add_val=-34)])
    return STLStream(packet=STLPktBuilder(pkt=base, vm=vm), mode=STLTXCont(pps=20_000))


@pytest.mark.dpdk
def test_9k_frames_of_every_length_come_back_intact(wire: Rig) -> None:
    stream = inc_len_9k()
    full = len(Ether(bytes(stream.pkt)))
    assert full == 9230
    result, frames = send(wire, [stream], duration=0.6)
    assert len(frames) > full - 64 + 1    # the ring and the length both wrap
    for k, p in enumerate(frames):
        length = 64 + k % (full - 64 + 1)
        raw = bytes(p)
        assert len(raw) == length, k
        assert p[IP].len == length - 14 and p[UDP].len == length - 34, k
        assert ipv4_checksum_ok(p), k
        assert raw[42:] == bytes(stream.pkt)[42:length], k      # the payload, byte for byte
    assert result.raw["streams"][0]["packet_len"] == full


@pytest.mark.dpdk
def test_a_frame_beyond_9600_bytes_is_refused_for_its_length(wire: Rig) -> None:
    big = STLStream(packet=STLPktBuilder(pkt=udp(payload=9700)), mode=STLTXCont(pps=10))
    with pytest.raises(GeneratorError, match=r"frame of 9742 bytes \(must be 14\.\.9600 without FCS\)"):
        wire.generator.run_trial([big], duration=0.1)
