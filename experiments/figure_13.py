"""`make figure-13` — service chaining on its own (paper Sec. V-C, Fig. 13): a chain of Firewalls of growing
length (``figure13.lengths``: 1, 2, 3, 4 and 6), each on Fission's chaining (a global proxy between every two
NFs), SAND's (a local proxy per server) and Serpens' (the whole SFC in one instance, function calls):
(a) conditional throughput (NDR/PDR) and (b) mean and p50 latency at ``measurement.latency_load_fraction`` of
the PDR (the paper: 80 %), against the chain length.

The grid is the chaining variants of the design registry (harness/platforms/designs.py:
``fission-chaining``, ``sand-chaining``, each Serpens with only the chaining axis changed) and ``serpens``:
the same NF code, state (the local State Manager), startup, batch size, cores and generator. The paper
compares chaining approaches, not whole systems ("we compare it with available service chaining approaches
in existing FaaS platforms"), so the variants, not the full ``fission`` and ``sand`` designs, are measured.
"We place all NFs of an SFC at the same CPU core to ensure equal resource consumption": every instance and
proxy shares the platform core with serpensd (``platforms.serpens.colocate``, which this experiment
requires), recorded in the sidecar (:meth:`Figure13.cores`).

A chain of N FWs is ``SfcSpec.linear("fw,fw,...")``: N distinct deployments (fw1 … fwN), each an FW with its
own tables, as "we chain multiple Firewalls" reads; every FW passes every packet (empty blacklist), so each
hop carries the whole load. Rows carry ``chain_length``, ``system`` (fission, sand, serpens), ``design`` and
``mechanism`` (global-proxy, local-proxy, consolidated). Each point is one MLRsearch pass and a latency
trial, repeated and interleaved across designs and lengths (experiments/throughput.py).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from experiments.throughput import Point, ThroughputExperiment
from harness import plots
from harness.platforms import designs

NF = "fw"
FRAME_SIZE_B = 64
LABELS = {"fission-chaining": "Fission (global proxy)", "sand-chaining": "SAND (local proxy)",
          "serpens": "Serpens (one instance)"}


def chaining_designs() -> list[str]:
    """Every registered chaining variant (the paper's order: Fission, SAND), then Serpens."""
    return [*designs.variants("chaining"), "serpens"]


def chain(length: int) -> str:
    """The SFC text of a chain of ``length`` FWs (SfcSpec.linear numbers them fw1, fw2, ...)."""
    return ",".join([NF] * length)


class Figure13(ThroughputExperiment):
    name = "figure-13"
    title = "Chains of Firewalls under three service-chaining approaches (paper Fig. 13)"
    columns = [*ThroughputExperiment.columns, "chain_length"]
    axis = "chaining"

    def lengths(self) -> list[int]:
        lengths = list(self.config["figure13"]["lengths"])
        if not lengths or any(n < 1 for n in lengths):
            raise RuntimeError(f"figure13.lengths must be chain lengths of 1 or more, got {lengths}")
        return lengths

    def cores(self) -> dict[str, object]:
        c = self.config["cores"]
        if not self.config["platforms"]["serpens"]["colocate"]:
            raise RuntimeError("figure-13 places all NFs of an SFC on one core (the paper's setup): it needs "
                               "platforms.serpens.colocate: true")
        return {"generator": c["generator"], "platform_data_plane": c["platform"],
                "nfs_of_an_sfc": f"all on core {c['platform']}: every instance and proxy shares it with "
                                 "serpensd (colocate; the paper: 'we place all NFs of an SFC at the same CPU "
                                 "core')"}

    def grid(self) -> list[str]:
        return chaining_designs()

    def points(self) -> list[Point]:
        return [Point(name, chain(n), FRAME_SIZE_B, sfc=chain(n), identity=(("chain_length", n),))
                for n in self.lengths() for name in self.grid()]

    def plot(self, df: pd.DataFrame, path: Path) -> None:
        figure_13_figure(df, path)


def figure_13_figure(df: pd.DataFrame, path: Path) -> None:
    """(a) NDR against chain length, one line per design; (b) mean (solid) and p50 (dashed) latency."""
    sns.set_theme(style="whitegrid", context="paper")
    fig, (ax_t, ax_l) = plt.subplots(1, 2, figsize=(9, 3.4))
    order = [d for d in chaining_designs() if d in set(df["platform"])]
    order += sorted(set(df["platform"]) - set(order))
    for i, name in enumerate(order):
        g = df[df["platform"] == name].groupby("chain_length")
        color = f"C{i}"
        label = LABELS.get(name, name)
        ndr = g["ndr_mpps"].median()
        ax_t.plot(ndr.index, ndr.values, marker="o", color=color, label=label)
        lo, hi = g["ndr_mpps"].min(), g["ndr_mpps"].max()
        ax_t.fill_between(ndr.index, lo.values, hi.values, color=color, alpha=0.15, lw=0)
        for col, ls, what in (("latency_mean_us", "-", "mean"), ("latency_p50_us", "--", "p50")):
            if col in df and df[col].notna().any():
                lat = g[col].median()
                ax_l.plot(lat.index, lat.values, ls=ls, marker="o", color=color, label=f"{label}, {what}")
    lengths = sorted(set(df["chain_length"].dropna().astype(int)))
    for ax in (ax_t, ax_l):
        ax.set_xticks(lengths)
        ax.set_xlabel("chain length (FWs)")
    ax_t.set_ylabel("NDR (Mpps)")
    ax_t.set_title("(a) throughput")
    ax_t.legend(fontsize=7)
    fraction = df["load_fraction"].dropna()
    at = f" at {fraction.iloc[0]:.0%} of PDR" if len(fraction) else ""
    ax_l.set_yscale("log")
    ax_l.set_ylabel("latency (µs)")
    ax_l.set_title(f"(b) latency{at}")
    if ax_l.get_legend_handles_labels()[0]:
        ax_l.legend(fontsize=6)
    plots.save(fig, path, "results/figure-13.csv")
