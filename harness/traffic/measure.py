"""The measurer and the standard point: "NDR/PDR, then latency at a fraction of the PDR".

* :class:`Measurer` turns (offered rate, duration) into one trial with the standard profile: a load stream
  over ``flows`` 5-tuples plus a ~1 kpps latency stream with per-packet timestamps (DESIGN.md section 6).
* :func:`measure_point` is what every throughput/latency experiment does for one configuration: one
  NDR/PDR search pass (harness.traffic.search), then a fixed-rate trial at ``load_fraction`` × PDR that gives
  the latency percentiles. It returns one tidy row (columns from harness.results.COLUMNS).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.config import Config
from harness.traffic import profiles
from harness.traffic.base import TrafficGenerator, TrialResult
from harness.traffic.search import SearchConfig, SearchResult, TrialLog, find_ndr_pdr

LATENCY_PG_ID = 0

# The columns measure_point fills, after the identity columns every throughput experiment has.
POINT_COLUMNS = ["platform", "workload", "frame_size_b", "flows", "trial", "generator", "generator_limited",
                 "ndr_mpps", "pdr_mpps", "ndr_gbps", "pdr_gbps", "search_trials", "load_fraction",
                 "offered_mpps", "tx_mpps", "rx_mpps", "throughput_mpps", "tx_packets", "rx_packets",
                 "loss_packets", "loss_ratio", "latency_min_us", "latency_mean_us", "latency_p50_us",
                 "latency_p99_us", "latency_p999_us", "latency_max_us", "latency_packets",
                 "latency_histogram"]
L1_OVERHEAD_B = 20  # preamble + SFD + inter-frame gap: what a frame costs on the wire beyond its bytes


@dataclass
class Measurer:
    generator: TrafficGenerator
    frame_size: int
    flows: int
    latency_pps: float

    def streams(self, rate_pps: float) -> list[Any]:
        """Load + latency streams whose rates add up to ``rate_pps`` (so offered = asked, at any rate);
        at very low rates the latency stream takes at most half of it."""
        latency_pps = min(self.latency_pps, rate_pps / 2)
        return profiles.load_with_latency(rate_pps - latency_pps, frame_size=self.frame_size,
                                          n_flows=self.flows, latency_pps=latency_pps)

    def __call__(self, rate_pps: float, duration_s: float) -> TrialResult:
        return self.generator.run_trial(self.streams(rate_pps), duration=duration_s)


def search_config(config: Config) -> SearchConfig:
    s = config["search"]
    return SearchConfig(ndr_loss=s["ndr_loss"], pdr_loss=s["pdr_loss"],
                        min_rate_pps=s["min_rate_mpps"] * 1e6, max_rate_pps=s["max_rate_mpps"] * 1e6,
                        resolution=s["resolution"], trial_s=s["trial_s"], final_s=s["final_s"],
                        max_validation_retries=s["max_validation_retries"])


def latency_columns(result: TrialResult) -> dict[str, Any]:
    lat = result.latency.get(LATENCY_PG_ID)
    if lat is None or lat.rx_packets == 0:
        return {}
    return {"latency_min_us": lat.min_ns / 1e3, "latency_mean_us": lat.mean_ns / 1e3,
            "latency_p50_us": lat.p50_ns / 1e3, "latency_p99_us": lat.p99_ns / 1e3,
            "latency_p999_us": lat.p999_ns / 1e3, "latency_max_us": lat.max_ns / 1e3,
            "latency_packets": lat.rx_packets, "latency_histogram": lat.histogram}


def fixed_rate_columns(result: TrialResult) -> dict[str, Any]:
    return {"offered_mpps": result.offered_pps / 1e6, "tx_mpps": result.tx_pps / 1e6,
            "rx_mpps": result.rx_pps / 1e6, "throughput_mpps": result.rx_pps / 1e6,
            "tx_packets": result.tx_packets, "rx_packets": result.rx_packets,
            "loss_packets": result.loss_packets, "loss_ratio": result.loss_ratio,
            **latency_columns(result)}


def measure_point(measurer: Measurer, config: Config, load_fraction: float | None = None,
                  on_trial: Callable[[TrialLog], None] | None = None,
                  rate_pps: float | None = None) -> tuple[dict[str, Any], SearchResult | None]:
    """NDR/PDR search, then latency at ``load_fraction`` × PDR. With ``rate_pps`` the search is skipped and
    the fixed-rate trial runs at ``load_fraction`` × that rate."""
    fraction = config["measurement"]["latency_load_fraction"] if load_fraction is None else load_fraction
    row: dict[str, Any] = {"frame_size_b": measurer.frame_size, "flows": measurer.flows,
                           "load_fraction": fraction}
    search: SearchResult | None = None
    if rate_pps is None:
        search = find_ndr_pdr(measurer, search_config(config), on_trial=on_trial)
        wire_bits = (measurer.frame_size + L1_OVERHEAD_B) * 8
        row.update({"ndr_mpps": search.ndr.rate_pps / 1e6, "pdr_mpps": search.pdr.rate_pps / 1e6,
                    "ndr_gbps": search.ndr.rate_pps * wire_bits / 1e9,
                    "pdr_gbps": search.pdr.rate_pps * wire_bits / 1e9,
                    "generator_limited": search.generator_limited, "search_trials": len(search.trials)})
        rate_pps = search.pdr.rate_pps
    if rate_pps and rate_pps > 0:
        result = measurer(rate_pps * fraction, config["measurement"]["latency_duration_s"])
        row.update(fixed_rate_columns(result))
        if result.short:
            row["generator_limited"] = True
    # asked last: a generator may only know its version once it has run (the built-in one reports it)
    row["generator"] = measurer.generator.version()
    return row, search
