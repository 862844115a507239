"""SimulatedGenerator: the response-curve stand-in for a DUT and a generator, used to test the rate search."""

from __future__ import annotations

import base64
import time

import pytest

from harness.traffic.base import GeneratorError
from harness.traffic.simulated import MEASURED_STALLS, SimulatedGenerator, StallClass, interpolate


def stream(pps: float, *, pg_id: int | None = None, frame: bytes = b"", rate_type: str = "pps",
           mode: str = "continuous", enabled: bool = True) -> dict:
    """A stream dict shaped like ``STLStream.to_json()``."""
    return {
        "enabled": enabled,
        "mode": {"type": mode, "rate": {"type": rate_type, "value": pps}},
        "flow_stats": ({"enabled": True, "rule_type": "latency", "stream_id": pg_id} if pg_id is not None
                       else {"enabled": False}),
        "packet": {"binary": base64.b64encode(frame).decode(), "meta": ""},
    }


def test_offered_rate_is_the_sum_of_stream_rates_times_mult() -> None:
    gen = SimulatedGenerator(1e9)
    r = gen.run_trial([stream(100_000), stream(1_000, pg_id=7)], duration=2.0, mult=3.0)
    assert r.offered_pps == pytest.approx(303_000)
    assert r.tx_packets == 606_000 and r.rx_packets == 606_000
    assert r.generator == "simulated"


def test_accepts_real_stlstream_objects() -> None:
    api = pytest.importorskip("trex_stl_lib.api")
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")  # explicit: scapy would ARP for it
    pkt = api.STLPktBuilder(pkt=eth / IP(src="198.18.0.1", dst="198.19.0.1") / UDP() / (b"x" * 18))
    streams = [api.STLStream(packet=pkt, mode=api.STLTXCont(pps=50_000)),
               api.STLStream(packet=pkt, mode=api.STLTXCont(pps=1_000),
                             flow_stats=api.STLFlowLatencyStats(pg_id=3))]
    r = SimulatedGenerator(1e9).run_trial(streams, duration=1.0)
    assert r.offered_pps == pytest.approx(51_000)
    assert set(r.latency) == {3}
    assert r.tx_bytes == 51_000 * 60


def test_counts_are_integers_consistent_with_the_loss_curve() -> None:
    gen = SimulatedGenerator(1e6, loss_at=[(0, 0.0), (1e6, 0.0), (2e6, 0.1)])
    r = gen.run_trial([stream(1_234_567)], duration=2.0)
    loss = 0.1 * (1_234_567 - 1e6) / 1e6
    assert isinstance(r.tx_packets, int) and isinstance(r.rx_packets, int)
    assert r.tx_packets == round(1_234_567 * 2.0)
    assert r.rx_packets == r.tx_packets - round(r.tx_packets * loss)
    assert r.dut_rx_full == r.tx_packets - r.rx_packets


def test_loss_points_are_interpolated_linearly_and_flat_beyond_the_ends() -> None:
    f = interpolate([(2e6, 0.5), (1e6, 0.0)])  # unsorted on purpose
    assert f(0) == 0.0
    assert f(1.5e6) == pytest.approx(0.25)
    assert f(9e6) == 0.5
    with pytest.raises(ValueError):
        interpolate([])


def test_callable_loss_curve_is_evaluated_at_the_actual_tx_rate() -> None:
    seen: list[float] = []

    def loss_at(rate: float) -> float:
        seen.append(rate)
        return 0.0

    gen = SimulatedGenerator(1e6, loss_at=loss_at, max_tx_pps=500_000)
    gen.run_trial([stream(800_000)], duration=1.0)
    assert seen == [500_000]


def test_default_curve_forwards_at_most_capacity() -> None:
    gen = SimulatedGenerator(1e6)
    below = gen.run_trial([stream(900_000)], duration=2.0)
    above = gen.run_trial([stream(1_250_000)], duration=2.0)
    assert below.loss_packets == 0
    assert above.rx_packets == 2_000_000
    assert above.loss_ratio == pytest.approx(0.2)


def test_buffer_makes_long_trials_lose_more_than_short_ones() -> None:
    gen = SimulatedGenerator(1e6, buffer_packets=400_000)
    short = gen.run_trial([stream(1_150_000)], duration=2.0)   # 300 k excess, absorbed
    long = gen.run_trial([stream(1_150_000)], duration=10.0)   # 1.5 M excess, 1.1 M lost
    assert short.loss_packets == 0
    assert long.loss_packets == 1_100_000


def test_buffer_only_combines_with_the_default_curve() -> None:
    with pytest.raises(ValueError):
        SimulatedGenerator(1e6, loss_at=[(0, 0.0)], buffer_packets=10)


def test_generator_max_rate_makes_a_short_trial_whose_shortfall_is_not_loss() -> None:
    gen = SimulatedGenerator(1e6, max_tx_pps=600_000)
    r = gen.run_trial([stream(900_000)], duration=2.0)
    assert r.tx_packets == 1_200_000
    assert r.short
    assert r.loss_ratio == 0.0
    ok = gen.run_trial([stream(600_000)], duration=2.0)
    assert not ok.short


def test_latency_streams_report_a_latency_that_rises_towards_capacity() -> None:
    gen = SimulatedGenerator(1e6, base_latency_ns=5_000, max_queue_ns=500_000)
    light = gen.run_trial([stream(99_000), stream(1_000, pg_id=1)], duration=1.0).latency[1]
    heavy = gen.run_trial([stream(949_000), stream(1_000, pg_id=1)], duration=1.0).latency[1]
    over = gen.run_trial([stream(1_999_000), stream(1_000, pg_id=1)], duration=1.0).latency[1]
    assert light.min_ns == 5_000 and light.tx_packets == 1_000 and light.rx_packets == 1_000
    assert light.min_ns <= light.p50_ns <= light.p99_ns <= light.p999_ns <= light.max_ns
    assert light.mean_ns < heavy.mean_ns < over.mean_ns == 505_000
    assert over.rx_packets == 500  # the latency stream loses its share, like the load


def test_noise_is_reproducible_with_the_same_seed() -> None:
    def losses(seed: int) -> list[int]:
        gen = SimulatedGenerator(1e6, loss_at=[(0, 0.01)], noise_relative=0.3, noise_absolute=1e-4, seed=seed)
        return [gen.run_trial([stream(500_000)], duration=1.0).loss_packets for _ in range(5)]

    assert losses(7) == losses(7)
    assert losses(7) != losses(8)
    assert len(set(losses(7))) > 1


def test_relative_noise_keeps_a_lossless_rate_lossless() -> None:
    gen = SimulatedGenerator(1e6, noise_relative=0.5, seed=1)
    assert all(gen.run_trial([stream(500_000)], duration=1.0).loss_packets == 0 for _ in range(20))


def test_records_every_trial_and_never_sleeps() -> None:
    gen = SimulatedGenerator(1e6)
    t0 = time.monotonic()
    gen.run_trial([stream(1_000)], duration=3600.0)
    gen.run_trial([stream(2_000), stream(500)], duration=10.0, mult=2.0)
    assert time.monotonic() - t0 < 0.5
    assert gen.trials == [(1_000, 3600.0), (5_000, 10.0)]


def test_run_trial_starts_from_a_clean_set_of_streams() -> None:
    gen = SimulatedGenerator(1e6)
    gen.run_trial([stream(1_000)], duration=1.0)
    r = gen.run_trial([stream(2_000)], duration=1.0)
    assert r.offered_pps == 2_000


def test_bps_rates_are_converted_with_the_frame_length_as_trex_does() -> None:
    gen = SimulatedGenerator(1e9)
    frame = bytes(60)  # a 64 B frame: L2 counts the FCS, L1 also preamble, SFD and inter-frame gap
    l2 = gen.run_trial([stream(64 * 8 * 1_000, frame=frame, rate_type="bps_L2")], duration=1.0)
    l1 = gen.run_trial([stream(84 * 8 * 1_000, frame=frame, rate_type="bps_L1")], duration=1.0)
    assert l2.offered_pps == pytest.approx(1_000)
    assert l1.offered_pps == pytest.approx(1_000)


def test_disabled_streams_are_not_sent() -> None:
    r = SimulatedGenerator(1e6).run_trial([stream(1_000), stream(5_000, enabled=False)], duration=1.0)
    assert r.offered_pps == 1_000


@pytest.mark.parametrize("bad", [stream(1_000, mode="single_burst"), stream(50, rate_type="percentage"),
                                 object()])
def test_rejects_streams_it_cannot_simulate(bad: object) -> None:
    with pytest.raises(GeneratorError):
        SimulatedGenerator(1e6).run_trial([bad], duration=1.0)


def test_get_stats_before_any_trial_is_an_error() -> None:
    with pytest.raises(GeneratorError):
        SimulatedGenerator(1e6).get_stats()


# ---- stalls and the generator's schedule -------------------------------------------------------------


def test_the_measured_stall_model_is_what_the_busy_loop_saw() -> None:
    # DESIGN.md section 10: about one 5-10 ms stall per second and three of 1-2 ms
    assert MEASURED_STALLS == (StallClass(1.0, 0.005, 0.010), StallClass(3.0, 0.001, 0.002))


def test_a_dut_stall_loses_what_overflows_its_ring() -> None:
    every_10ms = (StallClass(5.0, 0.010, 0.010),)
    gen = SimulatedGenerator(1e9, dut_stalls=every_10ms, ring_packets=16_384, seed=2)
    fast = gen.run_trial([stream(3_000_000)], duration=10.0)
    stalls = fast.raw["dut_stalls"]
    assert 20 < stalls < 80  # Poisson, 5 per second
    assert fast.loss_packets == fast.dut_rx_full == stalls * (30_000 - 16_384)
    slow = gen.run_trial([stream(1_000_000)], duration=10.0)   # 10 k packets per stall fit the ring
    assert slow.raw["dut_stalls"] > 0 and slow.loss_packets == 0


def test_dut_stalls_add_to_the_curve_and_repeat_with_the_seed() -> None:
    def losses(seed: int) -> list[int]:
        gen = SimulatedGenerator(1e9, loss_at=[(0, 0.001)], dut_stalls=MEASURED_STALLS, seed=seed)
        return [gen.run_trial([stream(3_000_000)], duration=1.0).loss_packets for _ in range(10)]

    assert losses(4) == losses(4) != losses(5)
    assert min(losses(4)) >= 3_000 and max(losses(4)) > 3_000


def test_stalls_leave_the_noise_sequence_alone() -> None:
    def losses(**stalls: object) -> list[int]:
        gen = SimulatedGenerator(1e6, loss_at=[(0, 0.01)], noise_relative=0.3, seed=1, **stalls)
        return [gen.run_trial([stream(100_000)], duration=1.0).loss_packets for _ in range(5)]

    assert losses() == losses(dut_stalls=MEASURED_STALLS)   # 100 kpps: no stall overflows the ring


def test_a_generator_stall_skips_packets_that_are_not_loss() -> None:
    gen = SimulatedGenerator(1e9, generator_stalls=(StallClass(5.0, 0.004, 0.004),), catchup_packets=1_000,
                             seed=3)
    r = gen.run_trial([stream(1_000_000)], duration=2.0)
    stalls = r.generator_stalls["count"]
    assert stalls > 0 and r.generator_stalls["max_us"] == pytest.approx(4_000)
    assert r.intended_packets == 2_000_000
    assert r.skipped_stall_packets == stalls * (4_000 - 1_000)
    assert r.tx_packets == r.intended_packets - r.skipped_stall_packets == r.rx_packets
    assert not r.short and r.loss_ratio == 0.0


def test_a_generator_stall_does_not_make_the_dut_faster() -> None:
    seen: list[float] = []

    def loss_at(rate: float) -> float:
        seen.append(rate)
        return 0.0

    gen = SimulatedGenerator(1e6, loss_at=loss_at, generator_stalls=(StallClass(5.0, 0.004, 0.004),), seed=3)
    gen.run_trial([stream(1_000_000)], duration=2.0)
    assert seen == [pytest.approx(1_000_000, rel=1e-5)]


def test_a_capped_generator_reports_the_rest_of_its_schedule_as_too_slow() -> None:
    r = SimulatedGenerator(1e6, max_tx_pps=600_000).run_trial([stream(900_000)], duration=2.0)
    assert (r.intended_packets, r.tx_packets, r.skipped_slow_packets) == (1_800_000, 1_200_000, 600_000)
    assert r.short and r.skipped_stall_packets == 0


def test_a_generator_without_a_schedule_reports_none_like_trex() -> None:
    r = SimulatedGenerator(1e6, max_tx_pps=600_000, reports_schedule=False).run_trial([stream(900_000)], 2.0)
    assert (r.intended_packets, r.skipped_slow_packets, r.generator_stalls) == (0, 0, {})
    assert r.short  # from the sent rate against the offered one


def test_bad_stall_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        StallClass(1.0, 0.010, 0.005)
    with pytest.raises(ValueError):
        SimulatedGenerator(1e6, ring_packets=-1)
