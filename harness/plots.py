"""Plot helpers. Plots are made only from result CSVs (never from in-memory numbers), so every figure can be
regenerated from what is on disk. Repetitions are shown as median bars with min–max whiskers."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and in CI

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

MEDIAN_MINMAX = {"estimator": "median", "errorbar": ("pi", 100)}


def save(fig: plt.Figure, path: Path, source: str) -> None:
    """Write the figure with a note of the CSV it was drawn from."""
    fig.text(0.99, 0.005, f"data: {source}", ha="right", va="bottom", fontsize=6, color="0.4")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def churn_label(name: str) -> str:
    """How a plot names ``name`` (a workload or platform) measured with the churn flow workload."""
    return f"{name}\n+churn"


def with_flows_workload(df: pd.DataFrame, column: str = "workload") -> pd.Series:
    """``column`` with the churn rows relabelled (:func:`churn_label`), so a plot never pools the two flow
    workloads; rows of CSVs written before there was a flows_workload column are the fixed workload."""
    if "flows_workload" not in df:
        return df[column]
    is_churn = df["flows_workload"].fillna("fixed") == "churn"
    return df[column].where(~is_churn, df[column].map(churn_label))


def limit_figure(df: pd.DataFrame, path: Path) -> None:
    """(a) NDR and PDR per frame size, (b) latency p50/p99 at the measured load fraction."""
    sns.set_theme(style="whitegrid", context="paper")
    fig, (ax_t, ax_l) = plt.subplots(1, 2, figsize=(8, 3.2))
    tput = df.melt(id_vars=["frame_size_b"], value_vars=["ndr_mpps", "pdr_mpps"], var_name="rate",
                   value_name="Mpps")
    tput["rate"] = tput["rate"].map({"ndr_mpps": "NDR (≤0.001 %)", "pdr_mpps": "PDR (≤0.1 %)"})
    sns.barplot(data=tput, x="frame_size_b", y="Mpps", hue="rate", ax=ax_t, **MEDIAN_MINMAX)
    ax_t.set_xlabel("frame size (B)")
    ax_t.set_ylabel("throughput (Mpps)")
    ax_t.set_title("(a) wire throughput")
    lat_cols = [c for c in ("latency_p50_us", "latency_p99_us") if c in df and df[c].notna().any()]
    if lat_cols:
        lat = df.melt(id_vars=["frame_size_b"], value_vars=lat_cols, var_name="percentile", value_name="µs")
        lat["percentile"] = lat["percentile"].map({"latency_p50_us": "p50", "latency_p99_us": "p99"})
        sns.barplot(data=lat, x="frame_size_b", y="µs", hue="percentile", ax=ax_l, **MEDIAN_MINMAX)
    fraction = df["load_fraction"].dropna()
    at = f" at {fraction.iloc[0]:.0%} of PDR" if len(fraction) else ""
    ax_l.set_yscale("log")  # p50 and p99 can be orders of magnitude apart on a VM
    ax_l.set_xlabel("frame size (B)")
    ax_l.set_ylabel("latency (µs)")
    ax_l.set_title(f"(b) wire latency{at}")
    save(fig, path, "results/limit.csv")
