"""Per-stage CPU cost counters (docs/stages.md) on the real platforms: the wire forwarder, serpensd and its
runtimes on the serpens and fission state backends, with the real generator on a DPDK memif link.

Behaviour, not speed (fixed rates far below capacity, trials of 1 s): the counters move with traffic and
count exactly the packets each stage handled, busy time never exceeds the wall time it was taken in,
nothing accrues while idle, per-packet costs are plausible, and the remote-state stage exists on fission
(and is part of instance time) but not on serpens.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from harness import config as cfg
from harness.rig import Rig, rig
from harness.serpens.sfc import SfcSpec
from harness.stages import stage_columns, stage_deltas, unit_costs
from harness.traffic import profiles
from harness.traffic.base import TrialResult

pytestmark = pytest.mark.dpdk


def trial(r: Rig, rate_pps: float, duration_s: float = 1.0
          ) -> tuple[dict[str, Any], dict[str, Any], float, TrialResult]:
    """A fixed-rate trial between two stats snapshots: (before, after, wall seconds between them, result)."""
    before = r.platform.stats()
    t0 = time.monotonic()
    result = r.generator.run_trial(profiles.udp_flows(rate_pps, 64, 64), duration=duration_s)
    time.sleep(0.1)   # let the last packets through (flush_us) before reading the counters
    after = r.platform.stats()
    return before, after, time.monotonic() - t0, result


def assert_idle_costs_nothing(r: Rig) -> None:
    time.sleep(0.2)
    quiet = r.platform.stats()
    time.sleep(0.5)
    for name, (busy_ns, packets) in stage_deltas(quiet, r.platform.stats()).items():
        assert packets == 0 and busy_ns == 0, f"{name} accrued {busy_ns} ns over {packets} packets while idle"


def assert_busy_within_wall(deltas: dict[str, tuple[float, float]], wall_s: float, stages: tuple[str, ...]
                            ) -> None:
    """The stages run on one core here (the wire; serpens colocated): their busy time adds up to at most
    the wall time it was taken in."""
    total = sum(deltas[s][0] for s in stages)
    assert 0 < total <= wall_s * 1e9, f"busy {total / 1e9:.3f} s in {wall_s:.3f} s of wall time"


def test_wire_forwarder_counts_its_work_per_packet(dpdk_ready: cfg.Config) -> None:
    with rig(dpdk_ready, "wire") as r:
        before, after, wall_s, res = trial(r, 1_000_000)
        assert_idle_costs_nothing(r)
    deltas = stage_deltas(before, after)
    assert set(deltas) == {"gateway"}
    assert deltas["gateway"][1] == after["rx_packets"] - before["rx_packets"] > 0.9 * res.tx_packets
    assert_busy_within_wall(deltas, wall_s, ("gateway",))
    cols = stage_columns(before, after)
    # tens to hundreds of ns: at 1 Mpps a burst holds few packets, so this is mostly per-burst cost
    assert 5 <= cols["gateway_ns_per_packet"] <= 2000, cols
    assert cols["instance_capacity_mpps"] == pytest.approx(1e3 / cols["gateway_ns_per_packet"])
    assert math.isnan(cols["instance_ns_per_packet"]) and math.isnan(cols["remote_state_ns_per_packet"])


def test_serpens_counts_gateway_and_instance_work_and_no_remote_state(dpdk_ready: cfg.Config) -> None:
    with rig(dpdk_ready, "serpens", sfc=SfcSpec.linear("fw")) as r:
        before, after, wall_s, res = trial(r, 200_000)
        assert_idle_costs_nothing(r)
    deltas = stage_deltas(before, after)
    assert set(deltas) == {"gateway", "instance"}     # no proxy, and the State Manager is not remote
    port_rx = after["port"]["rx_packets"] - before["port"]["rx_packets"]
    assert port_rx > 0.9 * res.tx_packets
    assert deltas["gateway"][1] == port_rx
    pkts_in = sum(i["pkts_in"] for i in after["instances"]) - sum(i["pkts_in"] for i in before["instances"])
    assert deltas["instance"][1] == pkts_in == port_rx
    assert_busy_within_wall(deltas, wall_s, ("gateway", "instance"))
    gw = after["stages"]["gateway"]
    assert 0 <= gw["wake_ns"] <= gw["busy_ns"]       # waking (and handing over to) instances is gateway time
    cols = stage_columns(before, after)
    assert 0 < cols["instance_ns_per_packet"] <= 10_000 and 0 < cols["gateway_ns_per_packet"] <= 10_000, cols
    assert math.isnan(cols["remote_state_ns_per_packet"]) and math.isnan(cols["proxy_ns_per_packet"])
    assert cols["instance_capacity_mpps"] == pytest.approx(1e3 / cols["instance_ns_per_packet"])
    (per_instance,) = unit_costs(before, after).values()
    assert per_instance == pytest.approx(cols["instance_ns_per_packet"], rel=0.01)


def test_a_replaced_instance_counts_from_zero_and_the_stage_keeps_the_old_ones_work(
        dpdk_ready: cfg.Config) -> None:
    with rig(dpdk_ready, "serpens", sfc=SfcSpec.linear("fw")) as r:
        p = r.platform
        before = p.stats()
        first = r.generator.run_trial(profiles.udp_flows(100_000, 64, 64), duration=0.5)
        (slot,) = list(p.instances)
        p.stop_instance(slot)
        started = p.start_instance("fw")
        between = p.stats()
        second = r.generator.run_trial(profiles.udp_flows(100_000, 64, 64), duration=0.5)
        time.sleep(0.1)
        after = p.stats()
    (old_unit,) = before["stages"]["instance"]["units"]
    (new_unit,) = after["stages"]["instance"]["units"]
    assert new_unit["id"] != old_unit["id"] and new_unit["instance"] == started["instance"]
    # the new instance's own counters started from zero: they hold the second trial only
    assert new_unit["packets"] == second.rx_packets
    assert set(unit_costs(between, after)) == {new_unit["id"]}
    # the stage's totals hold both instances' packets
    instance_packets = stage_deltas(before, after)["instance"][1]
    assert instance_packets == first.rx_packets + second.rx_packets


def test_fission_reports_remote_state_as_part_of_instance_time(dpdk_ready: cfg.Config) -> None:
    with rig(dpdk_ready, "fission-state", sfc=SfcSpec.linear("fw")) as r:
        before, after, wall_s, res = trial(r, 50_000)
        assert_idle_costs_nothing(r)
    deltas = stage_deltas(before, after)
    assert set(deltas) == {"gateway", "instance", "remote_state"}
    assert deltas["remote_state"][1] == deltas["instance"][1] > 0.9 * res.tx_packets
    assert 0 < deltas["remote_state"][0] < deltas["instance"][0]
    assert_busy_within_wall(deltas, wall_s, ("gateway", "instance"))
    cols = stage_columns(before, after)
    # a pipelined Redis round trip per 32-packet batch or less: hundreds of ns to tens of µs per packet
    assert 50 <= cols["remote_state_ns_per_packet"] < cols["instance_ns_per_packet"], cols
    (u,) = after["stages"]["instance"]["units"]
    assert u["remote_ns"] > 0
