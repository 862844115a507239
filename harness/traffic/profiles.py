"""The STL traffic profiles our experiments send: many-flow UDP load and a low-rate latency stream.

Every generator driver takes these same ``STLStream`` objects (trex-stl-lib API): TRex sends them on a
testbed, the built-in DPDK generator interprets their ``to_json()`` locally.

Conventions (TRex's, kept so profiles read like TRex examples):

* ``frame_size`` is the Ethernet frame *including* the 4-byte FCS the NIC appends, so the template packet
  is ``frame_size - 4`` bytes (64 -> 60). Allowed: 64..9000.
* Addresses come from 16.0.0.0/8 (sources) and 48.0.0.0/8 (destinations): test addresses that only ever
  appear inside generated packets. MACs default to locally administered ones (``02:...``).
* Flows are varied by the field engine, written with field names (``"IP.src"``), so the offsets follow
  the packet if it ever gets a VLAN tag or a tunnel header.

Two flow workloads (docs/methodology.md, "Flow workloads"): *fixed* — :func:`udp_flows` cycles through
the same ``n_flows`` 5-tuples for the whole trial — and *churn* — the fixed set plus :func:`churn_flows`,
a stream whose every packet opens a new flow (a new source address from ``CHURN_SRC``/10), so NFs that
allocate per new flow (NAT's port pool) keep allocating. The churn series is numbered: flow *i* has
source ``CHURN_SRC + i``; a caller that runs several trials against one device hands each trial the next
unused numbers (harness.traffic.churn), so no trial repeats a flow an earlier one opened.

UDP checksum: by default it is **0** ("no checksum", valid for UDP over IPv4, RFC 768). The field engine
rewrites the source address (and port) per packet, and the UDP checksum covers both through the
pseudo-header, so a checksum computed once for the template would be wrong for every flow but the
first. Fixing it per packet needs ``STLVmFixChecksumHw``, which relies on the TRex NIC's TX checksum
offload (absent on some NICs and on virtual devices) and costs the built-in generator a per-packet
checksum. ``udp_checksum="hw"`` selects that instead. Latency streams always carry 0: TRex rewrites
their last 16 payload bytes (sequence number and timestamp) on every packet.
"""

from __future__ import annotations

import ipaddress
import math
from typing import Any, Literal

from harness.traffic import stl_compat

stl_compat.apply()

from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.packet import Raw  # noqa: E402
from trex_stl_lib.trex_stl_packet_builder_scapy import (  # noqa: E402
    CTRexVmInsFixHwCs,
    STLPktBuilder,
    STLScVmRaw,
    STLVmFixChecksumHw,
    STLVmFixIpv4,
    STLVmFlowVar,
    STLVmTupleGen,
    STLVmWrFlowVar,
)
from trex_stl_lib.trex_stl_streams import STLFlowLatencyStats, STLStream, STLTXCont  # noqa: E402

MIN_FRAME_SIZE = 64
MAX_FRAME_SIZE = 9000
FCS_BYTES = 4
HEADERS_BYTES = 14 + 20 + 8          # Ethernet + IPv4 + UDP, no options
LATENCY_TAG_BYTES = 16               # TRex writes its latency/sequence tag into the last 16 payload bytes

DEFAULT_SRC_MAC = "02:00:00:00:00:01"
DEFAULT_DST_MAC = "02:00:00:00:00:02"

# One source address per flow up to this many flows; beyond it, source address x source port.
MAX_FLOWS_BY_ADDRESS = 1 << 16

# The latency stream's own 5-tuple: a source host the load never uses (the load starts at 16.0.0.1 and
# spans at most 65536 addresses), so NFs keep it as a separate flow and a separate host.
LATENCY_SRC = "16.255.0.1"
# The churn series' sources: 16.128.0.0/10, above any fixed load (which starts at 16.0.0.1 and spans at
# most 65536 addresses) and below the latency source. 2^22 new flows: at the default 300 new flows/s,
# 3.9 hours of traffic before the series is used up (harness.traffic.churn checks it per run).
CHURN_SRC = "16.128.0.0"
CHURN_MAX_FLOWS = 1 << 22
LATENCY_DST = "48.0.0.1"
LATENCY_SPORT = 1024
LATENCY_DPORT = 12

UdpChecksum = Literal["zero", "hw"]


def udp_flows(rate_pps: float, frame_size: int = 64, n_flows: int = 1024, src: str = "16.0.0.1",
              dst: str = "48.0.0.1", sport: int = 1025, dport: int = 12, *,
              src_mac: str = DEFAULT_SRC_MAC, dst_mac: str = DEFAULT_DST_MAC,
              macs_from_port: bool = False, udp_checksum: UdpChecksum = "zero") -> list[STLStream]:
    """IPv4/UDP load of ``n_flows`` flows at ``rate_pps`` in total, as one continuous stream.

    Flows differ by source address (``src``, ``src+1``, ...) and, above 65536 flows, by source address
    x source port (65536 addresses, ports from ``sport`` up: a ``tuple_flow_var``, which serpens-gen runs
    with TRex's order, address first, docs/generator.md). Packets cycle through the flows in order, so
    each flow gets ``rate_pps / n_flows``.

    ``macs_from_port=True`` lets TRex put its port's configured MACs in the frame (the MACs in the
    template are then placeholders); by default the frame carries ``src_mac``/``dst_mac`` as given.
    """
    _check_rate(rate_pps, "rate_pps")
    _check_frame_size(frame_size, HEADERS_BYTES)
    _check_port(sport, "sport")
    _check_port(dport, "dport")
    _check_int(n_flows, "n_flows", 1, max_flows(sport))
    if udp_checksum not in ("zero", "hw"):
        raise ValueError(f"udp_checksum must be 'zero' or 'hw', got {udp_checksum!r}")
    first = _ipv4(src, "src")
    _ipv4(dst, "dst")
    n_addresses = min(n_flows, MAX_FLOWS_BY_ADDRESS)
    _check_in_slash8(first, n_addresses, "src")

    pkt = _udp_packet(frame_size, src, dst, sport, dport, src_mac, dst_mac,
                      checksum=None if udp_checksum == "hw" else 0)
    vm: list[Any] = []
    if n_flows <= MAX_FLOWS_BY_ADDRESS:
        if n_flows > 1:
            vm += [STLVmFlowVar(name="src", min_value=src, max_value=_dotted(first + n_flows - 1),
                                size=4, op="inc"),
                   STLVmWrFlowVar(fv_name="src", pkt_offset="IP.src")]
    else:
        n_ports = math.ceil(n_flows / MAX_FLOWS_BY_ADDRESS)
        vm += [STLVmTupleGen(name="tuple", ip_min=src, ip_max=_dotted(first + MAX_FLOWS_BY_ADDRESS - 1),
                             port_min=sport, port_max=sport + n_ports - 1, limit_flows=n_flows),
               STLVmWrFlowVar(fv_name="tuple.ip", pkt_offset="IP.src"),
               STLVmWrFlowVar(fv_name="tuple.port", pkt_offset="UDP.sport")]
    if vm:
        if udp_checksum == "hw":
            vm.append(STLVmFixChecksumHw(l3_offset="IP", l4_offset="UDP",
                                         l4_type=CTRexVmInsFixHwCs.L4_TYPE_UDP))
        else:
            vm.append(STLVmFixIpv4(offset="IP"))
    builder = STLPktBuilder(pkt=pkt, vm=STLScVmRaw(vm) if vm else None)
    return [_stream(builder, rate_pps, macs_from_port)]


def latency_stream(pg_id: int = 0, rate_pps: float = 1000, frame_size: int = 64, *,
                   src: str = LATENCY_SRC, dst: str = LATENCY_DST, sport: int = LATENCY_SPORT,
                   dport: int = LATENCY_DPORT, src_mac: str = DEFAULT_SRC_MAC,
                   dst_mac: str = DEFAULT_DST_MAC, macs_from_port: bool = False) -> list[STLStream]:
    """One flow of timestamped packets whose latency is reported under packet group ``pg_id``.

    Its 5-tuple (default source 16.255.0.1) is outside what :func:`udp_flows` uses with its defaults,
    so NFs see it as a flow of its own.
    """
    _check_int(pg_id, "pg_id", 0, (1 << 32) - 1)
    _check_rate(rate_pps, "rate_pps")
    _check_frame_size(frame_size, HEADERS_BYTES + LATENCY_TAG_BYTES)
    _check_port(sport, "sport")
    _check_port(dport, "dport")
    _ipv4(src, "src")
    _ipv4(dst, "dst")
    pkt = _udp_packet(frame_size, src, dst, sport, dport, src_mac, dst_mac, checksum=0)
    return [_stream(STLPktBuilder(pkt=pkt), rate_pps, macs_from_port,
                    flow_stats=STLFlowLatencyStats(pg_id=pg_id))]


def churn_flows(rate_pps: float, first_flow: int, n_flows: int, frame_size: int = 64, *,
                dst: str = "48.0.0.1", sport: int = 1025, dport: int = 12,
                src_mac: str = DEFAULT_SRC_MAC, dst_mac: str = DEFAULT_DST_MAC, macs_from_port: bool = False,
                udp_checksum: UdpChecksum = "zero") -> list[STLStream]:
    """New flows at ``rate_pps``: packet *k* of the stream is flow ``first_flow + k`` of the churn series
    (source ``CHURN_SRC + first_flow + k``), one packet per flow, for the ``n_flows`` flows of the range.

    The source address is a 4-byte flow var incrementing over exactly that range, so the stream opens a
    new 5-tuple with every packet until it has sent ``n_flows`` packets; give it at least as many as the
    trial sends (rate x duration), or it wraps and repeats its first flows.
    """
    _check_rate(rate_pps, "rate_pps")
    _check_frame_size(frame_size, HEADERS_BYTES)
    _check_port(sport, "sport")
    _check_port(dport, "dport")
    _check_int(first_flow, "first_flow", 0, CHURN_MAX_FLOWS - 1)
    if isinstance(n_flows, int) and not isinstance(n_flows, bool) and first_flow + n_flows > CHURN_MAX_FLOWS:
        raise ValueError(f"the churn series holds {CHURN_MAX_FLOWS} flows ({CHURN_SRC}/10); flows "
                         f"{first_flow}..{first_flow + n_flows - 1} run past its end")
    _check_int(n_flows, "n_flows", 1, CHURN_MAX_FLOWS)
    if udp_checksum not in ("zero", "hw"):
        raise ValueError(f"udp_checksum must be 'zero' or 'hw', got {udp_checksum!r}")
    _ipv4(dst, "dst")
    first = _ipv4(CHURN_SRC, "CHURN_SRC") + first_flow
    pkt = _udp_packet(frame_size, _dotted(first), dst, sport, dport, src_mac, dst_mac,
                      checksum=None if udp_checksum == "hw" else 0)
    vm: list[Any] = []
    if n_flows > 1:
        vm += [STLVmFlowVar(name="churn", min_value=first, max_value=first + n_flows - 1, init_value=first,
                            size=4, op="inc"),
               STLVmWrFlowVar(fv_name="churn", pkt_offset="IP.src")]
        if udp_checksum == "hw":
            vm.append(STLVmFixChecksumHw(l3_offset="IP", l4_offset="UDP",
                                         l4_type=CTRexVmInsFixHwCs.L4_TYPE_UDP))
        else:
            vm.append(STLVmFixIpv4(offset="IP"))
    builder = STLPktBuilder(pkt=pkt, vm=STLScVmRaw(vm) if vm else None)
    return [_stream(builder, rate_pps, macs_from_port)]


def load_with_latency(rate_pps: float, frame_size: int = 64, n_flows: int = 1024,
                      latency_pps: float = 1000, pg_id: int = 0, **load_args: Any) -> list[STLStream]:
    """:func:`udp_flows` plus :func:`latency_stream` (same frame size, same MAC handling).

    ``rate_pps`` is the load alone; the total offered rate is ``rate_pps + latency_pps``.
    """
    load = udp_flows(rate_pps, frame_size, n_flows, **load_args)
    mac_args = {k: load_args[k] for k in ("src_mac", "dst_mac", "macs_from_port") if k in load_args}
    latency = latency_stream(pg_id, latency_pps, frame_size, **mac_args)
    src = load_args.get("src", "16.0.0.1")
    n_addresses = min(n_flows, MAX_FLOWS_BY_ADDRESS)
    first = int(ipaddress.IPv4Address(src))
    if first <= int(ipaddress.IPv4Address(LATENCY_SRC)) < first + n_addresses:
        raise ValueError(f"the load's source addresses {src} + {n_addresses} include the latency stream's "
                         f"source {LATENCY_SRC}; choose another src for the load")
    return load + latency


def load_with_latency_on_flows(rate_pps: float, n_flows: int = 1000, latency_pps: float = 20_000,
                               frame_size: int = 64, pg_id: int = 0, *, src: str = "16.0.0.1",
                               dst: str = "48.0.0.1", sport: int = 1025, dport: int = 12,
                               src_mac: str = DEFAULT_SRC_MAC, dst_mac: str = DEFAULT_DST_MAC,
                               macs_from_port: bool = False) -> list[STLStream]:
    """The scaling experiment's traffic (issue 12, Fig. 14): :func:`udp_flows` over ``n_flows`` flows at
    ``rate_pps``, plus a latency stream of ``latency_pps`` whose packets are spread over the SAME flows.

    The latency stream's template has the load's 5-tuple, and a 4-byte ``inc`` flow var over the load's
    source addresses (``src`` .. ``src + n_flows - 1``) rewrites its ``IP.src`` (then the IPv4 checksum), so
    packet *k* of it belongs to flow ``k mod n_flows``: every flow the platform moves carries timestamped
    packets (``latency_pps / n_flows`` per flow and second). serpens-gen runs a field engine on latency
    streams (the signature in the last 16 bytes is written after it, docs/generator.md); whether a TRex
    server does the same for a latency stream was not checked here, so on TRex verify the latency packets'
    source addresses first. ``rate_pps`` is the load alone; the total offered rate is
    ``rate_pps + latency_pps``. At most 65536 flows (one source address per flow).
    """
    _check_int(n_flows, "n_flows", 1, MAX_FLOWS_BY_ADDRESS)
    _check_int(pg_id, "pg_id", 0, (1 << 32) - 1)
    _check_rate(latency_pps, "latency_pps")
    _check_frame_size(frame_size, HEADERS_BYTES + LATENCY_TAG_BYTES)
    macs = {"src_mac": src_mac, "dst_mac": dst_mac, "macs_from_port": macs_from_port}
    load = udp_flows(rate_pps, frame_size, n_flows, src, dst, sport, dport, **macs)
    first = _ipv4(src, "src")
    pkt = _udp_packet(frame_size, src, dst, sport, dport, src_mac, dst_mac, checksum=0)
    vm: list[Any] = []
    if n_flows > 1:
        vm = [STLVmFlowVar(name="src", min_value=src, max_value=_dotted(first + n_flows - 1), size=4,
                           op="inc"),
              STLVmWrFlowVar(fv_name="src", pkt_offset="IP.src"),
              STLVmFixIpv4(offset="IP")]
    builder = STLPktBuilder(pkt=pkt, vm=STLScVmRaw(vm) if vm else None)
    return load + [_stream(builder, latency_pps, macs_from_port, flow_stats=STLFlowLatencyStats(pg_id=pg_id))]


def load_with_churn(rate_pps: float, churn_pps: float, first_flow: int, n_churn_flows: int,
                    frame_size: int = 64, n_flows: int = 1024, latency_pps: float = 1000, pg_id: int = 0,
                    **load_args: Any) -> list[STLStream]:
    """The churn workload: :func:`load_with_latency` plus :func:`churn_flows` (flows ``first_flow`` ..
    ``first_flow + n_churn_flows - 1`` of the churn series), same frame size and MAC handling.

    ``rate_pps`` is the fixed-flow load alone; the total offered rate is ``rate_pps + churn_pps +
    latency_pps``.
    """
    fixed = load_with_latency(rate_pps, frame_size, n_flows, latency_pps, pg_id, **load_args)
    args = {k: load_args[k] for k in ("dst", "sport", "dport", "src_mac", "dst_mac", "macs_from_port",
                                      "udp_checksum") if k in load_args}
    churn = churn_flows(churn_pps, first_flow, n_churn_flows, frame_size, **args)
    src = load_args.get("src", "16.0.0.1")
    first, lo = int(ipaddress.IPv4Address(src)), int(ipaddress.IPv4Address(CHURN_SRC))
    if first < lo + CHURN_MAX_FLOWS and lo < first + min(n_flows, MAX_FLOWS_BY_ADDRESS):
        raise ValueError(f"the load's source addresses {src} + {min(n_flows, MAX_FLOWS_BY_ADDRESS)} overlap "
                         f"the churn series {CHURN_SRC}/10; choose another src for the load")
    return fixed[:1] + churn + fixed[1:]


def max_flows(sport: int = 1025) -> int:
    """The most flows :func:`udp_flows` can make with source ports starting at ``sport``."""
    return MAX_FLOWS_BY_ADDRESS * (65535 - sport + 1)


def stream_pps(stream: Any) -> float:
    """Packets per second a stream asks for (pps, or L1/L2 bit rate over its frame size)."""
    fields = stream.to_json() if hasattr(stream, "to_json") else stream
    rate = fields["mode"]["rate"]
    kind, value = rate["type"], float(rate["value"])
    if kind == "pps":
        return value
    frame = _frame_bytes(fields)
    if kind == "bps_L2":
        return value / (8 * frame)
    if kind == "bps_L1":
        return value / (8 * (frame + 20))   # preamble + start delimiter + inter-frame gap
    raise ValueError(f"stream rate of type {kind!r} has no packet rate without the link speed")


# --- helpers -------------------------------------------------------------------------------------------

def _frame_bytes(fields: dict[str, Any]) -> int:
    import base64

    return len(base64.b64decode(fields["packet"]["binary"])) + FCS_BYTES


def _udp_packet(frame_size: int, src: str, dst: str, sport: int, dport: int, src_mac: str, dst_mac: str,
                checksum: int | None) -> Any:
    # MACs are always explicit: left empty, scapy resolves the destination MAC from the host's routing
    # table and ARP cache, which may send an ARP request from this machine.
    pkt = Ether(src=src_mac, dst=dst_mac) / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport,
                                                                        chksum=checksum)
    pad = frame_size - FCS_BYTES - len(pkt)
    return pkt / Raw(b"x" * pad) if pad > 0 else pkt


def _stream(builder: Any, rate_pps: float, macs_from_port: bool, flow_stats: Any = None) -> STLStream:
    overrides: dict[str, Any] = {}
    if macs_from_port:
        overrides = {"mac_src_override_by_pkt": False, "mac_dst_override_mode": 0}
    return STLStream(packet=builder, mode=STLTXCont(pps=rate_pps), flow_stats=flow_stats, **overrides)


def _check_rate(value: float, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value <= 0:
        raise ValueError(f"{name} must be a positive number of packets per second, got {value!r}")


def _check_int(value: int, name: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}, got {value!r}")


def _check_port(value: int, name: str) -> None:
    _check_int(value, name, 0, 65535)


def _check_frame_size(frame_size: int, min_packet: int) -> None:
    _check_int(frame_size, "frame_size", MIN_FRAME_SIZE, MAX_FRAME_SIZE)
    if frame_size - FCS_BYTES < min_packet:
        raise ValueError(f"frame_size {frame_size} leaves no room for the {min_packet}-byte headers")


def _ipv4(address: str, name: str) -> int:
    try:
        return int(ipaddress.IPv4Address(address))
    except (ipaddress.AddressValueError, ValueError):
        raise ValueError(f"{name} must be an IPv4 address, got {address!r}") from None


def _dotted(address: int) -> str:
    return str(ipaddress.IPv4Address(address))


def _check_in_slash8(first: int, count: int, name: str) -> None:
    last = first + count - 1
    if last >> 24 != first >> 24:
        raise ValueError(f"{name} range {ipaddress.IPv4Address(first)} + {count} addresses leaves "
                         f"{ipaddress.IPv4Address(first & 0xFF000000)}/8; start lower")
