"""serpens-gen's per-packet latency trace (--latency-trace) through the real wire forwarder on DPDK memif
devices, read back with harness.traffic.latency_trace: every latency packet sent is in it with its flow,
and every one received is joined to it (docs/generator.md, "Latency trace"). Low rates, trials of 1 s."""

from __future__ import annotations

import ipaddress
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from harness import config as cfg
from harness.platforms.wire import WirePlatform
from harness.rig import rig
from harness.traffic import latency_trace as lt
from harness.traffic import profiles
from harness.traffic.local import LocalGenerator

FLOWS = 200
PG = 5


def expected_flow_ids(n_flows: int) -> set[int]:
    """The gateway flow hashes of the profile's flows: 16.0.0.1 + i -> 48.0.0.1, UDP 1025 -> 12."""
    first = int(ipaddress.IPv4Address("16.0.0.1"))
    return {lt.flow_id(str(ipaddress.IPv4Address(first + i)), "48.0.0.1", 1025, 12) for i in range(n_flows)}


@pytest.mark.dpdk
def test_the_trace_holds_every_latency_packet_with_its_flow_through_the_wire(dpdk_ready: cfg.Config,
                                                                            tmp_path: Path) -> None:
    path = tmp_path / "trace.bin"
    streams = profiles.load_with_latency_on_flows(100_000, n_flows=FLOWS, latency_pps=20_000, pg_id=PG)
    with rig(dpdk_ready, "wire", latency_trace=path) as r:
        result = r.generator.run_trial(streams, duration=1.0)
    report, lat = result.raw, result.latency[PG]
    assert result.latency_trace == str(path)
    trace = lt.read(path)
    assert trace.tsc_hz == report["tsc_hz"] and trace.tsc_start == report["tsc_start"]
    info = report["latency_trace"]
    assert (info["tx_records"], info["rx_records"], info["trace_overflow"]) == \
        (lat.tx_packets, lat.rx_packets, 0)
    assert lat.tx_packets >= 0.9 * 20_000   # the trial ran (a stall may skip a few packets)

    # the seqs sent are 0, 1, 2, ... (a refused burst gives its seqs back), in the order sent
    assert np.array_equal(trace.tx["seq"], np.arange(len(trace.tx)))
    assert (trace.tx["pg_id"] == PG).all()
    assert (np.diff(trace.tx["tx_tsc"].astype(np.int64)) >= 0).all()
    assert trace.tx["tx_tsc"][0] >= trace.tsc_start

    # nothing is lost on the wire at this rate: every TX record has its RX record
    packets = lt.packets(trace)
    assert packets["received"].all(), f"{(~packets['received']).sum()} latency packets lost"
    assert not packets["unbuilt"].any()

    # the latency stream's packets spread over exactly the load's flows, with serpensd's flow hash
    assert set(np.unique(trace.tx["flow_id"]).tolist()) == expected_flow_ids(FLOWS)
    flows = lt.per_flow(trace)
    assert len(flows) == FLOWS
    assert flows["sent"].max() - flows["sent"].min() <= 1       # round robin over the flows
    assert flows["lost"].sum() == 0 and flows["reordered"].sum() == 0   # the wire neither loses nor reorders

    # 1 ms bins: their latencies agree with the report's histogram (same packets, same TSC)
    b = lt.bins(trace, 1000)
    assert b["sent"].sum() == lat.tx_packets and b["lost"].sum() == 0
    assert len(b) >= 900   # about one bin per ms of the 1 s trial
    got = b[b["received"] > 0]
    mean_us = (got["latency_mean_us"] * got["received"]).sum() / got["received"].sum()
    assert mean_us == pytest.approx(lat.mean_ns / 1e3, rel=0.01)
    assert got["latency_max_us"].max() == pytest.approx(lat.max_ns / 1e3, rel=0.01)


@pytest.mark.dpdk
def test_records_beyond_the_maximum_are_counted_and_no_option_means_no_trace(dpdk_ready: cfg.Config,
                                                                           tmp_path: Path) -> None:
    path = tmp_path / "small.bin"
    streams = profiles.load_with_latency_on_flows(50_000, n_flows=16, latency_pps=5_000, pg_id=PG)
    with rig(dpdk_ready, "wire", latency_trace=path, latency_trace_max=1000) as r:
        gen = r.generator
        assert isinstance(gen, LocalGenerator)
        small = gen.run_trial(streams, duration=0.5)
        gen.latency_trace = None
        off = gen.run_trial(streams, duration=0.2)
    info, lat = small.raw["latency_trace"], small.latency[PG]
    assert (info["tx_records"], info["rx_records"]) == (1000, 1000)
    assert info["tx_overflow"] == lat.tx_packets - 1000 > 0
    assert info["rx_overflow"] == lat.rx_packets - 1000
    assert info["trace_overflow"] == info["tx_overflow"] + info["rx_overflow"]
    trace = lt.read(path)
    assert (trace.tx_overflow, trace.rx_overflow) == (info["tx_overflow"], info["rx_overflow"])
    assert np.array_equal(trace.tx["seq"], np.arange(1000))      # the first 1000 are kept
    with pytest.raises(lt.LatencyTraceError, match="latency-trace-max"):
        lt.bins(trace, 1000)
    assert off.latency_trace is None and off.raw["latency_trace"] is None


@pytest.mark.dpdk
def test_a_full_dut_ring_keeps_seqs_contiguous_and_the_trace_accounts_for_every_loss(
        dpdk_ready: cfg.Config, tmp_path: Path) -> None:
    """The wire stopped (SIGSTOP) for longer than its 16384-slot ring holds: the generator's bursts are
    refused (their seqs and TX records are taken back and sent again) and packets fall due into the full
    ring (TX records flagged UNBUILT). The trace still has every seq once, and its losses are the
    histogram's tx - rx."""
    path, stop_s = tmp_path / "full.bin", 0.1     # 320 kpps fill the ring in ~51 ms
    streams = profiles.load_with_latency_on_flows(300_000, n_flows=64, latency_pps=20_000, pg_id=PG)
    with rig(dpdk_ready, "wire", latency_trace=path) as r:
        gen, wire = r.generator, r.platform
        assert isinstance(gen, LocalGenerator) and isinstance(wire, WirePlatform)
        assert wire.proc is not None
        gen.reset()
        gen.add_streams(streams)
        gen.start(duration=1.0)
        time.sleep(0.4)
        os.kill(wire.proc.pid, signal.SIGSTOP)
        time.sleep(stop_s)
        os.kill(wire.proc.pid, signal.SIGCONT)
        gen.wait_on_traffic(timeout=30)
        result = gen.get_stats()
    assert result.dut_rx_full > 0, "the wire's ring never filled: the stop did not land in the trial"
    lat = result.latency[PG]
    trace = lt.read(path)
    assert len(trace.tx) == lat.tx_packets and len(trace.rx) == lat.rx_packets
    assert np.array_equal(trace.tx["seq"], np.arange(len(trace.tx)))
    packets = lt.packets(trace)
    assert (~packets["received"]).sum() == lat.tx_packets - lat.rx_packets > 0
    assert not packets.loc[packets["unbuilt"], "received"].any()
    assert (packets.loc[packets["unbuilt"], "flow_id"] == 0).all()
    assert set(packets.loc[~packets["unbuilt"], "flow_id"]) == expected_flow_ids(64)
    # the losses are where the wire was stopped: within one stop of each other
    lost_tsc = packets.loc[~packets["received"], "tx_tsc"].astype(np.int64)
    assert (lost_tsc.max() - lost_tsc.min()) / trace.tsc_hz < 2 * stop_s
