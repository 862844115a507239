"""The measurer and the standard point: "conditional throughput per goal, then latency at a fraction of PDR".

* :class:`Measurer` turns (intended load, duration) into one trial with the standard profile: a load stream
  over ``flows`` 5-tuples plus a ~1 kpps latency stream with per-packet timestamps (DESIGN.md section 6);
  with ``churn`` (the churn flow workload, harness.traffic.churn) part of the load is a stream of new flows
  at ``traffic.churn.new_flows_per_s``, each trial's flows new to the platform.
  Given the platform, it also reads the platform's own counters around the trial (its loop stalls, drops
  and per-stage busy time: ``TrialResult.dut``), so every trial says what the device under test did.
* :func:`measure_point` is what every throughput/latency experiment does for one configuration: one
  MLRsearch pass for the NDR and PDR goals (harness.traffic.search), then a fixed-rate trial at
  ``load_fraction`` × the PDR conditional throughput that gives the latency percentiles and the per-stage
  costs. It returns the point's *record* (JSON-able), and reports every trial through ``on_trial``.
* :func:`point_row` is the pure "process" step: record → one tidy CSV row (columns from
  harness.results.COLUMNS). It is the only place a row's numbers are derived, so a CSV can be rebuilt from
  the trial log.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from harness import stages
from harness.config import Config
from harness.platforms.base import PlatformError
from harness.traffic import profiles
from harness.traffic.base import GeneratorError, TrafficGenerator, TrialResult
from harness.traffic.churn import ChurnFlows
from harness.traffic.search import SearchResult, TrialLog, find_ndr_pdr, search_settings

LATENCY_PG_ID = 0

# The columns point_row fills, after the identity columns every throughput experiment has.
POINT_COLUMNS = [
    "platform", "system", "design", "mechanism", "workload", "frame_size_b", "flows", "flows_workload",
    "new_flows_per_s", "trial", "point_id", "trials_file", "generator", "generator_limited",
    "ndr_mpps", "pdr_mpps", "ndr_gbps", "pdr_gbps",
    "ndr_lower_bound_mpps", "ndr_upper_bound_mpps", "ndr_lower_bad_fraction", "ndr_upper_bad_fraction",
    "ndr_generator_limited",
    "pdr_lower_bound_mpps", "pdr_upper_bound_mpps", "pdr_lower_bad_fraction", "pdr_upper_bad_fraction",
    "pdr_generator_limited",
    "search_trials", "search_time_s", "search_note",
    "load_fraction", "offered_mpps", "tx_mpps", "rx_mpps", "throughput_mpps", "tx_packets", "rx_packets",
    "loss_packets", "loss_ratio", "latency_trial_valid", "generator_skipped_ratio",
    "latency_min_us", "latency_mean_us", "latency_p50_us", "latency_p99_us", "latency_p999_us",
    "latency_max_us", "latency_packets", "latency_histogram",
    "gateway_ns_per_packet", "instance_ns_per_packet", "proxy_ns_per_packet", "remote_state_ns_per_packet",
    "instance_capacity_mpps", "bottleneck", "instance_crashes", "instance_crash_losses",
]
L1_OVERHEAD_B = 20  # preamble + SFD + inter-frame gap: what a frame costs on the wire beyond its bytes


class StatsSource(Protocol):
    def stats(self) -> dict[str, Any]: ...


@dataclass
class Measurer:
    generator: TrafficGenerator
    frame_size: int
    flows: int
    latency_pps: float
    platform: StatsSource | None = None   # when given, its counters are read around every trial
    churn: ChurnFlows | None = None       # the churn workload's flows for this point; None: fixed flows

    def __post_init__(self) -> None:
        # the platform's stats just before and after the last trial (None without a platform)
        self.last_stats: tuple[dict[str, Any], dict[str, Any]] | None = None

    @property
    def flows_workload(self) -> str:
        return "fixed" if self.churn is None else "churn"

    @property
    def new_flows_per_s(self) -> float:
        return 0.0 if self.churn is None else self.churn.new_flows_per_s

    def rates(self, rate_pps: float) -> tuple[float, float, float]:
        """(fixed load, churn, latency) pps adding up to ``rate_pps``, so offered = asked at any rate: the
        churn stream is part of the load, not added to it. At very low rates the latency stream takes at
        most half of ``rate_pps`` and the churn stream at most half of what is left."""
        latency_pps = min(self.latency_pps, rate_pps / 2)
        churn_pps = min(self.new_flows_per_s, (rate_pps - latency_pps) / 2)
        return rate_pps - latency_pps - churn_pps, churn_pps, latency_pps

    def streams(self, rate_pps: float, duration_s: float = 1.0) -> list[Any]:
        """Load (+ churn) + latency streams whose rates add up to ``rate_pps``. With churn, every call takes
        the next ``duration_s`` worth of new flows from :attr:`churn`: call it once per trial."""
        load_pps, churn_pps, latency_pps = self.rates(rate_pps)
        if self.churn is None:
            return profiles.load_with_latency(load_pps, frame_size=self.frame_size, n_flows=self.flows,
                                              latency_pps=latency_pps)
        first, n = self.churn.take(churn_pps, duration_s)
        return profiles.load_with_churn(load_pps, churn_pps, first, n, frame_size=self.frame_size,
                                        n_flows=self.flows, latency_pps=latency_pps)

    def __call__(self, rate_pps: float, duration_s: float) -> TrialResult:
        """One trial. A platform that failed during it (died, lost its state store) raises
        :class:`TrialFault` naming the trial and the cause: a fault never comes back as a result."""
        what = f"the trial at {rate_pps / 1e6:.4g} Mpps for {duration_s:g} s"
        before = self._platform_stats(what, "before") if self.platform is not None else None
        try:
            result = self.generator.run_trial(self.streams(rate_pps, duration_s), duration=duration_s)
        except GeneratorError as exc:
            # the generator fails when its peer goes away: if the platform is the cause, name it
            if self.platform is not None:
                self._platform_stats(what, "during")
            raise TrialFault(f"{what} failed: {exc}") from exc
        if self.platform is not None and before is not None:
            after = self._platform_stats(what, "after")
            self.last_stats = (before, after)
            result.dut = dut_summary(before, after)
        return result

    def _platform_stats(self, what: str, when: str) -> dict[str, Any]:
        assert self.platform is not None
        try:
            return self.platform.stats()
        except PlatformError as exc:
            raise TrialFault(f"{what}: the platform failed ({when} the trial): {exc}") from exc


class TrialFault(PlatformError):
    """A trial saw the platform, its state store or the generator fail; its numbers are not a result."""


def _delta(after: Mapping[str, Any], before: Mapping[str, Any], key: str) -> float | None:
    a, b = after.get(key), before.get(key)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a - b
    return None


def dut_summary(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """What the platform's own counters say about one trial: its loop stalls (count and time in the trial,
    the longest since it started), packets it dropped on transmit, and per-stage busy time per packet."""
    out: dict[str, Any] = {}
    s_after, s_before = after.get("loop_stalls") or {}, before.get("loop_stalls") or {}
    if s_after:
        out["loop_stalls"] = {"count": _delta(s_after, s_before, "count"),
                              "total_ms": _delta(s_after, s_before, "total_ms"),
                              "max_us_since_start": s_after.get("max_us")}
    for key in ("tx_dropped", "rx_packets", "tx_packets"):
        d = _delta(after, before, key)
        if d is not None:
            out[key] = d
    if "sfcs" in after:
        # instances that crashed (and were restarted) in the trial: its losses are theirs, said as such —
        # the packets that found no instance of a crashed SFC while it restarted, and those left in the dead
        # instance's ring (serpensd counts both; together they are the trial's whole loss to the crash)
        prior = {s.get("name"): s for s in before.get("sfcs") or []}
        crashed, lost = 0, 0
        for s in after.get("sfcs") or []:
            b = prior.get(s.get("name"), {})
            n = max(0, (s.get("crashes") or 0) - (b.get("crashes") or 0))
            if n:
                crashed += n
                lost += sum(max(0, (s.get(k) or 0) - (b.get(k) or 0)) for k in ("no_instance", "stranded"))
        out["instance_crashes"] = crashed
        out["instance_crash_losses"] = lost
    deltas = stages.stage_deltas(before, after)
    out["stage_deltas"] = {name: list(d) for name, d in deltas.items()}   # (busy_ns, packets)
    out["stages"] = stages.columns_from_deltas(deltas)
    return out


def costs_at_load(trials: list[TrialLog], load_pps: float | None) -> dict[str, Any]:
    """Per-stage costs over every search trial at one intended load (the PDR's relevant lower bound):
    busy time and packets summed across them, then per packet. Costs per packet fall as batches fill, so
    the capacity that predicts a saturated throughput is read at the load nearest saturation that still
    met the goal, not at the latency trial's 80 % (docs/stages.md)."""
    at = [t for t in trials if load_pps is not None and t.intended_load_pps == load_pps
          and t.result.dut.get("stage_deltas")]
    if not at:
        return {}
    return {"load_pps": load_pps, "trials": len(at),
            **stages.columns_from_deltas(stages.sum_deltas([t.result.dut["stage_deltas"] for t in at]))}


def latency_columns(result: TrialResult) -> dict[str, Any]:
    lat = result.latency.get(LATENCY_PG_ID)
    if lat is None or lat.rx_packets == 0:
        return {}
    return {"latency_min_us": lat.min_ns / 1e3, "latency_mean_us": lat.mean_ns / 1e3,
            "latency_p50_us": lat.p50_ns / 1e3, "latency_p99_us": lat.p99_ns / 1e3,
            "latency_p999_us": lat.p999_ns / 1e3, "latency_max_us": lat.max_ns / 1e3,
            "latency_packets": lat.rx_packets, "latency_histogram": lat.histogram}


def fixed_rate_columns(result: TrialResult) -> dict[str, Any]:
    intended = result.intended_packets or 0
    skipped = result.skipped_stall_packets + result.skipped_slow_packets
    return {"offered_mpps": result.offered_pps / 1e6, "tx_mpps": result.tx_pps / 1e6,
            "rx_mpps": result.rx_pps / 1e6, "throughput_mpps": result.rx_pps / 1e6,
            "tx_packets": result.tx_packets, "rx_packets": result.rx_packets,
            "loss_packets": result.loss_packets, "loss_ratio": result.loss_ratio,
            "generator_skipped_ratio": skipped / intended if intended else math.nan,
            **latency_columns(result)}


# on_trial(phase, index, intended_load_pps, intended_duration_s, result, judgement)
TrialHook = Callable[[str, int, float, float, TrialResult, dict[str, Any]], None]


def _goal_details(search: SearchResult) -> dict[str, Any]:
    return {name: {"loss_ratio": g.goal.loss_ratio, "exceed_ratio": g.goal.exceed_ratio,
                   "relative_width": g.goal.relative_width,
                   "conditional_throughput_pps": g.conditional_throughput_pps,
                   "lower_bound_pps": g.lower_bound_pps, "upper_bound_pps": g.upper_bound_pps,
                   "lower_stats": g.lower_stats, "upper_stats": g.upper_stats,
                   "generator_limited": g.generator_limited, "note": g.note}
            for name, g in search.goals.items()}


def measure_point(measurer: Measurer, config: Config, load_fraction: float | None = None,
                  on_trial: TrialHook | None = None, rate_pps: float | None = None,
                  extra_columns: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]] | None = None,
                  ) -> dict[str, Any]:
    """Search, then the latency trial at ``load_fraction`` × the PDR conditional throughput. With
    ``rate_pps`` the search is skipped and the latency trial runs at ``load_fraction`` × that rate.
    ``extra_columns(before, after)`` adds an experiment's own columns from the platform's stats around the
    latency trial (e.g. per-batch costs). Returns the point record (see :func:`point_row`)."""
    fraction = config["measurement"]["latency_load_fraction"] if load_fraction is None else load_fraction
    settings = search_settings(config)
    pdr_goal = next((g for g in settings.goals if g.name == "pdr"), settings.goals[-1])
    record: dict[str, Any] = {"frame_size_b": measurer.frame_size, "flows": measurer.flows,
                              "flows_workload": measurer.flows_workload,
                              "new_flows_per_s": measurer.new_flows_per_s,
                              "load_fraction": fraction, "pdr_loss_goal": pdr_goal.loss_ratio,
                              "search": None, "goals": None, "latency_trial": None, "extra": {},
                              "colocated": _colocated(config, measurer)}
    n_trials = 0
    crashes = crash_losses = 0

    def forward(log: TrialLog) -> None:
        nonlocal n_trials, crashes, crash_losses
        n_trials += 1
        crashes += int(log.result.dut.get("instance_crashes") or 0)
        crash_losses += int(log.result.dut.get("instance_crash_losses") or 0)
        if on_trial is not None:
            on_trial(log.purpose, log.index, log.intended_load_pps, log.intended_duration_s, log.result,
                     {"mlr_loss_ratio": log.mlr_loss_ratio, "passed": log.passed, "wall_s": log.wall_s})

    if rate_pps is None:
        search = find_ndr_pdr(measurer, settings, on_trial=forward)
        record["search"] = search.to_dict()
        if crashes:   # restarted with state kept, so not a fault; but the bounds carry their losses
            note = (f"instances crashed {crashes} time(s) during the search and were restarted: its bounds "
                    "include the losses of the restarts")
            record["search"]["search_note"] = "; ".join(filter(None, [record["search"]["search_note"], note]))
        record["goals"] = _goal_details(search)
        rate_pps = search.goals[pdr_goal.name].conditional_throughput_pps
        record["stages_at_pdr"] = costs_at_load(search.trials, search.goals[pdr_goal.name].lower_bound_pps)
    if rate_pps and rate_pps > 0:
        duration = config["measurement"]["latency_duration_s"]
        t0 = time.monotonic()
        result = measurer(rate_pps * fraction, duration)
        crashed = int(result.dut.get("instance_crashes") or 0)
        crashes += crashed
        crash_losses += int(result.dut.get("instance_crash_losses") or 0)
        valid = result.loss_ratio <= pdr_goal.loss_ratio and not result.short and not crashed
        record["latency_trial"] = {"intended_load_pps": rate_pps * fraction, **fixed_rate_columns(result),
                                   "short": result.short, "valid": valid,
                                   "stages": result.dut.get("stages", {})}
        if extra_columns is not None and measurer.last_stats is not None:
            record["extra"] = extra_columns(*measurer.last_stats)
        if on_trial is not None:
            on_trial("latency", n_trials, rate_pps * fraction, duration, result,
                     {"valid": valid, "wall_s": time.monotonic() - t0})
    if measurer.churn is not None:
        # the churn flows the point opened (handed out; the generator may have sent a few fewer)
        record["churn"] = {"flows_handed_out": measurer.churn.next, "limit": measurer.churn.limit,
                           "limited_by": measurer.churn.limited_by}
    if measurer.platform is not None:
        record["instance_crashes"] = crashes
        record["instance_crash_losses"] = crash_losses
    # asked last: a generator may only know its version once it has run (the built-in one reports it)
    record["generator"] = measurer.generator.version()
    return record


def _colocated(config: Config, measurer: Measurer) -> bool:
    """Whether the platform's stages share one core (serpens colocate; the wire is one loop anyway)."""
    kind = getattr(measurer.platform, "name", "")
    if kind == "wire":
        return True
    return bool(config.get("platforms", {}).get("serpens", {}).get("colocate", True))


def point_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """The process step: a point record → its CSV row. Pure; unit-tested."""
    row: dict[str, Any] = {k: record[k] for k in ("platform", "system", "design", "mechanism", "workload",
                                                   "frame_size_b", "flows", "flows_workload",
                                                   "new_flows_per_s", "trial", "point_id", "trials_file",
                                                   "generator", "load_fraction")
                           if k in record}
    for k, v in (record.get("identity") or {}).items():
        row[k] = v
    limited = False
    search = record.get("search")
    if search:
        row.update({k: v for k, v in search.items() if k in POINT_COLUMNS})
        wire_bits = (record["frame_size_b"] + L1_OVERHEAD_B) * 8
        for goal in ("ndr", "pdr"):
            mpps = search.get(f"{goal}_mpps")
            if mpps is not None:
                row[f"{goal}_gbps"] = mpps * 1e6 * wire_bits / 1e9
            limited = limited or bool(search.get(f"{goal}_generator_limited"))
    lat = record.get("latency_trial")
    if lat:
        row.update({k: v for k, v in lat.items() if k in POINT_COLUMNS})
        row["latency_trial_valid"] = bool(lat.get("valid"))
        limited = limited or bool(lat.get("short"))
    # the stage costs: at the PDR's lower bound when the search ran there (what predicts saturation),
    # else over the latency trial
    cols = dict(record.get("stages_at_pdr") or (lat or {}).get("stages") or {})
    row.update({k: v for k, v in cols.items() if k in POINT_COLUMNS})
    if cols and (search or lat):
        measured = (search or {}).get("pdr_mpps") or (lat or {}).get("rx_mpps") or 0.0
        row["bottleneck"] = stages.bottleneck(
            cols, measured_mpps=measured, generator_limited=limited,
            colocated=bool(record.get("colocated", True)))
    row["generator_limited"] = limited
    if record.get("instance_crashes") is not None:
        row["instance_crashes"] = record["instance_crashes"]
        row["instance_crash_losses"] = record.get("instance_crash_losses", 0)
    row.update(record.get("extra") or {})
    return row
