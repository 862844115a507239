"""harness.stages on synthetic stats snapshots: per-stage ns per packet from two snapshots, and which stage
bounded a measured throughput (docs/stages.md)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from harness.serpens.batch_costs import batch_costs
from harness.stages import BOTTLENECK_MARGIN, bottleneck, stage_columns, stage_deltas, unit_costs


def snap(**stages: Any) -> dict[str, Any]:
    """A stats snapshot with the given stages, each (busy_ns, packets) or a full dict."""
    out: dict[str, Any] = {}
    for name, v in stages.items():
        out[name] = v if isinstance(v, dict) else {"busy_ns": v[0], "packets": v[1]}
    return {"rx_packets": 0, "stages": out}


def unit(uid: str, busy_ns: int, packets: int) -> dict[str, Any]:
    return {"id": uid, "busy_ns": busy_ns, "packets": packets}


def test_columns_are_the_deltas_per_packet() -> None:
    before = snap(gateway=(1_000, 10), instance=(5_000, 10), remote_state=(4_000, 10))
    after = snap(gateway=(101_000, 1010), instance=(1_005_000, 1010), remote_state=(904_000, 1010))
    cols = stage_columns(before, after)
    assert cols["gateway_ns_per_packet"] == 100.0
    assert cols["instance_ns_per_packet"] == 1000.0
    assert cols["remote_state_ns_per_packet"] == 900.0
    assert math.isnan(cols["proxy_ns_per_packet"])         # Serpens has no proxy
    assert cols["instance_capacity_mpps"] == pytest.approx(1.0)


def test_the_wire_has_only_a_forwarder_and_its_capacity_is_the_instance_capacity() -> None:
    cols = stage_columns(snap(gateway=(0, 0)), snap(gateway=(50_000_000, 1_000_000)))
    assert cols["gateway_ns_per_packet"] == 50.0
    assert math.isnan(cols["instance_ns_per_packet"]) and math.isnan(cols["remote_state_ns_per_packet"])
    assert cols["instance_capacity_mpps"] == pytest.approx(20.0)


def test_no_packets_between_the_snapshots_gives_nan_not_a_crash() -> None:
    s = snap(gateway=(1_000, 10), instance=(5_000, 10))
    cols = stage_columns(s, s)
    assert all(math.isnan(v) for v in cols.values())


def test_an_instance_stage_without_packets_does_not_borrow_the_gateway_capacity() -> None:
    cols = stage_columns(snap(gateway=(0, 0), instance=(0, 0)), snap(gateway=(1_000, 10), instance=(0, 0)))
    assert cols["gateway_ns_per_packet"] == 100.0
    assert math.isnan(cols["instance_capacity_mpps"])


def test_snapshots_without_stages_give_nan_columns() -> None:
    cols = stage_columns({"rx_packets": 1}, {"rx_packets": 2})
    assert set(cols) == {"gateway_ns_per_packet", "instance_ns_per_packet", "proxy_ns_per_packet",
                         "remote_state_ns_per_packet", "instance_capacity_mpps"}
    assert all(math.isnan(v) for v in cols.values())


def test_a_stage_that_appears_between_the_snapshots_counts_from_zero() -> None:
    deltas = stage_deltas(snap(gateway=(10, 1)), snap(gateway=(110, 2), proxy=(300, 3)))
    assert deltas == {"gateway": (100.0, 1.0), "proxy": (300.0, 3.0)}


def test_counters_that_went_backwards_belong_to_a_restarted_platform_and_count_from_zero() -> None:
    cols = stage_columns(snap(gateway=(9_000_000, 90_000)), snap(gateway=(2_000, 20)))
    assert cols["gateway_ns_per_packet"] == 100.0


def test_a_replaced_instance_counts_from_zero() -> None:
    before = snap(instance={"busy_ns": 10_000, "packets": 100,
                            "units": [unit("0/100/1", 8_000, 80), unit("1/101/1", 2_000, 20)]})
    # slot 0 was stopped and started again (a pooled runtime keeps its pid: only the start count differs)
    after = snap(instance={"busy_ns": 13_000, "packets": 130,
                           "units": [unit("0/100/2", 500, 10), unit("1/101/1", 6_000, 40)]})
    assert unit_costs(before, after) == {"0/100/2": 50.0, "1/101/1": 200.0}
    # the stage's totals hold every instance's work, the stopped one's included
    assert stage_columns(before, after)["instance_ns_per_packet"] == 100.0


def test_unit_costs_of_a_stage_without_units_is_empty() -> None:
    assert unit_costs(snap(gateway=(0, 0)), snap(gateway=(10, 1)), "gateway") == {}


# --- bottleneck ---------------------------------------------------------------------------------------

def cols(gateway: float = math.nan, instance: float = math.nan, proxy: float = math.nan) -> dict[str, float]:
    return {"gateway_ns_per_packet": gateway, "instance_ns_per_packet": instance,
            "proxy_ns_per_packet": proxy, "remote_state_ns_per_packet": math.nan,
            "instance_capacity_mpps": 1e3 / instance if instance == instance else math.nan}


def bound(c: dict[str, float], mpps: float, colocated: bool = True) -> str:
    return bottleneck(c, measured_mpps=mpps, generator_limited=False, colocated=colocated)


def test_a_generator_limited_rate_is_the_generators() -> None:
    assert bottleneck(cols(100, 10_000), measured_mpps=0.1, generator_limited=True,
                      colocated=True) == "generator"


def test_fission_mon_on_a_shared_core_is_bounded_by_its_instance() -> None:
    # instance 10 µs/packet (Redis 9 of it), gateway 0.2 µs: core 0.098 Mpps, the instance alone 0.1 Mpps
    assert bottleneck(cols(200, 10_000), measured_mpps=0.095, generator_limited=False,
                      colocated=True) == "instance"


def test_a_core_shared_by_two_comparable_stages_is_the_cores() -> None:
    # 500 + 500 ns: the core does 1 Mpps, either stage alone 2 Mpps
    assert bottleneck(cols(500, 500), measured_mpps=0.95, generator_limited=False, colocated=True) == "core"


def test_on_separate_cores_the_slowest_stage_bounds() -> None:
    assert bound(cols(500, 250), 1.9, colocated=False) == "gateway"
    assert bound(cols(100, 250), 3.9, colocated=False) == "instance"


def test_the_wire_forwarder_bounds_as_the_gateway() -> None:
    assert bound(cols(gateway=100), 9.0) == "gateway"


def test_a_rate_far_below_every_capacity_is_unclear() -> None:
    # Serpens FW here: the core could do ~5 Mpps, 1 Mpps came through: something uncounted bounds it
    assert bottleneck(cols(150, 40), measured_mpps=1.0, generator_limited=False, colocated=True) == "unclear"


def test_a_rate_above_what_the_counters_allow_is_unclear() -> None:
    # the instance alone would allow 9-10 Mpps, but sharing the core with the gateway only 5
    assert bottleneck(cols(100, 100), measured_mpps=9.0, generator_limited=False, colocated=True) == "unclear"


def test_the_margin_is_relative_to_the_capacity() -> None:
    c = cols(gateway=100)   # 10 Mpps
    inside, outside = 10 * (1 - BOTTLENECK_MARGIN) + 0.01, 10 * (1 - BOTTLENECK_MARGIN) - 0.01
    assert bottleneck(c, measured_mpps=inside, generator_limited=False, colocated=False) == "gateway"
    assert bottleneck(c, measured_mpps=outside, generator_limited=False, colocated=False) == "unclear"
    assert bottleneck(c, measured_mpps=8.5, generator_limited=False, colocated=False, margin=0.1) == "unclear"


def test_missing_costs_or_rate_are_unclear() -> None:
    assert bottleneck(cols(), measured_mpps=1.0, generator_limited=False, colocated=True) == "unclear"
    assert bottleneck(cols(100, 100), measured_mpps=0.0, generator_limited=False, colocated=True) == "unclear"
    assert bottleneck(cols(100, 100), measured_mpps=math.nan, generator_limited=False,
                      colocated=True) == "unclear"


# --- batch_costs (Table II, Fig. 12) keeps working beside the stages -----------------------------------

def test_batch_costs_counts_a_restarted_pooled_instance_from_zero() -> None:
    def inst(start: int, batches: int, busy_us: float) -> dict[str, Any]:
        return {"instance": 0, "pid": 100, "start": start, "batches": batches, "pkts_in": batches * 32,
                "busy_us": busy_us, "remote": {"us": 0.0, "batches": 0}}

    # the same pooled process (same slot, same pid) served a new instance: its counters restarted
    costs = batch_costs({"instances": [inst(1, 1000, 500.0)]}, {"instances": [inst(2, 10, 5.0)]})
    assert costs["processing_us"] == 0.5 and costs["batch_packets"] == 32
    assert math.isnan(costs["state_access_us"])
