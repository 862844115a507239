"""profiles: the STL streams every generator sends (sizes, flows, latency stream, argument checks)."""

from __future__ import annotations

import base64
import ipaddress
import math

import pytest

pytest.importorskip("trex_stl_lib.api")

from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from trex_stl_lib.trex_stl_streams import STLStream, STLTXCont  # noqa: E402

from harness.traffic import profiles  # noqa: E402


def packet(stream: STLStream) -> Ether:
    return Ether(base64.b64decode(stream.to_json()["packet"]["binary"]))


def instructions(stream: STLStream) -> list[dict]:
    return stream.to_json()["vm"]["instructions"]


def ip(n: int) -> str:
    return str(ipaddress.IPv4Address(n))


@pytest.mark.parametrize("frame_size", [64, 65, 128, 1518, 9000])
def test_packet_is_the_frame_size_minus_the_fcs(frame_size: int) -> None:
    for s in profiles.load_with_latency(1e6, frame_size, 1024):
        assert len(s.get_pkt()) == frame_size - 4
        assert s.get_pkt_len() == frame_size          # what TRex counts, FCS included


def test_load_is_ipv4_udp_with_trex_test_addresses_and_local_macs() -> None:
    [s] = profiles.udp_flows(1e6)
    p = packet(s)
    assert (p[IP].src, p[IP].dst, p[UDP].sport, p[UDP].dport) == ("16.0.0.1", "48.0.0.1", 1025, 12)
    for mac in (p.src, p.dst):
        first = int(mac.split(":")[0], 16)
        assert first & 0x02 and not first & 0x01   # locally administered, unicast
    assert s.to_json()["mode"] == {"rate": {"type": "pps", "value": 1e6}, "type": "continuous"}
    assert s.to_json()["flags"] == 3                # the template's MACs are used as they are


def test_macs_from_port_lets_trex_fill_in_the_port_macs() -> None:
    [s] = profiles.udp_flows(1e6, macs_from_port=True)
    assert s.to_json()["flags"] == 0


def test_flows_vary_the_source_address_by_name() -> None:
    [s] = profiles.udp_flows(1e6, 64, 1024)
    var, write, fix = instructions(s)
    assert var["type"] == "flow_var" and var["op"] == "inc" and var["size"] == 4
    assert ip(var["min_value"]) == "16.0.0.1"
    assert var["max_value"] - var["min_value"] + 1 == 1024
    assert write == {"type": "write_flow_var", "name": var["name"], "pkt_offset": 26, "add_value": 0,
                     "is_big_endian": True}
    assert fix == {"type": "fix_checksum_ipv4", "pkt_offset": 14}


def test_one_flow_needs_no_field_engine() -> None:
    [s] = profiles.udp_flows(1e6, 64, 1)
    assert instructions(s) == []


def test_more_than_65536_flows_use_address_times_port() -> None:
    [s] = profiles.udp_flows(1e6, 64, 200_000)
    gen, write_ip, write_port, fix = instructions(s)
    assert gen["type"] == "tuple_flow_var" and gen["limit_flows"] == 200_000
    assert gen["ip_max"] - gen["ip_min"] + 1 == 65536
    assert (gen["port_min"], gen["port_max"]) == (1025, 1025 + math.ceil(200_000 / 65536) - 1)
    assert (write_ip["name"], write_ip["pkt_offset"]) == ("tuple.ip", 26)
    assert (write_port["name"], write_port["pkt_offset"]) == ("tuple.port", 34)
    assert fix["type"] == "fix_checksum_ipv4"


def test_udp_checksum_is_zero_by_default_and_fixed_in_hardware_on_request() -> None:
    [zero] = profiles.udp_flows(1e6)
    assert packet(zero)[UDP].chksum == 0
    [hw] = profiles.udp_flows(1e6, udp_checksum="hw")
    assert packet(hw)[UDP].chksum != 0
    assert instructions(hw)[-1] == {"type": "fix_checksum_hw", "l2_len": 14, "l3_len": 20, "l4_type": 11}
    assert "fix_checksum_ipv4" not in [i["type"] for i in instructions(hw)]


def test_latency_stream_carries_latency_flow_stats_with_its_pg_id() -> None:
    [s] = profiles.latency_stream(pg_id=7, rate_pps=1000, frame_size=128)
    assert s.to_json()["flow_stats"] == {"enabled": True, "stream_id": 7, "rule_type": "latency"}
    assert s.to_json()["mode"]["rate"] == {"type": "pps", "value": 1000}
    assert packet(s)[UDP].chksum == 0               # TRex rewrites its payload on every packet
    assert instructions(s) == []


def test_latency_stream_is_a_flow_and_a_host_of_its_own() -> None:
    load, lat = profiles.load_with_latency(1e6, 64, 65536)
    var = instructions(load)[0]
    lat_src = int(ipaddress.IPv4Address(packet(lat)[IP].src))
    assert not var["min_value"] <= lat_src <= var["max_value"]
    assert load.to_json()["flow_stats"]["enabled"] is False


def test_load_with_latency_rates_and_frame_size() -> None:
    load, lat = profiles.load_with_latency(2e6, 256, 10, latency_pps=500, pg_id=3)
    assert profiles.stream_pps(load) == 2e6 and profiles.stream_pps(lat) == 500
    assert lat.to_json()["flow_stats"]["stream_id"] == 3
    assert load.get_pkt_len() == lat.get_pkt_len() == 256


def test_load_with_latency_refuses_a_load_that_covers_the_latency_source() -> None:
    with pytest.raises(ValueError, match="latency"):
        profiles.load_with_latency(1e6, 64, 65536, src="16.254.255.255")


def test_stream_pps_converts_bit_rates_with_the_frame_size() -> None:
    [s] = profiles.udp_flows(1e6, 64)
    fields = s.to_json()
    l2 = dict(fields, mode=STLTXCont(bps_L2=64 * 8 * 1000).to_json())
    l1 = dict(fields, mode=STLTXCont(bps_L1=84 * 8 * 1000).to_json())
    assert profiles.stream_pps(l2) == pytest.approx(1000)
    assert profiles.stream_pps(l1) == pytest.approx(1000)
    with pytest.raises(ValueError, match="percentage"):
        profiles.stream_pps(dict(fields, mode=STLTXCont(percentage=10).to_json()))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"frame_size": 63}, "frame_size"),
    ({"frame_size": 9001}, "frame_size"),
    ({"frame_size": 64.0}, "frame_size"),
    ({"rate_pps": 0}, "rate_pps"),
    ({"rate_pps": -5}, "rate_pps"),
    ({"rate_pps": math.nan}, "rate_pps"),
    ({"rate_pps": math.inf}, "rate_pps"),
    ({"n_flows": 0}, "n_flows"),
    ({"n_flows": profiles.max_flows() + 1}, "n_flows"),
    ({"src": "16.0.0.300"}, "src"),
    ({"dst": "not-an-address"}, "dst"),
    ({"src": "16.255.255.250", "n_flows": 100}, "/8"),
    ({"sport": 70000}, "sport"),
    ({"udp_checksum": "software"}, "udp_checksum"),
])
def test_bad_load_arguments_are_value_errors(kwargs: dict, message: str) -> None:
    args = {"rate_pps": 1e6, **kwargs}
    with pytest.raises(ValueError, match=message):
        profiles.udp_flows(**args)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"pg_id": -1}, "pg_id"),
    ({"pg_id": 1.5}, "pg_id"),
    ({"rate_pps": 0}, "rate_pps"),
    ({"frame_size": 10_000}, "frame_size"),
])
def test_bad_latency_arguments_are_value_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        profiles.latency_stream(**kwargs)


# --- the churn workload ---------------------------------------------------------------------------------

def test_churn_stream_opens_one_new_source_per_packet_over_exactly_its_range() -> None:
    [s] = profiles.churn_flows(300, first_flow=1000, n_flows=303)
    var, write, fix = instructions(s)
    first = int(ipaddress.IPv4Address(profiles.CHURN_SRC)) + 1000
    assert var["type"] == "flow_var" and var["op"] == "inc" and var["size"] == 4 and var["step"] == 1
    assert (var["min_value"], var["init_value"], var["max_value"]) == (first, first, first + 302)
    assert write["name"] == "churn" and write["pkt_offset"] == 26 and write["add_value"] == 0  # IP.src
    assert fix["type"] == "fix_checksum_ipv4" and fix["pkt_offset"] == 14
    assert packet(s)[IP].src == ip(first)            # the template is the range's first flow
    assert profiles.stream_pps(s) == 300


def test_churn_series_lies_between_the_fixed_load_and_the_latency_source() -> None:
    lo = int(ipaddress.IPv4Address(profiles.CHURN_SRC))
    hi = lo + profiles.CHURN_MAX_FLOWS - 1
    fixed_last = profiles._ipv4("16.0.0.1", "src") + profiles.MAX_FLOWS_BY_ADDRESS - 1
    assert fixed_last < lo and hi < int(ipaddress.IPv4Address(profiles.LATENCY_SRC))
    assert ip(lo) == "16.128.0.0" and ip(hi) == "16.191.255.255"   # one /10


def test_load_with_churn_splits_nothing_itself_and_keeps_the_latency_stream() -> None:
    load, churn, lat = profiles.load_with_churn(1e6, 300, 0, 310, frame_size=128, n_flows=1024,
                                                latency_pps=1000, pg_id=2)
    assert [profiles.stream_pps(s) for s in (load, churn, lat)] == [1e6, 300, 1000]
    assert load.get_pkt_len() == churn.get_pkt_len() == lat.get_pkt_len() == 128
    assert lat.to_json()["flow_stats"]["stream_id"] == 2
    assert churn.to_json()["flow_stats"]["enabled"] is False
    p = packet(churn)
    assert (p[IP].dst, p[UDP].sport, p[UDP].dport) == ("48.0.0.1", 1025, 12)   # only the source varies


def test_one_churn_flow_needs_no_field_engine() -> None:
    [s] = profiles.churn_flows(10, first_flow=5, n_flows=1)
    assert s.to_json()["vm"]["instructions"] == []
    assert packet(s)[IP].src == "16.128.0.5"


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"first_flow": -1}, "first_flow"),
    ({"first_flow": profiles.CHURN_MAX_FLOWS}, "first_flow"),
    ({"n_flows": 0}, "n_flows"),
    ({"first_flow": profiles.CHURN_MAX_FLOWS - 10, "n_flows": 11}, "run past its end"),
    ({"rate_pps": 0}, "rate_pps"),
    ({"udp_checksum": "software"}, "udp_checksum"),
])
def test_bad_churn_arguments_are_value_errors(kwargs: dict, message: str) -> None:
    args = {"rate_pps": 300, "first_flow": 0, "n_flows": 100, **kwargs}
    with pytest.raises(ValueError, match=message):
        profiles.churn_flows(**args)


def test_load_with_churn_refuses_a_load_that_overlaps_the_churn_series() -> None:
    with pytest.raises(ValueError, match="churn series"):
        profiles.load_with_churn(1e6, 300, 0, 300, n_flows=1024, src="16.127.255.0")


def test_latency_on_flows_spreads_timestamped_packets_over_the_loads_own_flows() -> None:
    load, latency = profiles.load_with_latency_on_flows(1e6, n_flows=1000, latency_pps=20_000, pg_id=3)
    assert profiles.stream_pps(load) == 1e6 and profiles.stream_pps(latency) == 20_000
    assert latency.to_json()["flow_stats"] == {"enabled": True, "stream_id": 3, "rule_type": "latency"}
    lp, pp = packet(latency), packet(load)
    # the same 5-tuple template, so packet k of the latency stream is in flow k mod 1000 of the load
    assert (lp[IP].src, lp[IP].dst, lp[UDP].sport, lp[UDP].dport) == \
        (pp[IP].src, pp[IP].dst, pp[UDP].sport, pp[UDP].dport)
    [lvar, lwrite, lfix] = instructions(latency)
    lvar_load = instructions(load)[0]
    for key in ("min_value", "max_value", "init_value", "op", "size", "step"):
        assert lvar[key] == lvar_load[key], key
    assert ip(lvar["max_value"]) == "16.0.3.232"           # 16.0.0.1 + 999
    assert lwrite["pkt_offset"] == 26 and lfix["type"] == "fix_checksum_ipv4"
    assert len(latency.get_pkt()) == 60


def test_latency_on_one_flow_needs_no_field_engine_and_bad_counts_are_refused() -> None:
    _, latency = profiles.load_with_latency_on_flows(1e5, n_flows=1)
    assert not latency.to_json()["vm"]["instructions"]
    with pytest.raises(ValueError, match="n_flows"):
        profiles.load_with_latency_on_flows(1e5, n_flows=70_000)
    with pytest.raises(ValueError, match="latency_pps"):
        profiles.load_with_latency_on_flows(1e5, latency_pps=0)
