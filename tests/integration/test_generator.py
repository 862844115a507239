"""The built-in generator's schedule, through the real wire forwarder on DPDK memif devices.

serpens-gen must neither lose track of its schedule nor blame the device under test for its own stalls
(docs/generator.md, "Pacing"): every packet the schedule called for is sent or skipped and counted by cause;
after a real stall (SIGSTOP) it catches up at most its bounded backlog instead of firing the whole backlog at
the DUT; and a rate it cannot reach shows as skipped_slow, which makes the trial ``short``. Rates are modest,
trials last at most 2 s.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from harness import config as cfg
from harness.rig import Rig, rig
from harness.traffic import profiles
from harness.traffic.base import TrialResult
from harness.traffic.local import LocalGenerator, result_from_report


def skipped(result: TrialResult) -> int:
    return result.skipped_stall_packets + result.skipped_slow_packets


def assert_schedule_conserved(result: TrialResult) -> None:
    """What the schedule called for was sent or skipped, exactly, in total and per stream."""
    assert result.intended_packets > 0
    assert result.intended_packets == result.tx_packets + skipped(result)
    for s in result.raw["streams"]:
        assert s["intended_packets"] == (s["tx_packets"] + s["skipped_stall_packets"]
                                         + s["skipped_slow_packets"]), s


RING_SLOTS = 16384  # the memif rings the harness sets up (harness.platforms.base.MemifLink)


def wire_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    """The wire's counters over one trial, and how long its own loop was stalled meanwhile."""
    delta: dict[str, float] = {k: after[k] - before[k] for k in ("rx_packets", "tx_packets", "tx_dropped")}
    delta["stalled_ms"] = after["loop_stalls"]["total_ms"] - before["loop_stalls"]["total_ms"]
    return delta


def assert_no_dut_loss_but_its_own(result: TrialResult, wire: dict[str, float]) -> None:
    """dut_rx_full is 0, unless the wire's own stalls add up to more than its ring holds at this rate (on a
    machine shared with other tests it can be descheduled for tens of ms); then it is at most what fell due
    while the wire was stalled. The generator's stalls never count."""
    stalled = result.offered_pps * wire["stalled_ms"] / 1e3
    if stalled < RING_SLOTS:
        assert result.dut_rx_full == 0, wire
    else:
        assert result.dut_rx_full <= stalled, wire


def assert_wire_accounts_for_it(result: TrialResult, wire: dict[str, float]) -> None:
    """test_wire.py's conservation: what was sent reached the wire or its full receive ring."""
    assert wire["rx_packets"] == result.tx_packets - result.dut_rx_full
    assert result.tx_packets == result.rx_packets + result.dut_rx_full + wire["tx_dropped"]


def stall_budget(result: TrialResult) -> float:
    """Packets that fell due while the generator's loop was stalled: the most it may skip for stalls."""
    return result.offered_pps * result.generator_stalls["total_ms"] / 1e3 + len(result.raw["streams"])


@pytest.mark.dpdk
def test_modest_rate_sends_the_whole_schedule(dpdk_ready: cfg.Config) -> None:
    with rig(dpdk_ready, "wire") as r:
        before = r.platform.stats()
        result = r.generator.run_trial(profiles.load_with_latency(500_000, frame_size=64, n_flows=64),
                                       duration=1.0)
        wire = wire_delta(before, r.platform.stats())
    assert_schedule_conserved(result)
    assert abs(result.intended_packets - result.offered_pps * result.duration_s) <= len(result.raw["streams"])
    assert_wire_accounts_for_it(result, wire)
    assert_no_dut_loss_but_its_own(result, wire)
    assert result.skipped_slow_packets == 0 and not result.short
    stalls = result.generator_stalls
    assert set(stalls) == {"threshold_us", "count", "total_ms", "max_us"}
    if stalls["max_us"] < result.raw["catchup_us"]:
        assert result.skipped_stall_packets == 0  # every gap was caught up
    else:  # this VM stalls (DESIGN.md section 10): only what fell due in the stalls may be skipped
        assert result.skipped_stall_packets <= stall_budget(result)
    assert result.raw["backlog_max_packets"] <= result.raw["catchup_packets"]


def wait_for_traffic(r: Rig, before: dict[str, Any], timeout: float = 10.0) -> None:
    """Block until the wire forwards packets of the running generator: its loop is sending."""
    deadline = time.monotonic() + timeout
    while r.platform.stats()["rx_packets"] == before["rx_packets"]:
        assert time.monotonic() < deadline, "no traffic reached the wire"
        time.sleep(0.02)


@pytest.mark.dpdk
def test_a_stall_of_the_generator_is_skipped_not_fired_at_the_dut(dpdk_ready: cfg.Config) -> None:
    rate, stop_s = 500_000, 0.05   # 50 ms of backlog is 25 000 packets, more than the DUT's 16384-slot ring
    with rig(dpdk_ready, "wire") as r:
        gen = r.generator
        assert isinstance(gen, LocalGenerator)
        before = r.platform.stats()
        gen.reset()
        gen.add_streams(profiles.load_with_latency(rate, frame_size=64, n_flows=64))
        gen.start(duration=2.0)
        assert gen.proc is not None
        wait_for_traffic(r, before)
        time.sleep(0.2)
        os.kill(gen.proc.pid, signal.SIGSTOP)  # a real stall: the kernel deschedules the generator
        time.sleep(stop_s)
        os.kill(gen.proc.pid, signal.SIGCONT)
        gen.wait_on_traffic(timeout=30)
        result = gen.get_stats()
        wire = wire_delta(before, r.platform.stats())
    stalls = result.generator_stalls
    assert stalls["max_us"] >= stop_s * 0.9e6, f"the SIGSTOP did not land in the loop: {stalls}"
    assert_schedule_conserved(result)
    assert_wire_accounts_for_it(result, wire)
    # the backlog beyond the catch-up bound was skipped and charged to the stall ...
    catchup_s = result.raw["catchup_us"] / 1e6
    assert result.skipped_stall_packets >= result.offered_pps * (stop_s * 0.9 - catchup_s)
    assert result.skipped_stall_packets <= stall_budget(result)
    assert result.tx_packets <= result.intended_packets - result.offered_pps * (stop_s * 0.9 - catchup_s)
    # ... so the DUT never saw more than the bounded catch-up at once, and its ring never overflowed
    assert result.raw["backlog_max_packets"] <= result.raw["catchup_packets"]
    assert_no_dut_loss_but_its_own(result, wire)
    # a stall is not a shortfall: it is charged to the stall, not to a slow generator
    assert result.skipped_slow_packets < result.skipped_stall_packets


@pytest.mark.dpdk
def test_a_rate_the_generator_cannot_reach_is_short() -> None:
    # one packet per stream per loop iteration: a few Mpps at most, far below what the wire forwards,
    # so the generator, not the DUT, falls behind
    conf = cfg.load(quick=True, overrides=["generator.local.burst=1"])
    with rig(conf, "wire") as r:
        before = r.platform.stats()
        result = r.generator.run_trial(profiles.udp_flows(60e6, frame_size=64, n_flows=1), duration=0.5)
        wire = wire_delta(before, r.platform.stats())
    assert_schedule_conserved(result)
    assert_wire_accounts_for_it(result, wire)
    # (the wire may still fill up now and then while this machine is busy: packets due then are dut_rx_full)
    assert result.skipped_slow_packets > 0.1 * result.intended_packets
    assert result.short and not result.reached_intended_load


def test_report_counters_fill_the_trial_result() -> None:
    report = {"offered_pps": 1001000.0, "duration_s": 1.0, "intended_packets": 1001000,
              "tx_packets": 990000, "rx_packets": 989000, "dut_rx_full": 1000,
              "skipped_stall_packets": 8000, "skipped_slow_packets": 3000,
              "loop_stalls": {"threshold_us": 50, "count": 3, "total_ms": 8.2, "max_us": 5000.0}}
    result = result_from_report(report, shortfall_tolerance=0.005)
    assert (result.intended_packets, result.skipped_stall_packets, result.skipped_slow_packets) == \
        (1001000, 8000, 3000)
    assert result.generator_stalls["max_us"] == 5000.0
    assert not result.short  # 3000 slow packets are 0.3 % of the schedule; stalled ones never count
    report["skipped_slow_packets"] = 6000
    assert result_from_report(report, shortfall_tolerance=0.005).short


# (catchup_us and idle_sleep_us out of their ranges are refused when the configuration loads:
# tests/unit/test_config_ranges.py)
