"""Where the CPU goes, per packet: per-stage busy time from two platform ``stats()`` snapshots, and which
stage bounded a measured throughput (docs/stages.md).

Every platform's stats carry a ``stages`` section, cumulative since the platform started::

    "stages": {"gateway":      {"busy_ns": N, "packets": P, ...},
               "instance":     {"busy_ns": N, "packets": P, "units": [{"id": ..., "busy_ns", "packets"}]},
               "proxy":        {...},      # a chaining proxy (serpens chaining: local-/global-proxy)
               "remote_state": {...}}      # fission/snf: of instance time, waiting on Redis

A stage the platform does not run is absent. The functions here are pure: the trial's numbers are the
differences between the snapshots, turned into the result columns of harness.results.COLUMNS.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

STAGES = ("gateway", "instance", "proxy", "remote_state")
# Stages that take core time of their own; remote_state is part of the instance's time.
CORE_STAGES = ("gateway", "instance", "proxy")
# How far (relative) the measured rate may be from a capacity and still be called bounded by it: the VM
# loses 3-4 % of its time to stalls (which also inflate busy intervals that contain them), the search
# settles below saturation to meet its loss goal, so per-packet costs at its lower bound come from batches
# a little smaller than at saturation. 20 % is also the agreement the
# instance-capacity benchmark asks for.
BOTTLENECK_MARGIN = 0.2


def _stage_delta(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[float, float]:
    """(busy_ns, packets) between two snapshots of one stage. A counter that went backwards belongs to a
    restarted process, whose counts started from zero."""
    busy_a, pkts_a = float(after.get("busy_ns", 0)), float(after.get("packets", 0))
    busy_b, pkts_b = float(before.get("busy_ns", 0)), float(before.get("packets", 0))
    if busy_a < busy_b or pkts_a < pkts_b:
        return busy_a, pkts_a
    return busy_a - busy_b, pkts_a - pkts_b


def stage_deltas(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """(busy_ns, packets) of every stage in the ``after`` snapshot; a stage absent before counts from zero."""
    old = before.get("stages") or {}
    return {name: _stage_delta(old.get(name) or {}, stage)
            for name, stage in (after.get("stages") or {}).items() if isinstance(stage, Mapping)}


def _per_packet(delta: tuple[float, float] | None) -> float:
    if delta is None or delta[1] <= 0:
        return math.nan
    return delta[0] / delta[1]


def stage_columns(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, float]:
    """The per-stage result columns of the traffic between two ``stats()`` snapshots: busy ns per packet of
    the gateway, the instances, the proxies and (of instance time) the remote store, NaN where the platform
    has no such stage or it handled no packet; and ``instance_capacity_mpps``, what one instance alone on
    one core would sustain (for a platform without instances, the wire, its forwarder's)."""
    return columns_from_deltas(stage_deltas(before, after))


def sum_deltas(many: Sequence[Mapping[str, Sequence[float]]]) -> dict[str, tuple[float, float]]:
    """The (busy_ns, packets) of several trials together, stage by stage (e.g. every trial at one load)."""
    out: dict[str, tuple[float, float]] = {}
    for deltas in many:
        for name, (busy, packets) in deltas.items():
            b, p = out.get(name, (0.0, 0.0))
            out[name] = (b + float(busy), p + float(packets))
    return out


def columns_from_deltas(deltas: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """:func:`stage_columns` from (busy_ns, packets) per stage, however they were gathered."""
    deltas = {name: (float(d[0]), float(d[1])) for name, d in deltas.items()}
    cols = {f"{name}_ns_per_packet": _per_packet(deltas.get(name)) for name in STAGES}
    single = cols["instance_ns_per_packet"] if "instance" in deltas else cols["gateway_ns_per_packet"]
    cols["instance_capacity_mpps"] = 1e3 / single if single > 0 else math.nan
    return cols


def unit_costs(before: Mapping[str, Any], after: Mapping[str, Any], stage: str = "instance"
               ) -> dict[str, float]:
    """Busy ns per packet of each unit of a stage (each instance, each proxy) running at ``after``, keyed by
    the unit's id. A unit that was not there before (an instance started or replaced between the snapshots)
    counts from zero; one that stopped in between is not listed (the stage's totals still hold its work)."""
    def units(snapshot: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
        s = (snapshot.get("stages") or {}).get(stage) or {}
        return {str(u["id"]): u for u in s.get("units", []) if "id" in u}

    old = units(before)
    return {uid: _per_packet(_stage_delta(old.get(uid, {}), u)) for uid, u in units(after).items()}


def _finite_positive(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


def bottleneck(columns: Mapping[str, Any], *, measured_mpps: float, generator_limited: bool, colocated: bool,
               margin: float = BOTTLENECK_MARGIN) -> str:
    """Which stage bounded ``measured_mpps``: ``generator`` when the generator could not offer the load;
    otherwise the binding capacity is the slowest stage's, 1e3 / its ns per packet — or, when the stages
    share one core (``colocated``), the core's, 1e3 / (gateway + instance + proxy). If the measured rate is
    within ``margin`` of it, name the stage: when the core binds, the single stage whose own capacity is
    also within the margin (it alone would bound the rate), else ``core``. Otherwise ``unclear``: something
    the counters do not see (the link, the generator's receive side, losses from stalls) set the rate, or
    the counters overstate the work."""
    if generator_limited:
        return "generator"
    ns = {s: float(columns[f"{s}_ns_per_packet"]) for s in CORE_STAGES
          if _finite_positive(columns.get(f"{s}_ns_per_packet"))}
    if not ns or not _finite_positive(measured_mpps):
        return "unclear"
    capacity = {s: 1e3 / v for s, v in ns.items()}

    def near(cap: float) -> bool:
        return abs(measured_mpps - cap) <= margin * cap

    if colocated and len(ns) > 1:
        if not near(1e3 / sum(ns.values())):
            return "unclear"
        alone = [s for s in ns if near(capacity[s])]
        return min(alone, key=lambda s: capacity[s]) if alone else "core"
    slowest = min(capacity, key=lambda s: capacity[s])
    return slowest if near(capacity[slowest]) else "unclear"


__all__ = ["BOTTLENECK_MARGIN", "STAGES", "bottleneck", "columns_from_deltas", "stage_columns",
           "stage_deltas", "sum_deltas", "unit_costs"]
