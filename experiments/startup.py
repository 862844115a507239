"""Instance startup and deployment memory: `make figure-11` (Fig. 11(a) startup time vs. number of instances
started together, Fig. 11(b) memory vs. number of deployed NFs) and `make table-4` (Table IV: the scaling
overhead of one new instance per mechanism).

All three run ``serpens-startbench`` (native/startup, docs/startup.md): one DPDK primary that deploys copies
of the paper's target NF (FW) and starts instances of it with each method — exec (cold start), fork (SAND),
load (SOCK), thread (Photons), snapshot (Catalyzer-style restore) and serpens (memory-map into a pool
process) — on the same runtime code, timing from the start request to the instance being ready, and to its
first packet processed. Its raw JSON lines (one per instance start, one per memory point) are kept next to
the CSV (``results/<experiment>-samples.jsonl``); the CSV rows are summaries of them.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from experiments.base import Experiment
from harness import plots
from harness.config import Config, repo_path
from harness.native import NativeError, RunDir, binary, cleanup_prefix, eal_args
from harness.progress import Progress
from harness.results import ResultWriter
from harness.serpens.sfc import nf_path

# The system whose instance startup each method is (the rows' ``system``; ``mechanism`` is the method).
SYSTEMS = {"exec": "exec", "fork": "sand", "load": "sock", "load_pool": "sock", "thread": "photons",
           "snapshot": "catalyzer", "serpens": "serpens"}
# What ran the rows: serpens-startbench, not a registered platform (``platform``), and no design (``design``).
TOOL = "startbench"
IDENTITY = ["platform", "system", "design", "mechanism"]
LABELS = {"exec": "Exec", "fork": "Fork (SAND)", "load": "Load (SOCK)", "thread": "Thread (Photons)",
          "snapshot": "Snapshot (Catalyzer-style)", "serpens": "Serpens", "load_pool": "Load, shared pool"}
ORDER = ["exec", "snapshot", "fork", "load", "load_pool", "thread", "serpens"]


def run_startbench(config: Config, args: Sequence[str], samples: Path, progress: Progress,
                   name: str) -> list[dict[str, Any]]:
    """Run serpens-startbench with ``args``; its JSON lines are appended to ``samples`` and returned.

    The benchmark's progress (one line per method and count) is passed through to ``progress``. The run's
    DPDK files are removed whatever happens.
    """
    s = config["startup"]
    exe = binary(s["startbench"])
    nf = nf_path(s["nf"], config["platforms"]["serpens"]["nfs_dir"])
    if not nf.is_file():
        raise NativeError(f"startup.nf: {nf} does not exist (run `make build`)")
    run_dir = RunDir(config, name)
    prefix = f"sb-{run_dir.tag}"
    first = samples.stat().st_size if samples.exists() else 0
    # -m: the primary reserves its heap up front, so that secondaries starting by the dozen allocate from
    # it without asking the primary to grow it (a request that times out under load: rte_service_init
    # then fails in the secondary)
    cmd = [str(exe), *eal_args(config["cores"]["platform"], prefix, []), "-m", "512", "--",
           "--nf", str(nf), "--workdir", str(run_dir / "nfs"), "--out", str(samples), *args]
    try:
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, cwd=repo_path("."))
        assert proc.stderr is not None
        lines: list[str] = []
        for line in proc.stderr:
            lines.append(line.rstrip())
            progress.say(line.strip())
        rc = proc.wait(timeout=s["timeout_s"])
        if rc != 0:
            raise NativeError(f"serpens-startbench exited with {rc}: " + " | ".join(lines[-5:]))
    finally:
        if "proc" in locals() and proc.poll() is None:
            proc.kill()
            proc.wait()
        cleanup_prefix(prefix)
        run_dir.remove()
    with open(samples) as f:
        f.seek(first)
        return [json.loads(line) for line in f if line.strip()]


def identity(method: str) -> dict[str, str]:
    """A row's platform/system/design/mechanism columns: the startbench ran ``method``."""
    return {"platform": TOOL, "system": SYSTEMS.get(method, method), "design": "", "mechanism": method}


def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")


def startup_rows(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (method, instances): percentiles over every instance start of every round."""
    df = pd.DataFrame([r for r in samples if r["kind"] == "startup"])
    rows = []
    for (method, n), g in df.groupby(["method", "instances"], sort=False):
        rounds = g.groupby("rep")["ready_us"].max()  # until the last of the n is ready
        rows.append({
            **identity(method), "workload": "fw", "n_instances": int(n),
            "startup_p50_us": _pct(g["ready_us"], 50), "startup_p99_us": _pct(g["ready_us"], 99),
            "startup_all_p50_us": _pct(rounds, 50),
            "first_packet_p50_us": _pct(g["first_packet_us"], 50),
            "first_packet_p99_us": _pct(g["first_packet_us"], 99),
            "n_samples": len(g),
            "same_cpu_fraction": float((g["instance_cpu"] == g["requester_cpu"]).mean()),
        })
    return rows


def method_lines(df: pd.DataFrame, x: str, y: str, path: Path, xlabel: str, ylabel: str, title: str,
                 log: bool) -> None:
    """One line per startup method (in ORDER) of y against x, drawn from the experiment's CSV."""
    sns.set_theme(style="whitegrid", context="paper")
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for method in [m for m in ORDER if m in set(df["mechanism"])]:
        g = df[df["mechanism"] == method].sort_values(x)
        ax.plot(g[x], g[y], marker="o", label=LABELS.get(method, method))
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
        # the counts measured (1, 2, 5, ... 100) as plain numbers, not 10^0, 10^1, 10^2
        ticks = sorted(set(df[x].dropna().astype(int)))
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(t) for t in ticks])
        ax.minorticks_off()
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    plots.save(fig, path, f"results/{path.stem}.csv")


class StartupExperiment(Experiment):
    """What the three experiments share: the startbench's samples file next to the CSV."""

    def repetition_count(self) -> int:
        """Rounds per point: the slow methods (exec, fork, snapshot) get the fewest."""
        s = self.config["startup"]
        return int(min(s["reps"], s["slow_reps"]))

    @property
    def samples_path(self) -> Path:
        return self.csv_path.with_name(f"{self.name}-samples.jsonl")

    def cores(self) -> dict[str, object]:
        s = self.config["startup"]
        return {"orchestrator (requester)": self.config["cores"]["platform"],
                "started processes": {"same": "the requester's CPU", "other": "the other CPU",
                                      "any": "either CPU (the kernel decides)"}[s["placement"]]}

    def fresh_samples(self) -> Path:
        self.samples_path.parent.mkdir(parents=True, exist_ok=True)
        self.samples_path.unlink(missing_ok=True)
        return self.samples_path


class Figure11a(StartupExperiment):
    name = "figure-11a"
    title = "Startup time vs. number of instances started together (paper Fig. 11(a))"
    columns = [*IDENTITY, "workload", "n_instances", "startup_p50_us", "startup_p99_us",
               "startup_all_p50_us", "first_packet_p50_us", "first_packet_p99_us", "n_samples",
               "same_cpu_fraction"]

    def measure(self, writer: ResultWriter) -> None:
        s = self.config["startup"]
        writer.note("placement", s["placement"])
        samples = self.fresh_samples()
        for method in s["methods"]:  # one startbench per method: rows appear as each method finishes
            got = run_startbench(self.config, [
                "--methods", method, "--instances", ",".join(map(str, s["instances"])),
                "--reps", str(s["reps"]), "--slow-reps", str(s["slow_reps"]), "--pool", str(s["pool"]),
                "--placement", s["placement"]], samples, self.progress, self.name)
            for row in startup_rows(got):
                writer.write(row)
                self.progress.say(
                    f"{LABELS.get(row['mechanism'], row['mechanism'])}: {row['n_instances']} instance(s): "
                    f"p50 {row['startup_p50_us']:.1f} µs, p99 {row['startup_p99_us']:.1f} µs, "
                    f"all ready {row['startup_all_p50_us']:.1f} µs")

    def plot(self, df: pd.DataFrame, path: Path) -> None:
        method_lines(df, "n_instances", "startup_all_p50_us", path, xlabel="instances started together",
                     ylabel="time until all are ready (µs, median)", title="(a) startup time", log=True)

class Figure11b(StartupExperiment):
    name = "figure-11b"
    title = "Deployment memory vs. number of deployed NFs (paper Fig. 11(b))"
    columns = [*IDENTITY, "workload", "n_nfs", "memory_mb", "memory_per_nf_kb", "n_processes", "image_kb"]

    def measure(self, writer: ResultWriter) -> None:
        s = self.config["startup"]
        samples = self.fresh_samples()
        writer.note("pool", s["pool"])
        for method in s["methods"]:
            got = run_startbench(self.config, [
                "--methods", method, "--memory-steps", ",".join(map(str, s["memory_steps"])),
                "--pool", str(s["pool"])], samples, self.progress, self.name)
            for row in memory_rows(got):
                writer.write(row)
                self.progress.say(f"{LABELS.get(row['mechanism'], row['mechanism'])}: {row['n_nfs']} NFs "
                                  f"deployed: {row['memory_mb']:.1f} MiB in {row['n_processes']} processes")

    def plot(self, df: pd.DataFrame, path: Path) -> None:
        method_lines(df, "n_nfs", "memory_mb", path, xlabel="deployed NFs",
                     ylabel="memory, PSS of every process (MiB)", title="(b) deployment memory", log=False)

def memory_rows(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (method, resident variant, deployed NFs). memory_per_nf_kb is the slope from the
    smallest deployment measured: what one more deployed NF costs."""
    df = pd.DataFrame([r for r in samples if r["kind"] == "memory"])
    rows = []
    for (method, resident), g in df.groupby(["method", "resident"], sort=False):
        mechanism = "load_pool" if (method == "load" and resident == "pool") else method
        g = g.sort_values("deployed")
        k0, m0 = int(g["deployed"].iloc[0]), float(g["memory_kb"].iloc[0])
        for _, r in g.iterrows():
            k = int(r["deployed"])
            rows.append({
                **identity(mechanism), "workload": "fw", "n_nfs": k, "memory_mb": r["memory_kb"] / 1024,
                "memory_per_nf_kb": (r["memory_kb"] - m0) / (k - k0) if k > k0 else float("nan"),
                "n_processes": int(r["processes"]), "image_kb": r["image_kb"],
            })
    return rows


class Table4(StartupExperiment):
    name = "table-4"
    title = "Scaling overhead of one new instance per mechanism (paper Table IV)"
    columns = [*IDENTITY, "workload", "n_instances", "overhead_us", "startup_p99_us", "overhead_same_cpu_us",
               "overhead_other_cpu_us", "first_packet_p50_us", "n_samples", "same_cpu_fraction"]

    def measure(self, writer: ResultWriter) -> None:
        s = self.config["startup"]
        samples = self.fresh_samples()
        by: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for placement in ("same", "other", "any"):
            for method in s["methods"]:
                reps = s["table_reps"] if method in ("load", "thread", "serpens") else s["slow_reps"]
                got = run_startbench(self.config, [
                    "--methods", method, "--instances", "1", "--reps", str(reps), "--slow-reps", str(reps),
                    "--pool", "1", "--placement", placement], samples, self.progress, self.name)
                by[(method, placement)] = [r for r in got if r["kind"] == "startup"]
        for method in s["methods"]:
            anyp = by[(method, "any")]
            ready = [r["ready_us"] for r in anyp]
            writer.write({
                **identity(method), "workload": "fw", "n_instances": 1,
                "overhead_us": _pct(ready, 50), "startup_p99_us": _pct(ready, 99),
                "overhead_same_cpu_us": _pct([r["ready_us"] for r in by[(method, "same")]], 50),
                "overhead_other_cpu_us": _pct([r["ready_us"] for r in by[(method, "other")]], 50),
                "first_packet_p50_us": _pct([r["first_packet_us"] for r in anyp], 50),
                "n_samples": len(anyp),
                "same_cpu_fraction": float(np.mean([r["instance_cpu"] == r["requester_cpu"] for r in anyp])),
            })
            self.progress.say(f"{LABELS.get(method, method)}: {_pct(ready, 50):.1f} µs "
                              f"(same CPU {_pct([r['ready_us'] for r in by[(method, 'same')]], 50):.1f}, "
                              f"other CPU {_pct([r['ready_us'] for r in by[(method, 'other')]], 50):.1f})")

    def plot(self, df: pd.DataFrame, path: Path) -> None:
        sns.set_theme(style="whitegrid", context="paper")
        fig, ax = plt.subplots(figsize=(5.5, 3.2))
        d = df.set_index("mechanism").reindex([m for m in ORDER if m in set(df["mechanism"])]).reset_index()
        long = d.melt(id_vars=["mechanism"], value_vars=["overhead_same_cpu_us", "overhead_other_cpu_us"],
                      var_name="placement", value_name="µs")
        long["placement"] = long["placement"].map({"overhead_same_cpu_us": "same CPU as requester",
                                                   "overhead_other_cpu_us": "other CPU"})
        long["mechanism"] = long["mechanism"].map(lambda m: LABELS.get(m, m))
        sns.barplot(data=long, x="mechanism", y="µs", hue="placement", ax=ax)
        ax.set_yscale("log")
        ax.set_xlabel("")
        ax.set_ylabel("overhead of one new instance (µs, median)")
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        ax.legend(fontsize=7)
        plots.save(fig, path, "results/table-4.csv")
