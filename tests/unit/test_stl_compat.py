"""stl_compat: trex-stl-lib 0.3 resolves layer and field names to byte offsets with current scapy."""

from __future__ import annotations

import pytest

from harness.traffic import stl_compat

api = pytest.importorskip("trex_stl_lib.api")

from scapy.layers.inet import IP, TCP, UDP, IPOption_RR  # noqa: E402
from scapy.layers.l2 import Dot1Q, Ether  # noqa: E402
from scapy.layers.vxlan import VXLAN  # noqa: E402

# Explicit MACs everywhere: an Ether() without dst makes scapy resolve it, which may send an ARP request.
SRC_MAC, DST_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
UDP_TYPE = api.CTRexVmInsFixHwCs.L4_TYPE_UDP


def eth() -> Ether:
    return Ether(src=SRC_MAC, dst=DST_MAC)


def udp_pkt() -> Ether:
    return eth() / IP(src="16.0.0.1", dst="48.0.0.1") / UDP(sport=1025, dport=12) / (b"x" * 18)


def tcp_pkt() -> Ether:
    return eth() / IP(src="16.0.0.1", dst="48.0.0.1") / TCP(sport=1025, dport=80) / (b"x" * 6)


def vxlan_pkt() -> Ether:
    inner = (Ether(src="02:00:00:00:00:03", dst="02:00:00:00:00:04")
             / IP(src="16.0.0.9", dst="48.0.0.9") / UDP())
    return eth() / IP(src="16.0.0.1", dst="48.0.0.1") / UDP(sport=1025, dport=4789) / VXLAN(vni=7) / inner


def offset(pkt: Ether, name: str) -> tuple[int, int]:
    """Through the library's own entry point, as STLVmWrFlowVar uses it."""
    return api.CTRexScapyPktUtl(pkt).get_field_offet_by_str(name)


@pytest.mark.parametrize(("pkt", "name", "expected"), [
    (udp_pkt, "IP.src", (26, 4)),
    (udp_pkt, "IP.dst", (30, 4)),
    (udp_pkt, "IP.ttl", (22, 1)),
    (udp_pkt, "IP.chksum", (24, 2)),
    (udp_pkt, "UDP.sport", (34, 2)),
    (udp_pkt, "UDP.dport", (36, 2)),
    (udp_pkt, "UDP.chksum", (40, 2)),
    (udp_pkt, "Ether.type", (12, 2)),
    (udp_pkt, "Ethernet.dst", (0, 6)),
    (tcp_pkt, "TCP.sport", (34, 2)),
    (tcp_pkt, "TCP.dport", (36, 2)),
    (tcp_pkt, "TCP.seq", (38, 4)),
])
def test_field_names_resolve_to_offset_and_size(pkt, name: str, expected: tuple[int, int]) -> None:
    assert offset(pkt(), name) == expected


def test_bit_fields_give_the_bytes_they_touch() -> None:
    pkt = udp_pkt()
    assert offset(pkt, "IP.version") == (14, 1)
    assert offset(pkt, "IP.ihl") == (14, 1)
    assert offset(pkt, "IP.flags") == (20, 1)   # 3 bits at the top of byte 20
    assert offset(pkt, "IP.frag") == (20, 2)    # 13 bits across bytes 20-21


def test_inner_ip_of_ip_in_ip_is_ip_1() -> None:
    pkt = eth() / IP(src="16.0.0.1", dst="48.0.0.1") / IP(src="16.0.0.2", dst="48.0.0.2") / UDP()
    assert offset(pkt, "IP:1.src") == (14 + 20 + 12, 4)
    assert offset(pkt, "IP:0.src") == offset(pkt, "IP.src") == (26, 4)


def test_inner_ip_of_vxlan_is_ip_1() -> None:
    pkt = vxlan_pkt()
    # Ether 14 + IP 20 + UDP 8 + VXLAN 8 + inner Ether 14 = 64
    assert api.CTRexScapyPktUtl(pkt).get_layer_offet_by_str("IP:1") == 64
    assert offset(pkt, "IP:1.src") == (76, 4)
    assert offset(pkt, "UDP:1.dport") == (86, 2)
    assert offset(pkt, "VXLAN.vni") == (46, 3)


def test_vlan_field_by_dotted_name_with_a_bar() -> None:
    pkt = eth() / Dot1Q(vlan=100, prio=3) / IP(src="16.0.0.1", dst="48.0.0.1") / UDP()
    assert offset(pkt, "802|1Q.vlan") == (14, 2)   # 12 bits after prio(3) and id(1)
    assert offset(pkt, "Dot1Q.vlan") == (14, 2)
    assert offset(pkt, "Dot1Q.prio") == (14, 1)
    assert offset(pkt, "IP.src") == (30, 4)        # everything after the tag moves by 4
    assert api.CTRexScapyPktUtl(pkt).get_layer_offet_by_str("802|1Q") == 14


def test_ip_options_move_the_layers_after_them() -> None:
    pkt = eth() / IP(src="16.0.0.1", dst="48.0.0.1", options=[IPOption_RR()]) / UDP()
    ihl = IP(bytes(pkt)[14:]).ihl
    assert ihl > 5
    assert api.CTRexScapyPktUtl(pkt).get_layer_offet_by_str("UDP") == 14 + 4 * ihl
    assert offset(pkt, "IP.dst") == (30, 4)
    assert offset(pkt, "UDP.sport") == (14 + 4 * ihl, 2)


def test_unknown_layer_or_field_is_a_build_error_that_names_it() -> None:
    with pytest.raises(api.CTRexPacketBuildException, match="TCP"):
        offset(udp_pkt(), "TCP.sport")
    with pytest.raises(api.CTRexPacketBuildException, match="nosuch"):
        offset(udp_pkt(), "IP.nosuch")
    with pytest.raises(api.CTRexPacketBuildException, match="IP:2"):
        offset(udp_pkt(), "IP:2.src")


def vm_json(pkt: Ether, vm: list) -> dict:
    return api.STLPktBuilder(pkt=pkt, vm=vm).get_vm_data()


def test_fix_ipv4_by_name_points_at_the_ip_header() -> None:
    data = vm_json(udp_pkt(), [api.STLVmFixIpv4(offset="IP")])
    assert data["instructions"] == [{"type": "fix_checksum_ipv4", "pkt_offset": 14}]
    data = vm_json(vxlan_pkt(), [api.STLVmFixIpv4(offset="IP:1")])
    assert data["instructions"][0]["pkt_offset"] == 64


def test_write_flow_var_by_name() -> None:
    data = vm_json(udp_pkt(), [api.STLVmFlowVar(name="src", min_value="16.0.0.1", max_value="16.0.0.9",
                                                size=4, op="inc"),
                               api.STLVmWrFlowVar(fv_name="src", pkt_offset="IP.src")])
    assert data["instructions"][1]["pkt_offset"] == 26


@pytest.mark.parametrize(("l3", "l4"), [("IP", "UDP"), (14, 34), ("IP", 34), (14, "UDP")])
def test_fix_checksum_hw_gets_l2_len_from_names_and_numbers(l3, l4) -> None:
    data = vm_json(udp_pkt(), [api.STLVmFixChecksumHw(l3_offset=l3, l4_offset=l4, l4_type=UDP_TYPE)])
    assert data["instructions"] == [{"type": "fix_checksum_hw", "l2_len": 14, "l3_len": 20, "l4_type": 11}]


def test_fix_checksum_hw_on_the_inner_headers_of_vxlan() -> None:
    data = vm_json(vxlan_pkt(), [api.STLVmFixChecksumHw(l3_offset="IP:1", l4_offset="UDP:1",
                                                        l4_type=UDP_TYPE)])
    assert data["instructions"][0] == {"type": "fix_checksum_hw", "l2_len": 64, "l3_len": 20, "l4_type": 11}


def test_fix_checksum_hw_rejects_an_l4_offset_inside_the_l3_header() -> None:
    with pytest.raises(api.CTRexPacketBuildException, match="l4_offset"):
        vm_json(udp_pkt(), [api.STLVmFixChecksumHw(l3_offset=14, l4_offset=20, l4_type=UDP_TYPE)])


def stream(vm: list) -> dict:
    builder = api.STLPktBuilder(pkt=udp_pkt(), vm=vm)
    return api.STLStream(packet=builder, mode=api.STLTXCont(pps=1000)).to_json()


def test_stream_built_with_names_equals_stream_built_with_numbers() -> None:
    def flow_var():
        return api.STLVmFlowVar(name="src", min_value="16.0.0.1", max_value="16.0.3.255", size=4, op="inc")

    by_name = stream([flow_var(), api.STLVmWrFlowVar(fv_name="src", pkt_offset="IP.src"),
                      api.STLVmWrFlowVar(fv_name="src", pkt_offset="UDP.sport", offset_fixup=2),
                      api.STLVmFixIpv4(offset="IP"),
                      api.STLVmFixChecksumHw(l3_offset="IP", l4_offset="UDP", l4_type=UDP_TYPE)])
    by_number = stream([flow_var(), api.STLVmWrFlowVar(fv_name="src", pkt_offset=26),
                        api.STLVmWrFlowVar(fv_name="src", pkt_offset=34, offset_fixup=2),
                        api.STLVmFixIpv4(offset=14),
                        api.STLVmFixChecksumHw(l3_offset=14, l4_offset=34, l4_type=UDP_TYPE)])
    assert by_name == by_number


def test_apply_is_idempotent() -> None:
    util = api.CTRexScapyPktUtl
    before = (util.layer_offset, util._layer_offset, util.get_field_offet, api.STLVmFixChecksumHw.compile)
    stl_compat.apply()
    stl_compat.apply()
    after = (util.layer_offset, util._layer_offset, util.get_field_offet, api.STLVmFixChecksumHw.compile)
    assert before == after
    assert stl_compat.is_applied()


def test_module_helpers_work_on_plain_scapy_packets() -> None:
    pkt = vxlan_pkt()
    assert stl_compat.layer_offset(pkt, "UDP:1") == 84
    assert stl_compat.field_offset(pkt, "IP:1.dst") == (80, 4)
    assert stl_compat.parse_layer("802|1Q:2") == ("802.1Q", 2)
    with pytest.raises(ValueError, match="LAYER"):
        stl_compat.field_offset(pkt, "src")
