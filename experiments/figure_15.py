"""`make figure-15` — end-to-end performance of the SFC FW→MON→NAT on each FaaS platform (paper Sec. V-E,
Fig. 15): (a) throughput, (b) average latency at 80 % of the maximum throughput.

Every full system of the design registry (harness/platforms/designs.py ``FULL_SYSTEMS``: Fission, SNF, SAND,
Serpens, in the paper's order; each its own value on all four axes of DESIGN.md section 3, docs/baselines.md)
is measured with the same SFC spec, NF objects, default NF arguments, cores, frame size and generator. The
single-axis variants (``fission-state``, ``sand-chaining``, ...) are not systems and are not in this grid.
Each point is one MLRsearch pass (NDR and PDR goals) and a latency trial at
``measurement.latency_load_fraction`` of the PDR, repeated ``measurement.repetitions`` times, interleaved
across platforms (experiments/throughput.py, as `make limit`).
The wire (no NFs) is measured too, as the ceiling of this machine: a reference row (workload "forward")
that the claims never select.

The plot is made from results/figure-15.csv only (its function is here, :func:`figure_15_figure`).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from experiments.throughput import Point, ThroughputExperiment
from harness import plots
from harness.platforms import designs
from harness.traffic import churn

SFC = "fw,mon,nat"            # the paper's SFC: Firewall → Monitor → NAT; also the rows' workload
FRAME_SIZE_B = 64             # the paper's packet size for its throughput figures
REFERENCE = "wire"            # the machine's ceiling, measured alongside
# The paper's order of Fig. 15; full systems registered later and not listed here are appended.
PAPER_ORDER = ("fission", "snf", "sand", "serpens")
LABELS = {"fission": "Fission", "snf": "SNF", "sand": "SAND", "serpens": "Serpens", "wire": "wire"}


def systems() -> list[str]:
    """The designs of the grid: every registered full system, in the paper's order."""
    available = designs.FULL_SYSTEMS
    return [p for p in PAPER_ORDER if p in available] + [p for p in available if p not in PAPER_ORDER]


class Figure15(ThroughputExperiment):
    name = "figure-15"
    title = "End-to-end performance of the SFC FW→MON→NAT (paper Fig. 15)"

    def cores(self) -> dict[str, object]:
        c = self.config["cores"]
        serpens = self.config["platforms"]["serpens"]
        redis = self.config["redis"]["core"]
        return {"generator": c["generator"], "platform_data_plane": c["platform"],
                "instances_and_proxies": (f"share core {c['platform']} with serpensd (colocate)"
                                          if serpens["colocate"] else "own cores"),
                "redis": f"pinned to core {c['platform'] if redis is None else redis} (designs whose state "
                         "is remote or snf; loopback TCP, co-located with the NFs as in the paper)"}

    @property
    def servers(self) -> int:
        return int(self.config["platforms"]["serpens"]["servers"])

    # Across servers the rows go to their own files (figure-15-servers2.csv, ...): results/figure-15.csv is
    # the one-server grid the claims check, and a two-server run must not replace it.
    @property
    def csv_path(self) -> Path:
        base = super().csv_path
        return base if self.servers == 1 else base.with_name(f"{self.name}-servers{self.servers}.csv")

    @property
    def figure_path(self) -> Path:
        base = super().figure_path
        return base if self.servers == 1 else base.with_name(f"{self.name}-servers{self.servers}.png")

    def grid(self) -> list[str]:
        # across servers (platforms.serpens.servers > 1, docs/multiserver.md) only Serpens' own design
        # runs: the others chain per NF or keep state in Redis, which the server link does not carry
        if self.servers > 1:
            return [REFERENCE, "serpens"]
        return [REFERENCE, *systems()]

    def points(self) -> list[Point]:
        # every flow workload for the SFC (its NAT allocates from a global pool for each new flow); the
        # wire, which keeps no state, with the fixed flows only
        chosen = churn.workloads(self.config)
        return [Point(name, "forward", FRAME_SIZE_B) if name == REFERENCE
                else Point(name, SFC, FRAME_SIZE_B, sfc=SFC, flows_workload=w)
                for w in chosen for name in self.grid() if name != REFERENCE or w == chosen[0]]

    def plot(self, df: pd.DataFrame, path: Path) -> None:
        figure_15_figure(df, path)


def figure_15_figure(df: pd.DataFrame, path: Path) -> None:
    """(a) NDR/PDR per platform, (b) mean and p99 latency per platform at the measured load; the wire's
    NDR, PDR and mean latency (the machine's ceiling) as reference lines."""
    sns.set_theme(style="whitegrid", context="paper")
    fig, (ax_t, ax_l) = plt.subplots(1, 2, figsize=(8, 3.2))
    sfc = df[df["platform"] != REFERENCE].copy()
    ref = df[df["platform"] == REFERENCE]
    order = [p for p in [*PAPER_ORDER, *sorted(set(sfc["platform"]) - set(PAPER_ORDER))]
             if p in set(sfc["platform"])]
    workload = sfc["workload"].iloc[0] if len(sfc) else SFC
    # one bar group per platform and flow workload (the churn rows labelled apart, never pooled)
    sfc["platform"] = sfc["platform"].map(lambda p: LABELS.get(p, p))
    sfc["platform"] = plots.with_flows_workload(sfc, "platform")
    names = [x for p in order for x in (LABELS.get(p, p), plots.churn_label(LABELS.get(p, p)))
             if x in set(sfc["platform"])]

    if len(sfc):
        tput = sfc.melt(id_vars=["platform"], value_vars=["ndr_mpps", "pdr_mpps"], var_name="rate",
                        value_name="Mpps")
        tput["rate"] = tput["rate"].map({"ndr_mpps": "NDR (≤0.001 %)", "pdr_mpps": "PDR (≤0.1 %)"})
        sns.barplot(data=tput, x="platform", y="Mpps", hue="rate", order=names, ax=ax_t,
                    **plots.MEDIAN_MINMAX)
    for col, ls, what in (("ndr_mpps", "--", "NDR"), ("pdr_mpps", ":", "PDR")):
        if len(ref) and ref[col].notna().any():
            ax_t.axhline(ref[col].median(), ls=ls, color="0.3", lw=1,
                         label=f"wire {what} {ref[col].median():.2f} Mpps")
    ax_t.set_yscale("log")  # baselines are expected one to two orders of magnitude below Serpens
    ax_t.set_xlabel("")
    ax_t.set_ylabel("throughput (Mpps)")
    ax_t.set_title(f"(a) throughput, SFC {workload.upper().replace(',', '→')}")
    ax_t.legend(fontsize=7)

    lat_cols = [c for c in ("latency_mean_us", "latency_p99_us") if c in df and sfc[c].notna().any()]
    if lat_cols:
        lat = sfc.melt(id_vars=["platform"], value_vars=lat_cols, var_name="statistic", value_name="µs")
        lat["statistic"] = lat["statistic"].map({"latency_mean_us": "mean", "latency_p99_us": "p99"})
        sns.barplot(data=lat, x="platform", y="µs", hue="statistic", order=names, ax=ax_l,
                    **plots.MEDIAN_MINMAX)
    if len(ref) and "latency_mean_us" in ref and ref["latency_mean_us"].notna().any():
        ax_l.axhline(ref["latency_mean_us"].median(), ls="--", color="0.3", lw=1,
                     label=f"wire mean {ref['latency_mean_us'].median():.1f} µs")
    fraction = sfc["load_fraction"].dropna() if len(sfc) else df["load_fraction"].dropna()
    at = f" at {fraction.iloc[0]:.0%} of PDR" if len(fraction) else ""
    ax_l.set_yscale("log")
    ax_l.set_xlabel("")
    ax_l.set_ylabel("latency (µs)")
    ax_l.set_title(f"(b) latency{at}")
    if ax_l.get_legend_handles_labels()[0]:
        ax_l.legend(fontsize=7)
    plots.save(fig, path, "results/figure-15.csv")
