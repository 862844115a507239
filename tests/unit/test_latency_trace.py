"""The latency trace reader (harness.traffic.latency_trace) on hand-built records: the join, loss, per-flow
reordering, bins, and a bad file. The generator's side of it runs through a real wire in
tests/integration/test_latency_trace.py."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from harness.traffic import latency_trace as lt
from harness.traffic.latency_trace import LatencyTrace, LatencyTraceError, rx_records, tx_records

HZ = 10**9   # 1 tick = 1 ns, to read the numbers
US = 1000


def trace(tx: list, rx: list, **kw) -> LatencyTrace:
    return LatencyTrace(tsc_hz=HZ, tx=tx_records(tx), rx=rx_records(rx), **kw)


def sent(n: int, flows: list[int], gap: int = 10 * US) -> list[tuple[int, int, int, int]]:
    """n packets of pg 0, one every ``gap`` ticks, packet k in flow flows[k % len(flows)]."""
    return [(0, k, k * gap, flows[k % len(flows)]) for k in range(n)]


def back(tx: list, order: list[int], latency: int = 5 * US) -> list[tuple[int, int, int, int]]:
    """RX records of the packets tx[i] for i in ``order``, in that order; each arrives ``latency`` after
    it was sent, but never before the one received before it."""
    out, last = [], 0
    for i in order:
        pg, seq, t, _ = tx[i][:4]
        last = max(last, t + latency)
        out.append((pg, seq, t, last))
    return out


def test_swapping_two_packets_of_one_flow_is_one_reordered_packet_of_that_flow() -> None:
    tx = sent(6, [1, 2])                     # flow 1: packets 0, 2, 4; flow 2: 1, 3, 5
    rx = back(tx, [0, 1, 4, 3, 2, 5])        # flow 1's packets 2 and 4 swapped
    flows = lt.per_flow(trace(tx, rx))
    assert flows.loc[1].tolist() == [3, 0, 1]   # sent, lost, reordered
    assert flows.loc[2].tolist() == [3, 0, 0]
    p = lt.packets(trace(tx, rx))
    assert p.index[p["reordered"]].tolist() == [2]   # the earlier-sent one, received after the later one


def test_two_flows_interleaved_out_of_global_order_are_not_reordered() -> None:
    tx = sent(6, [1, 2])
    rx = back(tx, [1, 3, 5, 0, 2, 4])        # all of flow 2 first: each flow is still in order
    assert lt.per_flow(trace(tx, rx))["reordered"].sum() == 0
    assert lt.bins(trace(tx, rx), 1000)["reordered"].sum() == 0


def test_a_packet_overtaken_by_several_counts_once_and_they_do_not() -> None:
    tx = sent(4, [7])
    rx = back(tx, [1, 2, 3, 0])              # packet 0 arrives last
    flows = lt.per_flow(trace(tx, rx))
    assert flows.loc[7, "reordered"] == 1


def test_loss_is_counted_exactly_per_bin_and_per_flow() -> None:
    tx = sent(10, [1, 2], gap=100 * US)      # one packet every 0.1 ms: 10 per 1 ms bin
    tx += [(0, k, 1 * 10**6 + (k - 10) * 100 * US, 1 + k % 2) for k in range(10, 20)]
    lost = {3, 4, 15}                        # flow 2, flow 1 (bin 0); flow 2 (bin 1)
    rx = back(tx, [i for i in range(20) if i not in lost])
    b = lt.bins(trace(tx, rx), 1000)
    assert b["time_ms"].tolist() == [0.0, 1.0]
    assert b["sent"].tolist() == [10, 10]
    assert b["lost"].tolist() == [2, 1]
    assert b["received"].tolist() == [8, 9]
    flows = lt.per_flow(trace(tx, rx))
    assert flows["lost"].to_dict() == {1: 1, 2: 2}
    assert flows["sent"].to_dict() == {1: 10, 2: 10}


def test_bins_are_by_send_time_with_latency_of_what_was_sent_in_them() -> None:
    tx = [(0, 0, 0, 1), (0, 1, 400 * US, 1), (0, 2, 900 * US, 1),   # bin 0 (1 ms bins)
          (0, 3, 2100 * US, 1)]                                     # bin 2; bin 1 is empty
    latencies = [10 * US, 20 * US, 60 * US, 1000 * US]
    rx = [(pg, seq, t, t + d) for (pg, seq, t, _), d in zip(tx, latencies, strict=True)]
    b = lt.bins(trace(tx, rx), 1000)
    assert b["time_ms"].tolist() == [0.0, 1.0, 2.0]
    assert b["sent"].tolist() == [3, 0, 1]
    assert b["latency_mean_us"][0] == pytest.approx(30.0)
    assert b["latency_p50_us"][0] == pytest.approx(20.0)
    assert b["latency_max_us"][0] == pytest.approx(60.0)
    assert math.isnan(b["latency_mean_us"][1]) and b["lost"][1] == 0
    # packet 2 is sent in bin 0 and received in bin 0.96 ms: still bin 0; packet 3's 1 ms counts in bin 2
    assert b["latency_max_us"][2] == pytest.approx(1000.0)


def test_t0_moves_the_time_axis() -> None:
    tx = [(0, 0, 5 * 10**6, 1), (0, 1, 7 * 10**6 + 1, 1)]
    rx = back(tx, [0, 1])
    b = lt.bins(trace(tx, rx), 1000, t0_tsc=6 * 10**6)
    assert b["time_ms"].tolist() == [-1.0, 0.0, 1.0]
    assert b["sent"].tolist() == [1, 0, 1]
    assert lt.bins(trace(tx, rx), 500)["time_ms"].tolist()[:2] == [0.0, 0.5]


def test_a_duplicate_reception_counts_once_at_its_first_arrival() -> None:
    tx = sent(2, [1])
    rx = back(tx, [0, 1, 0])
    p = lt.packets(trace(tx, rx))
    assert p["received"].all() and not p["reordered"].any()
    assert p["rx_index"].tolist() == [0, 1]


def test_unbuilt_packets_are_lost_in_bins_and_have_no_flow() -> None:
    tx = sent(3, [1]) + [(0, 3, 30 * US, 0, lt.UNBUILT)]
    rx = back(tx, [0, 1, 2])
    assert lt.bins(trace(tx, rx), 1000)["lost"].sum() == 1
    flows = lt.per_flow(trace(tx, rx))
    assert flows.index.tolist() == [1] and flows.loc[1, "lost"] == 0


def test_an_overflowed_trace_refuses_to_tell_loss() -> None:
    tx = sent(2, [1])
    with pytest.raises(LatencyTraceError, match="latency-trace-max"):
        lt.bins(trace(tx, back(tx, [0, 1]), rx_overflow=3), 1000)


def test_round_trip_through_the_file(tmp_path: Path) -> None:
    tx = sent(5, [1, 2, 3])
    t = trace(tx, back(tx, [0, 2, 1, 4]), tsc_start=123)
    lt.write(tmp_path / "t.bin", t)
    r = lt.read(tmp_path / "t.bin")
    assert (r.tsc_hz, r.tsc_start, r.tx_overflow, r.rx_overflow) == (HZ, 123, 0, 0)
    assert np.array_equal(r.tx, t.tx) and np.array_equal(r.rx, t.rx)
    assert lt.per_flow(r).equals(lt.per_flow(t))


def test_bad_files_are_one_clear_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"NOTATRACE" + bytes(100))
    with pytest.raises(LatencyTraceError) as exc:
        lt.read(bad)
    assert str(bad) in str(exc.value) and "\n" not in str(exc.value)
    assert "magic" in str(exc.value)
    tx = sent(3, [1])
    good = tmp_path / "cut.bin"
    lt.write(good, trace(tx, back(tx, [0, 1, 2])))
    good.write_bytes(good.read_bytes()[:-5])
    with pytest.raises(LatencyTraceError, match="truncated"):
        lt.read(good)
    with pytest.raises(LatencyTraceError, match="cannot read"):
        lt.read(tmp_path / "missing.bin")


def test_flow_id_is_the_gateway_hash_the_c_test_pins() -> None:
    # native/generator/test_lat_trace.c checks the same two values against serpens-gen's lat_flow_id
    assert lt.flow_id("16.0.0.1", "48.0.0.1", 1025, 12) == 0x710B86A9
    assert lt.flow_id("16.0.0.2", "48.0.0.1", 1025, 12) == 0x68A48A80
