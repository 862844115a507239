"""The real generator through the real wire forwarder, on DPDK memif devices.

These pin behaviour, not speed: every packet is accounted for, the field engine varies packets exactly as
the STL profile says, latency is measured per packet, bad profiles and a missing peer fail clearly, and the
CLI writes a row and its sidecar. Rates here are far below this machine's limit.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from harness import config as cfg
from harness.cli import main
from harness.native import RunDir
from harness.platforms.base import MemifLink
from harness.rig import rig
from harness.traffic import profiles
from harness.traffic.base import GeneratorError
from harness.traffic.local import LocalGenerator
from tests.integration.packets import read_pcap

pytestmark = pytest.mark.dpdk


def test_every_packet_is_accounted_for(dpdk_ready: cfg.Config) -> None:
    with rig(dpdk_ready, "wire") as r:
        before = r.platform.stats()
        result = r.generator.run_trial(profiles.load_with_latency(500_000, frame_size=64, n_flows=64),
                                       duration=1.0)
        after = r.platform.stats()
    wire_rx = after["rx_packets"] - before["rx_packets"]
    wire_tx = after["tx_packets"] - before["tx_packets"]
    wire_dropped = after["tx_dropped"] - before["tx_dropped"]
    # the schedule called for ~500 k; what was sent depends on how long the generator itself was descheduled
    # (those packets are skipped, not fired at the wire: docs/generator.md, "Pacing")
    assert result.intended_packets > 400_000 and result.tx_packets > 100_000
    # what the generator put on the link either reached the wire or was refused by its receive ring
    assert wire_rx == result.tx_packets - result.dut_rx_full
    # what the wire received it either sent back or counted as dropped
    assert wire_rx == wire_tx + wire_dropped
    # and what it sent back all arrived: no packet is lost without being counted
    assert result.rx_packets == wire_tx
    assert result.tx_packets == result.rx_packets + result.dut_rx_full + wire_dropped
    # and the schedule: every packet it called for was sent or skipped (docs/generator.md, "Pacing")
    assert result.intended_packets == (result.tx_packets + result.skipped_stall_packets
                                       + result.skipped_slow_packets)


def test_field_engine_varies_packets_as_the_profile_says(dpdk_ready: cfg.Config, tmp_path: Path) -> None:
    capture = tmp_path / "rx.pcap"
    n_flows = 16
    streams = profiles.udp_flows(10_000, frame_size=64, n_flows=n_flows)
    with rig(dpdk_ready, "wire", capture=capture, capture_count=100) as r:
        result = r.generator.run_trial(streams, duration=0.5)
    assert result.rx_packets == result.tx_packets
    packets = [Ether(p) for p in read_pcap(capture)]
    assert len(packets) == 100
    first = int(ipaddress.IPv4Address("16.0.0.1"))
    for i, pkt in enumerate(packets):
        assert len(bytes(pkt)) == 60  # a 64 B frame less its FCS
        src = int(ipaddress.IPv4Address(pkt[IP].src))
        assert src == first + i % n_flows, f"packet {i}: src {pkt[IP].src}"
        # checksums the generator fixed are right: rebuild them with scapy and compare
        ip_ck, udp_ck = pkt[IP].chksum, pkt[UDP].chksum
        del pkt[IP].chksum
        del pkt[UDP].chksum
        rebuilt = Ether(bytes(pkt))
        assert ip_ck == rebuilt[IP].chksum, f"packet {i}: bad IPv4 checksum"
        assert udp_ck in (0, rebuilt[UDP].chksum), f"packet {i}: bad UDP checksum"


def test_latency_stream_is_timestamped_and_counted(dpdk_ready: cfg.Config) -> None:
    with rig(dpdk_ready, "wire") as r:
        result = r.generator.run_trial(profiles.load_with_latency(200_000, frame_size=64, n_flows=8,
                                                                  latency_pps=1000), duration=1.0)
    lat = result.latency[0]
    assert 900 <= lat.tx_packets <= 1100
    assert lat.rx_packets == lat.tx_packets and lat.out_of_order == 0
    assert 0 < lat.min_ns <= lat.p50_ns <= lat.p99_ns <= lat.max_ns
    assert lat.histogram.startswith("HIST")


def test_unsupported_stream_is_refused_with_the_field_named(dpdk_ready: cfg.Config) -> None:
    stream = profiles.udp_flows(1000, frame_size=64, n_flows=1)[0].to_json()
    stream["mode"]["rate"] = {"type": "percentage", "value": 10}
    with rig(dpdk_ready, "wire") as r, pytest.raises(GeneratorError, match="percentage"):
        r.generator.run_trial([stream], duration=0.2)


def test_generator_without_a_peer_says_so(dpdk_ready: cfg.Config) -> None:
    conf = cfg.load(quick=True, overrides=["generator.local.link_timeout_s=1"])
    run_dir = RunDir(conf, "nopeer")
    try:
        link = MemifLink(socket=str(run_dir / "nobody.sock"))
        gen = LocalGenerator(conf, [link.client_vdev()], run_dir)
        with pytest.raises(GeneratorError, match="link"):
            gen.run_trial(profiles.udp_flows(1000, frame_size=64, n_flows=1), duration=0.2)
    finally:
        run_dir.remove()


def test_cli_run_prints_numbers_and_writes_row_and_sidecar(dpdk_ready: cfg.Config, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    res = CliRunner().invoke(main, ["--quick", "--set", "search.max_rate_mpps=2", "run", "--platform", "wire",
                                    "--load", "0.8", "--duration", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "PDR" in res.output and "p99" in res.output
    (csv_path,) = out.glob("*.csv")
    row = pd.read_csv(csv_path).iloc[0]
    assert row["platform"] == "wire" and row["pdr_mpps"] > 0 and row["ndr_mpps"] <= row["pdr_mpps"]
    assert row["latency_p50_us"] > 0 and row["load_fraction"] == 0.8
    meta = json.loads(csv_path.with_suffix(".json").read_text())
    assert meta["status"] == "complete" and meta["cores"]["generator"] == dpdk_ready["cores"]["generator"]
    assert meta["software"]["dpdk"]
