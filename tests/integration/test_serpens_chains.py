"""Dynamic SFCs (the label-array Chainer), the IDS and the VPN on serpensd, with real packets.

A dynamic SFC sends each packet through the branch its label says (Fig. 6b: FW marks suspicious flows,
a selector sends them one way and the rest the other); the IDS flags exactly the packets that carry a
pattern of the committed set; the VPN's output decrypts back to its input.
"""

from __future__ import annotations

import base64
import ipaddress
import re
import struct
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from trex_stl_lib.api import STLPktBuilder, STLStream, STLTXCont

from harness import config as cfg
from harness.config import repo_path
from harness.rig import rig
from harness.serpens.sfc import SfcSpec
from harness.traffic import profiles
from tests.integration.packets import (
    LOAD_DPORT,
    LOAD_DST,
    LOAD_SPORT,
    flow_key,
    load_src,
    per_flow,
    read_pcap,
)

pytestmark = pytest.mark.dpdk
MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}


def mon_flows(ctl: object, table: str) -> dict[bytes, int]:
    return {k: struct.unpack("<Q", v[:8])[0] for k, v in ctl.dump_table(table).items()}  # type: ignore[attr-defined]


def dynamic_sfc(suspicious: set[int]) -> SfcSpec:
    """Fig. 6b's dynamic SFC "dyn": the FW marks the given load flows suspicious, its selector sends them to
    mon_sus and the rest to mon_ok, and both branches rejoin at mon_all."""
    rules = ";".join(f"17,{load_src(i)},*,*,*" for i in sorted(suspicious))
    return SfcSpec("dyn", {}, ["fw", {"distribute": ["mon_sus", "mon_ok"], "selector": "fw.suspicious"},
                               "mon_all"],
                   {"fw": ("fw", {"suspicious": rules}), "mon_sus": ("mon", {}), "mon_ok": ("mon", {}),
                    "mon_all": ("mon", {})})


def test_dynamic_sfc_sends_each_packet_through_the_branch_its_label_says(dpdk_ready: cfg.Config) -> None:
    n_flows, suspicious = 8, {1, 4, 6}
    spec = dynamic_sfc(suspicious)
    with rig(dpdk_ready, "serpens", sfc=spec) as r:
        res = r.generator.run_trial(profiles.udp_flows(8_000, 64, n_flows), duration=1.0)
        ctl = r.platform.controller
        sus, ok, joined = (mon_flows(ctl, f"{m}/mon_flows") for m in ("mon_sus", "mon_ok", "mon_all"))
    assert res.dut_rx_full == 0 and res.rx_packets == res.tx_packets   # both branches reach the exit
    sent = per_flow(res.tx_packets, n_flows)
    assert sus == {flow_key(load_src(i)): sent[i] for i in suspicious}
    assert ok == {flow_key(load_src(i)): sent[i] for i in range(n_flows) if i not in suspicious}
    assert joined == {flow_key(load_src(i)): sent[i] for i in range(n_flows)}   # aggregate: all rejoin


def literal_pattern() -> bytes:
    """A plain-text pattern of the committed IDS set (data/ids/patterns.txt)."""
    for line in repo_path("data/ids/patterns.txt").read_text().splitlines():
        m = re.match(r"^\d+\t/([A-Za-z0-9]{8,40})/\t", line)
        if m:
            return m.group(1).encode()
    raise AssertionError("no plain literal pattern in data/ids/patterns.txt")


def udp_stream(src: str, payload: bytes, pps: float) -> STLStream:
    pkt = Ether(**MACS) / IP(src=src, dst=LOAD_DST) / UDP(sport=LOAD_SPORT, dport=LOAD_DPORT, chksum=0) / \
        Raw(payload)
    return STLStream(packet=STLPktBuilder(pkt=pkt), mode=STLTXCont(pps=pps))


def test_ids_flags_exactly_the_packets_carrying_a_pattern(dpdk_ready: cfg.Config) -> None:
    pattern = literal_pattern()
    bad_src, good_src = "16.0.1.1", "16.0.1.2"
    streams = [udp_stream(bad_src, b"....." + pattern + b"....", 2_000),
               udp_stream(good_src, b"." * (len(pattern) + 9), 2_000)]
    with rig(dpdk_ready, "serpens", sfc=SfcSpec.linear("ids")) as r:
        res = r.generator.run_trial(streams, duration=1.0)
        alerts = mon_flows(r.platform.controller, "ids/ids_alerts")
    assert res.rx_packets == res.tx_packets   # action "alert": flagged packets still pass
    assert alerts == {flow_key(bad_src): res.tx_packets // 2}


def frames_sent(stream: STLStream, n_flows: int, count: int) -> list[bytes]:
    """What the generator put on the wire: the template with the field engine's source addresses."""
    template = Ether(base64.b64decode(stream.to_json()["packet"]["binary"]))
    out = []
    for i in range(count):
        pkt = template.copy()
        pkt[IP].src = load_src(i % n_flows)
        del pkt[IP].chksum
        out.append(bytes(pkt))
    return out


def test_vpn_output_decrypts_back_to_the_input(dpdk_ready: cfg.Config, tmp_path: Path) -> None:
    n_flows, key = 4, {"key": "00112233445566778899aabbccddeeff"}
    stream = profiles.udp_flows(5_000, 128, n_flows)[0]
    expected = frames_sent(stream, n_flows, 50)
    enc = SfcSpec("enc", {}, ["vpn_enc"], {"vpn_enc": ("vpn", key)})
    both = SfcSpec("encdec", {}, ["vpn_enc", "vpn_dec"],
                   {"vpn_enc": ("vpn", key), "vpn_dec": ("vpn", {**key, "mode": "decrypt"})})
    with rig(dpdk_ready, "serpens", sfc=enc, capture=tmp_path / "enc.pcap", capture_count=50) as r:
        r.generator.run_trial([stream], duration=0.5)
    with rig(dpdk_ready, "serpens", sfc=both, capture=tmp_path / "dec.pcap", capture_count=50) as r:
        r.generator.run_trial([stream], duration=0.5)
    encrypted, decrypted = read_pcap(tmp_path / "enc.pcap"), read_pcap(tmp_path / "dec.pcap")
    assert len(encrypted) == len(decrypted) == 50
    for got, want in zip(encrypted, expected, strict=True):
        assert len(got) > len(want)                     # the sequence number travels with the packet
        assert got[42:len(want) - 16] != want[42:-16]   # the payload is encrypted
        assert got[-16:] == want[-16:]                  # the tail (latency signature) stays in clear
        assert Ether(got)[IP].src == Ether(want)[IP].src
    assert decrypted == expected                        # byte for byte
    assert ipaddress.IPv4Address(Ether(decrypted[0])[IP].src) == ipaddress.IPv4Address(load_src(0))
