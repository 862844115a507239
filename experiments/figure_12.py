"""`make figure-12` — state management on its own (paper Sec. V-B, Fig. 12): FW, MON, NAT, IDS and VPN, each
alone as a one-NF SFC, with the state in Redis for every table (Fission's), in Redis for global tables only
(SNF's), or in the local State Manager (Serpens): (a) throughput (NDR/PDR), (b) latency at 80 % of the PDR.

The grid is the state variants of the design registry (harness/platforms/designs.py: ``fission-state``,
``snf-state``, each Serpens with only the state axis changed) and ``serpens``: the same serpensd, runtime,
Chainer, router, cores and generator; only the state axis differs (docs/state-backends.md), and the variants
start and stop their own redis-server (harness/redis_server.py). Rows carry ``system`` (fission, snf,
serpens), ``design`` and ``mechanism`` (the state value: remote, snf, serpens).
Each point is one MLRsearch pass (NDR and PDR
goals) and a latency trial, repeated ``measurement.repetitions`` times, interleaved across platforms
(experiments/throughput.py). Each row also
carries what one batch cost during the latency trial, from the instances' counters
(harness.serpens.batch_costs): processing time, remote state access time, packets per batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from experiments.throughput import Point, ThroughputExperiment
from harness import plots
from harness.platforms import designs
from harness.serpens.batch_costs import batch_costs
from harness.traffic import churn
from harness.traffic.measure import POINT_COLUMNS

NFS = ("fw", "mon", "nat", "ids", "vpn")      # the paper's order
# NFs also measured with flows that keep arriving (traffic.flows_workloads): NAT allocates from its global
# pool only for a new flow, so with the fixed flows SNF's remote pool is idle after the first batches
CHURN_NFS = ("nat",)
LABELS = {"fission-state": "Fission (remote)", "snf-state": "SNF (global remote)",
          "serpens": "Serpens (local)"}
FRAME_SIZE_B = 64


COST_COLUMNS = ["processing_us", "state_access_us", "batch_packets"]


class Figure12(ThroughputExperiment):
    name = "figure-12"
    title = "NFs under three state-management designs (paper Fig. 12)"
    columns = POINT_COLUMNS + COST_COLUMNS
    axis = "state"

    def cores(self) -> dict[str, object]:
        c = self.config["cores"]
        redis = self.config["redis"]["core"]
        return {"generator": c["generator"], "platform_data_plane": c["platform"],
                "redis": f"pinned to core {c['platform'] if redis is None else redis} (loopback TCP; the "
                         "paper co-locates it with the NFs)"}

    def grid(self) -> list[str]:
        """Every registered state variant (the paper's order), then Serpens."""
        return state_designs()

    def points(self) -> list[Point]:
        chosen = churn.workloads(self.config)
        return [Point(name, nf, FRAME_SIZE_B, sfc=nf, flows_workload=w) for nf in NFS
                for w in (chosen if nf in CHURN_NFS else ("fixed",)) for name in self.grid()]

    def extra_columns(self, point: Point, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
        return batch_costs(before, after)

    def plot(self, df: pd.DataFrame, path: Path) -> None:
        figure_12_figure(df, path)


def state_designs() -> list[str]:
    return [*designs.variants("state"), "serpens"]


def instance_us_per_packet(df: pd.DataFrame) -> pd.Series:
    """An instance's own time per packet in the latency trial: (processing + remote state access) per batch
    over packets per batch (one NF per SFC, so one remote access per batch). What one instance would
    sustain if nothing else limited it is its inverse: the ratio the paper's testbed measures, free of this
    machine's generator and gateway ceiling."""
    remote = df["state_access_us"].fillna(0.0) if "state_access_us" in df else 0.0
    return (df["processing_us"] + remote) / df["batch_packets"]


def figure_12_figure(df: pd.DataFrame, path: Path) -> None:
    """(a) NDR, (b) mean latency at the load fraction, (c) instance time per packet — grouped bars per NF."""
    sns.set_theme(style="whitegrid", context="paper")
    has_costs = {"processing_us", "batch_packets"} <= set(df.columns) and df["processing_us"].notna().any()
    fig, axes = plt.subplots(1, 3 if has_costs else 2, figsize=(13 if has_costs else 9, 3.2))
    ax_t, ax_l = axes[0], axes[1]
    order = [p for p in state_designs() if p in set(df["platform"])]
    order += sorted(set(df["platform"]) - set(order))
    d = df.copy()
    d["state"] = d["platform"].map(lambda p: LABELS.get(p, p))
    hue_order = [LABELS.get(p, p) for p in order]
    d["workload"] = plots.with_flows_workload(d)
    wl = [x for w in NFS for x in (w, plots.churn_label(w)) if x in set(d["workload"])]
    sns.barplot(data=d, x="workload", y="ndr_mpps", hue="state", order=wl, hue_order=hue_order, ax=ax_t,
                **plots.MEDIAN_MINMAX)
    ax_t.set_yscale("log")
    ax_t.set_xlabel("")
    ax_t.set_ylabel("NDR (Mpps)")
    ax_t.set_title("(a) throughput")
    if "latency_mean_us" in d and d["latency_mean_us"].notna().any():
        sns.barplot(data=d, x="workload", y="latency_mean_us", hue="state", order=wl, hue_order=hue_order,
                    ax=ax_l, **plots.MEDIAN_MINMAX)
    fraction = d["load_fraction"].dropna()
    at = f" at {fraction.iloc[0]:.0%} of PDR" if len(fraction) else ""
    ax_l.set_yscale("log")
    ax_l.set_xlabel("")
    ax_l.set_ylabel("mean latency (µs)")
    ax_l.set_title(f"(b) latency{at}")
    if has_costs:
        ax_c = axes[2]
        d["us_per_packet"] = instance_us_per_packet(d)
        sns.barplot(data=d, x="workload", y="us_per_packet", hue="state", order=wl, hue_order=hue_order,
                    ax=ax_c, **plots.MEDIAN_MINMAX)
        ax_c.set_yscale("log")
        ax_c.set_xlabel("")
        ax_c.set_ylabel("instance time per packet (µs)")
        ax_c.set_title(f"(c) processing + remote state{at}")
    # one legend for the three panels, above them, so that no bar hides behind it
    handles, labels = ax_t.get_legend_handles_labels()
    for ax in axes:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.93))
    fig.subplots_adjust(top=0.8)
    plots.save(fig, path, "results/figure-12.csv")
