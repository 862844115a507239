"""tests/native/check_smoke.py: checks the outputs of smoke.sh.

Why: verifies, from the files alone, the accounting identity, the latency
results, and (by reading the pcap bytes with struct) that the field engine
incremented the IPv4 source address and produced valid IPv4 checksums.

usage: check_smoke.py GEN_REPORT WIRE_STATS CAPTURE_PCAP
"""
import json
import struct
import sys


def ipv4_checksum_ok(hdr: bytes) -> bool:
    total = sum(struct.unpack(f"!{len(hdr) // 2}H", hdr))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def read_pcap(path):
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    assert magic == 0xA1B23C4D, f"not a ns pcap: {magic:x}"
    assert struct.unpack("<I", data[20:24])[0] == 1, "linktype is not ethernet"
    off, pkts = 24, []
    while off < len(data):
        _, _, incl, _ = struct.unpack("<IIII", data[off:off + 16])
        pkts.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return pkts


def main():
    gen = json.load(open(sys.argv[1]))
    wire = json.load(open(sys.argv[2]))
    pkts = read_pcap(sys.argv[3])

    print("gen loop stalls {}; wire loop stalls {}".format(gen["loop_stalls"], wire["loop_stalls"]))
    assert gen["tx_packets"] > 0 and not gen["interrupted"]
    assert gen["tx_packets"] == gen["rx_packets"] + gen["dut_rx_full"] + wire["tx_dropped"], \
        (f"accounting: tx {gen['tx_packets']} != rx {gen['rx_packets']} + dut_rx_full "
         f"{gen['dut_rx_full']} + wire tx_dropped {wire['tx_dropped']}")
    assert wire["rx_packets"] == gen["tx_packets"] - gen["dut_rx_full"]

    lat = gen["latency"]["5"]
    assert lat["rx_packets"] > 0.9 * lat["tx_packets"], lat
    assert 0 < lat["min_ns"] <= lat["p50_ns"] <= lat["p99_ns"] <= lat["max_ns"]
    assert sum(c for _, c in lat["buckets"]) == lat["rx_packets"]

    assert len(pkts) == gen["capture"]["packets"] == 300
    srcs = [struct.unpack("!I", p[26:30])[0] for p in pkts if p[-16:-14] != b"\x5e\x59"]
    steps = {(b - a) % 254 for a, b in zip(srcs, srcs[1:], strict=False)}
    assert steps <= {1}, f"source addresses do not increment: {sorted(steps)[:5]}"
    assert all(ipv4_checksum_ok(p[14:34]) for p in pkts), "bad IPv4 checksum"
    print(f"check: {gen['tx_packets']} packets accounted, latency p50 {lat['p50_ns']} ns "
          f"p99 {lat['p99_ns']} ns, {len(pkts)} captured")


if __name__ == "__main__":
    main()
