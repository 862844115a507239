"""Helpers the integration tests share: reading the generator's captures and naming its flows."""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

FIRST_SRC = int(ipaddress.IPv4Address("16.0.0.1"))
LOAD_DST, LOAD_SPORT, LOAD_DPORT = "48.0.0.1", 1025, 12   # profiles.udp_flows defaults
FRAME_BYTES = 60                    # a 64 B frame without its FCS: what NFs see and count


def read_pcap(path: Path) -> list[bytes]:
    """The frames of a classic pcap file (what serpens-gen --capture writes)."""
    data = path.read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    assert magic in (0xA1B2C3D4, 0xA1B23C4D), f"not a pcap file: magic {magic:#x}"
    off, packets = 24, []
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        packets.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return packets


def read_pcap_timed(path: Path) -> list[tuple[int, bytes]]:
    """(receive time in ns, frame) of every record of a nanosecond pcap (serpens-gen --capture)."""
    data = path.read_bytes()
    magic = struct.unpack("<I", data[:4])[0]
    assert magic == 0xA1B23C4D, f"not a nanosecond pcap file: magic {magic:#x}"
    off, records = 24, []
    while off + 16 <= len(data):
        sec, nsec, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        records.append((sec * 1_000_000_000 + nsec, data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return records


def flow_key(src: str, dst: str = LOAD_DST, sport: int = LOAD_SPORT, dport: int = LOAD_DPORT,
             proto: int = 17) -> bytes:
    """struct sp_flow (nf.h): addresses and ports in network byte order, 3 bytes of zero padding."""
    return struct.pack("!4s4sHHB3x", ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed,
                       sport, dport, proto)


def load_src(i: int) -> str:
    """Source address of the load stream's i-th flow."""
    return str(ipaddress.IPv4Address(FIRST_SRC + i))


def per_flow(tx_packets: int, n_flows: int) -> list[int]:
    """Packets of each flow: the generator cycles through the flows in order, starting with the first."""
    return [tx_packets // n_flows + (1 if i < tx_packets % n_flows else 0) for i in range(n_flows)]
