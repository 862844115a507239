"""`make soak` (issue 13): Serpens running FW→MON→NAT for ``soak.duration_s`` (10 minutes) at
``soak.load_fraction`` (80 %) of its conditional throughput, to see what a short benchmark cannot: memory
that grows, packets lost without a counter that says where, instances that crash and restart.

One rig for the whole soak: the PDR search first (its goal is ``search``'s PDR; ``soak.rate_mpps`` skips
it), then back-to-back fixed-rate trials of ``soak.trial_s`` until the duration is up. After every trial a
row: the generator's sent and received packets, the loss that is counted (packets serpensd's receive ring
refused, which the generator counts on the shared memif ring; the port's misses and drops, the gateway's
misses, per SFC the packets with no instance, a full ring or stranded in a stopped
instance, the instances' NF drops), the rest (``unaccounted``), instance crashes, and the PSS of serpensd
and of every process below it. The run's verdicts are in the sidecar (``soak``): memory of every process
flat within ``soak.memory_tolerance`` from the first trial's end to the last, no lost packet unaccounted
for, no restart. This is a benchmark, not a test: a verdict that fails is reported, not asserted.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from experiments.base import Experiment
from harness import plots, runlock
from harness.results import ResultWriter
from harness.rig import rig
from harness.serpens import memory
from harness.serpens.sfc import from_cli
from harness.traffic.measure import Measurer
from harness.traffic.search import find_ndr_pdr, search_settings


def counted_drops(before: dict[str, Any], after: dict[str, Any]) -> int:
    """Packets serpensd dropped between two stats() snapshots and counted, wherever it dropped them."""
    def d(a: dict[str, Any], b: dict[str, Any], key: str) -> int:
        return max(0, int(a.get(key) or 0) - int(b.get(key) or 0))

    n = sum(d(after["port"], before["port"], k) for k in ("imissed", "rx_nombuf", "tx_dropped"))
    n += d(after["gateway"], before["gateway"], "miss")
    prior = {s["name"]: s for s in before.get("sfcs") or []}
    for s in after.get("sfcs") or []:
        n += sum(d(s, prior.get(s["name"], {}), k) for k in ("no_instance", "ring_full", "stranded"))
    # an instance's NF drops, by slot and start (a restarted slot counts from zero again)
    prior_i = {(i["instance"], i.get("start")): i for i in before.get("instances") or []}
    for i in after.get("instances") or []:
        n += d(i, prior_i.get((i["instance"], i.get("start")), {}), "nf_drops")
    return n


class Soak(Experiment):
    name = "soak"
    title = "Serpens FW→MON→NAT soak: memory, accounted loss and restarts over time"
    columns = ["platform", "system", "design", "workload", "trial", "elapsed_s", "offered_mpps", "tx_packets",
               "rx_packets", "lost_packets", "counted_packets", "unaccounted_packets", "instance_crashes",
               "serpensd_pss_kb", "processes_pss_kb", "n_processes"]

    def repetition_count(self) -> int:
        return 1

    def measure(self, writer: ResultWriter) -> None:
        s = self.config["soak"]
        sfc = from_cli(s["sfc"], self.config)
        with runlock.hold(self.config), rig(self.config, "serpens", sfc=sfc) as r:
            m = Measurer(r.generator, 64, int(self.config["traffic"]["flows"]),
                         float(self.config["traffic"]["latency_pps"]), platform=r.platform)
            rate_mpps = s.get("rate_mpps")
            if not rate_mpps:
                self.progress.say("searching the conditional throughput (PDR) first")
                found = find_ndr_pdr(m, search_settings(self.config))
                pdr = found.goals["pdr"].conditional_throughput_pps / 1e6
                writer.note("pdr_mpps", pdr)
                rate_mpps = pdr * float(s["load_fraction"])
            writer.note("rate_mpps", rate_mpps)
            self.progress.say(f"soaking at {rate_mpps:.3f} Mpps for {s['duration_s']:g} s in "
                              f"{s['trial_s']:g} s trials")
            proc = getattr(r.platform, "proc", None)
            assert proc is not None, "the serpens platform has a serpensd process"
            first: dict[int, int] = {}
            last: dict[int, int] = {}
            t0 = time.monotonic()
            trial = 0
            unaccounted = crashes = 0
            while time.monotonic() - t0 < float(s["duration_s"]):
                before = r.platform.stats()
                res = m(rate_mpps * 1e6, float(s["trial_s"]))
                after = r.platform.stats()
                pids = [proc.pid, *memory.descendants(proc.pid)]
                pss = {p: memory.pss_kb(p) for p in pids}
                if trial == 0:
                    first = dict(pss)   # after one trial: warmed up (tables touched, caches filled)
                last = pss
                lost = int(res.tx_packets - res.rx_packets)
                # the DUT's receive ring full: the generator counts them on the shared memif ring
                counted = counted_drops(before, after) + int(res.dut_rx_full)
                n_crash = int((res.dut or {}).get("instance_crashes") or 0)
                unaccounted += max(0, lost - counted)
                crashes += n_crash
                writer.write({
                    "platform": "serpens", "system": "serpens", "design": "serpens", "workload": s["sfc"],
                    "trial": trial, "elapsed_s": time.monotonic() - t0, "offered_mpps": rate_mpps,
                    "tx_packets": int(res.tx_packets), "rx_packets": int(res.rx_packets),
                    "lost_packets": lost,
                    "counted_packets": counted, "unaccounted_packets": max(0, lost - counted),
                    "instance_crashes": n_crash, "serpensd_pss_kb": pss[proc.pid],
                    "processes_pss_kb": sum(pss.values()), "n_processes": len(pss)})
                self.progress.say(f"trial {trial}: lost {lost} (counted {counted}), PSS "
                                  f"{sum(pss.values()) / 1024:.1f} MiB in {len(pss)} processes")
                trial += 1
            growth = {str(p): (last[p] - first[p]) / first[p] for p in first if p in last and first[p]}
            flat = all(abs(g) <= float(s["memory_tolerance"]) for g in growth.values())
            writer.note("soak", {
                "trials": trial, "memory_growth_by_pid": growth,
                "memory_flat": flat and set(first) == set(last),
                "processes_came_or_went": sorted(set(first) ^ set(last)),
                "unaccounted_packets": unaccounted, "instance_crashes": crashes,
                "verdict": "pass" if flat and set(first) == set(last) and not unaccounted and not crashes
                           else "fail"})
            self.progress.say(f"soak: memory {'flat' if flat else 'NOT flat'} (largest change "
                              f"{max((abs(g) for g in growth.values()), default=0):.2%}), {unaccounted} "
                              f"packets unaccounted for, {crashes} instance crash(es)")

    def plot(self, df: pd.DataFrame, path: Path) -> None:
        sns.set_theme(style="whitegrid", context="paper")
        fig, axes = plt.subplots(2, 1, figsize=(5.5, 4.2), sharex=True)
        axes[0].plot(df["elapsed_s"], df["processes_pss_kb"] / 1024, label="all processes")
        axes[0].plot(df["elapsed_s"], df["serpensd_pss_kb"] / 1024, label="serpensd")
        axes[0].set_ylabel("PSS (MiB)")
        axes[0].legend(fontsize=7)
        axes[1].plot(df["elapsed_s"], df["lost_packets"], label="lost")
        axes[1].plot(df["elapsed_s"], df["unaccounted_packets"], label="unaccounted for")
        axes[1].set_ylabel("packets per trial")
        axes[1].set_xlabel("time (s)")
        axes[1].legend(fontsize=7)
        plots.save(fig, path, "results/soak.csv")
