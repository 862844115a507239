"""`make table-2` — what general FaaS mechanisms cost one FW on this machine (paper Sec. II-B, Table II):
packet processing per batch, instance startup, remote state access per batch, packet delivery.

* **Processing** (``processing_us``): FW as a one-NF SFC on Serpens (state in the State Manager) at a fixed
  rate of ``table2.rate_mpps``; the time from a batch's dequeue to its last NF, per batch, from the
  instances' own counters (harness.serpens.batch_costs), with the mean batch size next to it.
* **Remote state access** (``state_access_us``): the same FW, same rate, with every table in Redis (the
  ``fission-state`` design: Serpens with Fission's state): the pipelined Redis round trips of one batch
  (prefetch + write-back).
* **Startup** (``startup_us``): Catalyzer's approach as this harness has it, the ``snapshot`` method of
  serpens-startbench (docs/startup.md: fork+exec, EAL init, the NF's post-relocation image mapped from a
  file), median of ``table2.startup_reps`` starts.
* **Delivery** (``delivery_us``): two FWs chained through SAND's local proxy (the ``sand-chaining`` design:
  one process per NF, a proxy process between them, docs/chaining.md) at ``table2.delivery_rate_mpps``;
  the time from FW1 handing a batch over (its enqueue) to FW2 starting it (its dequeue), per batch, stamped
  by the instances themselves (harness.serpens.batch_costs). Cross-check: the same two FWs chained by
  Serpens (one instance) at the same rate; the difference of their mean end-to-end latencies
  (``latency_diff_us``, on the delivery row) covers every proxy hop of the chain (gateway → proxy → FW1 →
  proxy → FW2 → proxy → out against gateway → instance → out), so it should be at least ``delivery_us``.

One row per mechanism: ``system`` names whose mechanism it is, ``design`` the registry design that ran it
(none for the startbench's row), ``mechanism`` the mechanism (the state value, or the startup method); the
sec2-* claims divide them.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from experiments.base import Experiment
from experiments.startup import identity as startup_identity
from experiments.startup import run_startbench
from harness import plots
from harness.platforms import designs
from harness.results import ResultWriter
from harness.rig import rig
from harness.serpens.batch_costs import batch_costs
from harness.serpens.sfc import SfcSpec
from harness.traffic.measure import Measurer, fixed_rate_columns

NF = "fw"                     # the paper's example NF of Table II
FRAME_SIZE_B = 64
ROWS = {"processing_us": "packet processing (Serpens, local state)",
        "startup_us": "instance startup (snapshot, Catalyzer-like)",
        "state_access_us": "remote state access (Fission, Redis)",
        "delivery_us": "packet delivery (local proxy)"}


class Table2(Experiment):
    name = "table-2"
    title = "Costs of general FaaS mechanisms for one FW (paper Table II)"
    columns = ["platform", "system", "design", "mechanism", "workload", "frame_size_b", "flows", "trial",
               "offered_mpps", "throughput_mpps",
               "loss_packets", "batch_packets", "processing_us", "state_access_us", "startup_us",
               "delivery_us", "delivery_batches", "latency_mean_us", "latency_diff_us", "n_samples"]

    def cores(self) -> dict[str, object]:
        c = self.config["cores"]
        redis = self.config["redis"]["core"]
        return {"generator": c["generator"], "platform_data_plane": c["platform"],
                "redis": f"pinned to core {c['platform'] if redis is None else redis} (loopback TCP)"}

    def measure(self, writer: ResultWriter) -> None:
        t, traffic = self.config["table2"], self.config["traffic"]
        rate = t["rate_mpps"] * 1e6
        for platform, metric in (("serpens", "processing_us"), ("fission-state", "state_access_us")):
            with rig(self.config, platform, sfc=SfcSpec.linear(NF)) as r:
                writer.note(f"rig_{platform}", r.describe())
                m = Measurer(r.generator, FRAME_SIZE_B, traffic["flows"], traffic["latency_pps"],
                             platform=r.platform)
                for trial in self.repetitions():
                    result = m(rate, t["duration_s"])
                    assert m.last_stats is not None   # a Measurer given the platform keeps them
                    costs = batch_costs(*m.last_stats)
                    cols = fixed_rate_columns(result)
                    row: dict[str, Any] = {
                        "platform": platform, **designs.row_identity(platform, "state"), "workload": NF,
                        "frame_size_b": FRAME_SIZE_B,
                        "flows": traffic["flows"], "trial": trial, "offered_mpps": cols["offered_mpps"],
                        "throughput_mpps": cols["throughput_mpps"], "loss_packets": cols["loss_packets"],
                        "batch_packets": costs["batch_packets"], metric: costs[metric]}
                    # the other cost of the same run goes to the sidecar: a claim reads one row per metric
                    writer.note(f"{platform}_trial{trial}_costs", costs)
                    writer.write(row)
                    self.progress.say(f"{ROWS[metric]}: {costs[metric]:.2f} µs per batch of "
                                      f"{costs['batch_packets']:.1f} packets at {t['rate_mpps']} Mpps "
                                      f"({cols['loss_packets']} lost)")
        self.measure_delivery(writer)
        samples = self.csv_path.with_name(f"{self.name}-samples.jsonl")
        samples.unlink(missing_ok=True)
        got = run_startbench(self.config, ["--methods", "snapshot", "--instances", "1", "--reps",
                                           str(t["startup_reps"]), "--slow-reps", str(t["startup_reps"]),
                                           "--pool", "1", "--placement", "any"], samples, self.progress,
                             self.name)
        ready = [s["ready_us"] for s in got if s["kind"] == "startup"]
        if not ready:
            raise RuntimeError(f"serpens-startbench gave no snapshot starts (see {samples})")
        writer.write({**startup_identity("snapshot"), "workload": NF, "trial": 0,
                      "startup_us": statistics.median(ready), "n_samples": len(ready)})
        self.progress.say(f"{ROWS['startup_us']}: {statistics.median(ready) / 1e3:.2f} ms "
                          f"(median of {len(ready)})")

    def measure_delivery(self, writer: ResultWriter) -> None:
        """FW → FW through SAND's local proxy: delivery per batch; the same chain consolidated (Serpens) at
        the same rate for the end-to-end latency cross-check. Consolidated first, so each delivery row can
        carry the difference to the consolidated trial of the same index."""
        t, traffic = self.config["table2"], self.config["traffic"]
        rate, spec = t["delivery_rate_mpps"] * 1e6, SfcSpec.linear(f"{NF},{NF}")
        consolidated: list[float] = []
        for design in ("serpens", "sand-chaining"):
            with rig(self.config, design, sfc=spec) as r:
                writer.note(f"rig_delivery_{design}", r.describe())
                m = Measurer(r.generator, FRAME_SIZE_B, traffic["flows"], traffic["latency_pps"],
                             platform=r.platform)
                for trial in self.repetitions():
                    result = m(rate, t["duration_s"])
                    assert m.last_stats is not None
                    cols = fixed_rate_columns(result)
                    latency = cols.get("latency_mean_us", math.nan)
                    if design == "serpens":
                        consolidated.append(latency)
                        writer.note(f"delivery_crosscheck_serpens_trial{trial}",
                                    {"latency_mean_us": latency, "loss_packets": cols["loss_packets"],
                                     "offered_mpps": cols["offered_mpps"]})
                        continue
                    costs = batch_costs(*m.last_stats)
                    diff = latency - consolidated[trial] if trial < len(consolidated) else math.nan
                    writer.note(f"delivery_trial{trial}_costs", costs)
                    writer.write({
                        "platform": design, **designs.row_identity(design, "chaining"),
                        "workload": f"{NF},{NF}", "frame_size_b": FRAME_SIZE_B, "flows": traffic["flows"],
                        "trial": trial, "offered_mpps": cols["offered_mpps"],
                        "throughput_mpps": cols["throughput_mpps"], "loss_packets": cols["loss_packets"],
                        "batch_packets": costs["batch_packets"], "delivery_us": costs["delivery_us"],
                        "delivery_batches": costs["delivery_batches"], "latency_mean_us": latency,
                        "latency_diff_us": diff})
                    self.progress.say(f"{ROWS['delivery_us']}: {costs['delivery_us']:.2f} µs per batch "
                                      f"(FW1 → FW2, {costs['delivery_batches']:.0f} batches) at "
                                      f"{t['delivery_rate_mpps']} Mpps; end-to-end latency {latency:.1f} µs, "
                                      f"{diff:+.1f} µs against one instance ({cols['loss_packets']} lost)")

    def plot(self, df: pd.DataFrame, path: Path) -> None:
        sns.set_theme(style="whitegrid", context="paper")
        fig, ax = plt.subplots(figsize=(6, 3))
        long = df.melt(id_vars=["platform"], value_vars=[c for c in ROWS if c in df], var_name="cost",
                       value_name="µs").dropna(subset=["µs"])
        long["cost"] = long["cost"].map(ROWS)
        sns.barplot(data=long, y="cost", x="µs", order=[v for k, v in ROWS.items() if v in set(long["cost"])],
                    ax=ax, **plots.MEDIAN_MINMAX)
        ax.set_xscale("log")
        ax.set_ylabel("")
        ax.set_xlabel("µs (per batch; startup per instance)")
        batch = df.dropna(subset=["batch_packets"]).groupby("platform")["batch_packets"].median()
        sizes = ", ".join(f"{p} {b:.1f}" for p, b in batch.items())
        ax.set_title("FW: FaaS mechanism costs" + (f"\n(packets per batch: {sizes})" if sizes else ""),
                     fontsize=9)
        plots.save(fig, path, "results/table-2.csv")
