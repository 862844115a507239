"""Instance startup and deployment memory: `make figure-11` (Fig. 11(a) startup time vs. number of instances
started together, Fig. 11(b) memory vs. number of deployed NFs) and `make table-4` (Table IV: the scaling
overhead of one new instance per mechanism).

Table IV and Fig. 11(a) measure every method serpensd runs (exec, fork, load, snapshot, serpens) through
serpensd itself, on its control socket, the Instance Manager, the State Manager's split and the starter, as
Figs. 12, 14 and 15 start instances. Table IV: ``start_instance``, whose reply's ``startup_us`` runs from
the request's receipt to the control thread seeing the instance ready (:func:`serpensd_starts`). Fig. 11(a):
``start_instances`` (n instances launched back to back by the same code, then all awaited), whose
``all_ready_us`` runs to the last one seen ready (:func:`serpensd_together`); serpensd runs with
``--max-instances`` the largest count. Thread is not a start serpensd makes (its instances are processes:
docs/startup.md), so its rows come from ``serpens-startbench``, which stays their driver: one DPDK primary
(native/startup, docs/startup.md) that deploys copies of the paper's target NF (FW) and starts instances of
it with each method on the same runtime code, timing from the start request to the instance being ready,
and to its first packet processed. Every start's raw JSON line is kept next to the CSV
(``results/<experiment>-samples.jsonl``); the CSV rows are summaries of them, and ``platform`` says which
program measured each row.

Fig. 11(b) measures Serpens and Load on serpensd itself: serpensd with a pool of ``startup.pool``
processes (Serpens; Load with a shared pool) or of one process per deployed NF (Load), FW copies deployed
one by one through its control socket, and at each step the PSS of serpensd and every process it started
plus the NF images' memfd pages (harness/serpens/memory.py). The other methods' residents (a zygote or a
host per NF: Fork, Thread; nothing: Exec, Snapshot) are set up by the startbench, which stays their
driver; the rows' ``platform`` says which program measured them.

Each point's rows are written as soon as the point is done: on serpensd after its last round; the
startbench ends every point with a ``point`` line (all its rounds ran) or a ``fault`` line (why it
failed), and Python follows the samples file while the startbench runs. A failed point gets no row (its
samples are not a measurement) but a ``fault`` line in the samples file and an entry in the sidecar's
``failed_points``, with its cause; the other points still run, and the run ends with
:class:`harness.results.PointsFailed` (one line, non-zero exit). A startbench that dies leaves the points
it had not finished failed with its last words; a serpensd that dies, those of its method.
"""

from __future__ import annotations

import copy
import json
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from experiments.base import Experiment
from harness import plots, runlock
from harness.config import Config, repo_path
from harness.native import NativeError, RunDir, binary, cleanup_prefix, eal_args
from harness.platforms.base import PlatformError
from harness.progress import Progress
from harness.results import PointsFailed, ResultWriter
from harness.serpens import memory
from harness.serpens.controller import SerpensConnectionError, SerpensError
from harness.serpens.platform import DesignPlatform
from harness.serpens.sfc import SfcSpec, nf_path

# The system whose instance startup each method is (the rows' ``system``; ``mechanism`` is the method).
SYSTEMS = {"exec": "exec", "fork": "sand", "load": "sock", "load_pool": "sock", "thread": "photons",
           "snapshot": "catalyzer", "serpens": "serpens"}
# What ran the rows: serpens-startbench, not a registered platform (``platform``), and no design (``design``).
TOOL = "startbench"
IDENTITY = ["platform", "system", "design", "mechanism"]
LABELS = {"exec": "Exec", "fork": "Fork (SAND)", "load": "Load (SOCK)", "thread": "Thread (Photons)",
          "snapshot": "Snapshot (Catalyzer-style)", "serpens": "Serpens", "load_pool": "Load, shared pool"}
ORDER = ["exec", "snapshot", "fork", "load", "load_pool", "thread", "serpens"]
# What Fig. 11(b) measures per method: the resident variants the startbench's memory mode sets up
# (native/startup/startbench.c, memory_runs), as the rows' mechanism; a run that dies before one of them
# leaves those points failed.
MEMORY_MECHANISMS = {"serpens": ["serpens"], "load": ["load", "load_pool"], "exec": ["exec"],
                     "snapshot": ["snapshot"], "fork": ["fork"], "thread": ["thread"]}
# The Fig. 11(b) mechanisms measured on serpensd, each by the design that sets it up there, and its pool:
# serpens (an image per NF) and load_pool (dlopen on demand) with a pool of startup.pool processes; load
# with one pre-initialised pool process per deployed NF (serpensd restarted for every step), as the
# paper's Load curve implies.
SERPENSD = "serpensd"
SERPENSD_MEMORY = {"serpens": "serpens", "load_pool": "load-startup", "load": "load-startup"}
POOL_PER_NF = {"load"}


class _SamplesTail:
    """The JSON lines appended to a file from an offset on, complete lines only, as they are written."""

    def __init__(self, path: Path, offset: int) -> None:
        self.path, self.offset, self.partial = path, offset, ""

    def new(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with open(self.path) as f:
            f.seek(self.offset)
            text = f.read()
            self.offset = f.tell()
        text, self.partial = self.partial + text, ""
        lines = text.split("\n")
        self.partial = lines.pop()   # "" after a complete last line; a line still being written otherwise
        return [json.loads(line) for line in lines if line.strip()]


def run_startbench(config: Config, args: Sequence[str], samples: Path, progress: Progress, name: str,
                   on_record: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run serpens-startbench with ``args``; its JSON lines are appended to ``samples`` and returned.

    ``on_record`` gets each line as soon as the startbench has written it (checked after every line of its
    progress and at its end), so a caller writes a point's rows when the point is done. The benchmark's
    progress (one line per method and count) is passed through to ``progress``. A startbench that exits
    non-zero (a point failed: its ``fault`` line was handed over first; or it died) raises NativeError with
    its last words. The run's DPDK files are removed whatever happens.
    """
    s = config["startup"]
    exe = binary(s["startbench"])
    nf = nf_path(s["nf"], config["platforms"]["serpens"]["nfs_dir"])
    if not nf.is_file():
        raise NativeError(f"startup.nf: {nf} does not exist (run `make build`)")
    run_dir = RunDir(config, name)
    prefix = f"sb-{run_dir.tag}"
    first = samples.stat().st_size if samples.exists() else 0
    tail = _SamplesTail(samples, first)
    got: list[dict[str, Any]] = []

    def hand_over() -> None:
        for rec in tail.new():
            got.append(rec)
            if on_record is not None:
                on_record(rec)
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
            hand_over()
        rc = proc.wait(timeout=s["timeout_s"])
        hand_over()
        if rc != 0:
            raise NativeError(f"serpens-startbench exited with {rc}: " + " | ".join(lines[-5:]))
    finally:
        if "proc" in locals() and proc.poll() is None:
            proc.kill()
            proc.wait()
        cleanup_prefix(prefix)
        run_dir.remove()
    return got


def identity(method: str) -> dict[str, str]:
    """A row's platform/system/design/mechanism columns: the startbench ran ``method``."""
    return {"platform": TOOL, "system": SYSTEMS.get(method, method), "design": "", "mechanism": method}


def _pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else float("nan")


def startup_rows(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (method, instances): percentiles over every instance start of every round."""
    df = pd.DataFrame([r for r in samples if r["kind"] == "startup" and r["ok"]])
    rows: list[dict[str, Any]] = []
    if df.empty:
        return rows
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


class Failures:
    """The failed points of one run: each gets a ``fault`` line in the samples file (the startbench's, or
    one written here in its vocabulary when it died first) and an entry in the sidecar's
    ``failed_points`` (in the rows' vocabulary), with its cause, as it happens; ``finish`` raises
    :class:`PointsFailed` if there were any (after every other point ran)."""

    def __init__(self, exp: StartupExperiment, writer: ResultWriter, total: int) -> None:
        self.exp, self.writer, self.total = exp, writer, total
        self.points: list[dict[str, Any]] = []

    def add(self, point: dict[str, Any], cause: str, line: dict[str, Any] | None = None) -> None:
        """``point``: its identity columns (mechanism, n_instances / n_nfs); ``line``: the startbench's
        names for it (method, instances, ...) when its fault line is still to be written, None when the
        startbench wrote it."""
        cause = " | ".join(part.strip() for part in str(cause).splitlines() if part.strip())
        entry = {**point, "error": cause}
        self.points.append(entry)
        if line is not None:
            with open(self.exp.samples_path, "a") as f:
                f.write(json.dumps({"kind": "fault", **line, "status": "failed", "error": cause}) + "\n")
        self.writer.note("failed_points", self.points)
        self.exp.progress.say(f"FAILED: {_label(point)}: {cause}")

    def finish(self) -> None:
        if not self.points:
            return
        first = self.points[0]
        raise PointsFailed(
            f"{self.exp.name}: {len(self.points)} of {self.total} point(s) failed, first {_label(first)}: "
            f"{first['error']} — the other points' rows are in {self.exp.csv_path}, every failure's cause in "
            f"{self.exp.samples_path} and its sidecar")


def _label(point: dict[str, Any]) -> str:
    """``exec at 100 instances``, ``load_pool at 500 NFs``, ``thread``: a point, for a reader."""
    what = LABELS.get(point["mechanism"], point["mechanism"])
    if "n_instances" in point:
        return f"{what} at {point['n_instances']} instance(s)"
    if "n_nfs" in point:
        return f"{what} at {point['n_nfs']} NFs"
    return what


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
        failures = Failures(self, writer, len(s["methods"]) * len(s["instances"]))
        for method in s["methods"]:
            if method in TABLE4_DESIGNS:   # through serpensd's Instance Manager
                self.measure_serpensd(writer, failures, method, samples)
            else:                          # thread: the startbench (serpensd refuses it)
                self.measure_startbench(writer, failures, method, samples)
        failures.finish()

    def measure_serpensd(self, writer: ResultWriter, failures: Failures, method: str, samples: Path) -> None:
        """One serpensd for the method, every count in turn; a point's row written when its rounds are done,
        a failed point recorded with its cause and the next count tried."""
        s = self.config["startup"]
        reps = s["slow_reps"] if method in SLOW else s["reps"]

        def on_point(n: int, recs: list[dict[str, Any]]) -> None:
            row = together_row(method, n, recs)
            writer.write(row)
            self.progress.say(f"{LABELS.get(method, method)} (serpensd): {n} instance(s): "
                              f"p50 {row['startup_p50_us']:.1f} µs, "
                              f"all ready {row['startup_all_p50_us']:.1f} µs")

        def on_fault(n: int, cause: str) -> None:
            failures.add({"mechanism": method, "n_instances": n}, f"serpensd: {cause}",
                         {"program": SERPENSD, "method": method, "instances": n})

        serpensd_together(self.config, method, list(s["instances"]), reps, samples, self.progress, on_point,
                          on_fault)

    def measure_startbench(self, writer: ResultWriter, failures: Failures, method: str,
                           samples: Path) -> None:
        """The method's points on the startbench, its rows written as it ends each point."""
        s = self.config["startup"]
        pending: dict[int, list[dict[str, Any]]] = {}
        todo = list(s["instances"])

        def on_record(rec: dict[str, Any]) -> None:
            n = rec.get("instances")
            if rec["kind"] == "startup":
                pending.setdefault(n, []).append(rec)
            elif rec["kind"] == "point":
                todo.remove(n)
                for row in startup_rows(pending.pop(n, [])):
                    writer.write(row)
                    self.progress.say(
                        f"{LABELS.get(row['mechanism'], row['mechanism'])}: {row['n_instances']} "
                        f"instance(s): p50 {row['startup_p50_us']:.1f} µs, "
                        f"p99 {row['startup_p99_us']:.1f} µs, "
                        f"all ready {row['startup_all_p50_us']:.1f} µs")
            elif rec["kind"] == "fault":   # its samples are not a measurement: no row
                todo.remove(n)
                pending.pop(n, None)
                failures.add({"mechanism": method, "n_instances": n}, rec["error"])

        try:
            run_startbench(self.config, [
                "--methods", method, "--instances", ",".join(map(str, s["instances"])),
                "--reps", str(s["reps"]), "--slow-reps", str(s["slow_reps"]), "--pool", str(s["pool"]),
                "--placement", s["placement"]], samples, self.progress, self.name, on_record)
        except NativeError as exc:   # it died: the points it had not finished failed with it
            for n in list(todo):
                failures.add({"mechanism": method, "n_instances": n}, str(exc),
                             {"method": method, "instances": n, "placement": s["placement"]})

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
        steps = list(s["memory_steps"])
        failures = Failures(self, writer, sum(len(MEMORY_MECHANISMS.get(m, [m])) for m in s["methods"])
                            * len(steps))
        writer.note("serpensd_designs", SERPENSD_MEMORY)
        first: dict[tuple[str, str], tuple[int, float]] = {}

        def write(rec: dict[str, Any], todo: set[tuple[str, int]]) -> None:
            row = memory_row(rec, first)   # a step is one point: its row is written at once
            todo.discard((row["mechanism"], row["n_nfs"]))
            writer.write(row)
            self.progress.say(f"{LABELS.get(row['mechanism'], row['mechanism'])} ({row['platform']}): "
                              f"{row['n_nfs']} NFs deployed: {row['memory_mb']:.1f} MiB in "
                              f"{row['n_processes']} processes")

        for method in s["methods"]:
            mechs = MEMORY_MECHANISMS.get(method, [method])
            on_bench = [m for m in mechs if m not in SERPENSD_MEMORY]
            todo = {(mech, k) for mech in on_bench for k in steps}

            def on_record(rec: dict[str, Any], todo: set[tuple[str, int]] = todo,
                          on_bench: list[str] = on_bench) -> None:
                if rec["kind"] == "memory" and mechanism_of(rec) in on_bench:
                    write(rec, todo)   # (the startbench's own pool variant of load is serpensd's here)

            if on_bench:
                try:
                    run_startbench(self.config, [
                        "--methods", method, "--memory-steps", ",".join(map(str, steps)),
                        "--pool", str(s["pool"])], samples, self.progress, self.name, on_record)
                except NativeError as exc:
                    for mech, k in sorted(todo):
                        failures.add({"mechanism": mech, "n_nfs": k}, str(exc),
                                     {"method": method, "mechanism": mech, "deployed": k})
            for mech in (m for m in mechs if m in SERPENSD_MEMORY):
                todo = {(mech, k) for k in steps}
                try:
                    serpensd_memory(self.config, mech, steps, samples, lambda rec, t=todo: write(rec, t))
                except (NativeError, PlatformError) as exc:
                    for _, k in sorted(todo):
                        failures.add({"mechanism": mech, "n_nfs": k}, str(exc), {
                            "program": SERPENSD, "method": method, "mechanism": mech, "deployed": k})
        failures.finish()

    def plot(self, df: pd.DataFrame, path: Path) -> None:
        method_lines(df, "n_nfs", "memory_mb", path, xlabel="deployed NFs",
                     ylabel="memory, PSS of every process (MiB)", title="(b) deployment memory", log=False)


def mechanism_of(r: dict[str, Any]) -> str:
    """A memory record's mechanism: its method, or load_pool for Load with a shared pool."""
    return "load_pool" if (r["method"] == "load" and r["resident"] == "pool") else r["method"]


def memory_row(r: dict[str, Any], first: dict[tuple[str, str], tuple[int, float]]) -> dict[str, Any]:
    """The row of one memory point. memory_per_nf_kb is the slope from the first (smallest) deployment
    measured of the same mechanism by the same program, which ``first`` remembers: what one more deployed
    NF costs."""
    mechanism = mechanism_of(r)
    program = r.get("program", TOOL)
    k = int(r["deployed"])
    k0, m0 = first.setdefault((program, mechanism), (k, float(r["memory_kb"])))
    ident = identity(mechanism)
    if program != TOOL:   # measured on serpensd, running a design of the registry
        ident = {**ident, "platform": program, "design": r.get("design", "")}
    return {
        **ident, "workload": "fw", "n_nfs": k, "memory_mb": r["memory_kb"] / 1024,
        "memory_per_nf_kb": (r["memory_kb"] - m0) / (k - k0) if k > k0 else float("nan"),
        "n_processes": int(r["processes"]), "image_kb": r["image_kb"],
    }


def memory_rows(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (program, method, resident variant, deployed NFs), in the order measured (smallest
    first)."""
    first: dict[tuple[str, str], tuple[int, float]] = {}
    mem = sorted((r for r in samples if r["kind"] == "memory"), key=lambda r: int(r["deployed"]))
    return [memory_row(r, first) for r in mem]


def serpensd_memory(config: Config, mechanism: str, steps: Sequence[int], samples: Path,
                    on_record: Callable[[dict[str, Any]], None]) -> None:
    """Fig. 11(b) on serpensd: start it with the design of ``mechanism`` (SERPENSD_MEMORY) and its pool —
    ``startup.pool`` processes, or (POOL_PER_NF) one per NF to be deployed, serpensd started anew for each
    step — deploy copies of ``startup.nf`` one by one (each its own deployment, as the NF Manager does for
    every deployment), and at each of ``steps`` deployed NFs measure the memory of serpensd, its pool and
    the images (harness/serpens/memory.py). Each point's record is appended to ``samples`` and handed to
    ``on_record`` as soon as it is measured. No instance is started: this is the memory of deployment.
    Raises PlatformError / NativeError (serpensd would not start or refused)."""
    if mechanism in POOL_PER_NF:
        for k in sorted(steps):
            _serpensd_memory_run(config, mechanism, k, [k], samples, on_record)
    else:
        _serpensd_memory_run(config, mechanism, int(config["startup"]["pool"]), steps, samples, on_record)


def _serpensd_memory_run(config: Config, mechanism: str, pool: int, steps: Sequence[int], samples: Path,
                         on_record: Callable[[dict[str, Any]], None]) -> None:
    """One serpensd with a pool of ``pool``, measured at each of ``steps`` deployed NFs."""
    s = config["startup"]
    conf = copy.deepcopy(config)
    settings = conf["platforms"]["serpens"]
    settings["pool"] = pool
    settings["instances"] = 0
    # the pool fills before serpensd says READY, one EAL init at a time (docs/startup.md)
    settings["ready_timeout_s"] = max(float(settings["ready_timeout_s"]), 1.0 * pool)
    nf = nf_path(s["nf"], settings["nfs_dir"])
    if not nf.is_file():
        raise NativeError(f"startup.nf: {nf} does not exist (run `make build`)")
    design = SERPENSD_MEMORY[mechanism]
    method = "load" if mechanism.startswith("load") else mechanism
    resident = "per-nf" if mechanism in POOL_PER_NF else "pool"
    with runlock.hold(conf):
        run_dir = RunDir(conf, f"memory-{mechanism}")
        try:
            platform = DesignPlatform(conf, run_dir, design)
            with platform:
                assert platform.controller is not None and platform.proc is not None
                deployed = 0
                for k in sorted(steps):
                    for i in range(deployed, k):
                        platform.controller.deploy_nf(f"{s['nf']}{i}", str(nf), {})
                    deployed = k
                    m = memory.deployment_kb(platform.proc.pid)
                    rec = {"kind": "memory", "program": SERPENSD, "design": design, "method": method,
                           "resident": resident, "deployed": k, "processes": int(m["processes"]),
                           "pss_kb": m["pss_kb"], "orchestrator_pss_kb": m["serpensd_pss_kb"],
                           "image_kb": m["image_kb"], "memory_kb": m["memory_kb"], "pool": pool}
                    with open(samples, "a") as f:
                        f.write(json.dumps(rec) + "\n")
                    on_record(rec)
        finally:
            run_dir.remove()


# Table IV on serpensd: the design that runs each method there, and whether a pool process serves the
# start (only then does --start-placement choose its CPU; exec, fork and snapshot start a process of their
# own on the instance CPU). Thread is not a start serpensd makes (docs/startup.md: its instances are
# processes), so its row stays the startbench's.
TABLE4_DESIGNS = {"exec": "exec-startup", "fork": "fork-startup", "load": "load-startup",
                  "snapshot": "snapshot-startup", "serpens": "serpens"}
POOLED = {"load", "serpens"}


def serpensd_starts(config: Config, method: str, placement: str, reps: int, samples: Path,
                    progress: Progress) -> list[dict[str, Any]]:
    """``reps`` starts of one FW instance through serpensd's control socket, as Figs. 12, 14 and 15 start
    them (``start_instance``, then ``stop_instance``; 1 ms apart so that a pool process sleeps again), with
    serpensd running the design of ``method`` (TABLE4_DESIGNS) and ``--start-placement placement``; no
    traffic. Each reply is appended to ``samples`` as a ``startup`` record (``program``: serpensd) and
    returned. Raises PlatformError / NativeError."""
    s = config["startup"]
    conf = copy.deepcopy(config)
    settings = conf["platforms"]["serpens"]
    settings["instances"] = 0
    settings["pool"] = 1 if method in POOLED else 0
    settings["start_placement"] = placement
    nf = nf_path(s["nf"], settings["nfs_dir"])
    if not nf.is_file():
        raise NativeError(f"startup.nf: {nf} does not exist (run `make build`)")
    design = TABLE4_DESIGNS[method]
    out: list[dict[str, Any]] = []
    with runlock.hold(conf):
        run_dir = RunDir(conf, f"table4-{method}")
        try:
            platform = DesignPlatform(conf, run_dir, design, sfc=SfcSpec.linear(s["nf"]))
            with platform, open(samples, "a") as f:
                for i in range(reps):
                    time.sleep(0.001)
                    reply = platform.start_instance(s["nf"])
                    platform.stop_instance(int(reply["instance"]))
                    rec = {"kind": "startup", "program": SERPENSD, "design": design, "method": method,
                           "placement": placement, "instances": 1, "round": i,
                           "ready_us": reply["startup_us"], "routes_us": reply.get("routes_us"),
                           "pooled": reply["pooled"], "loader": reply["loader"], "steps": reply.get("steps")}
                    f.write(json.dumps(rec) + "\n")
                    out.append(rec)
                    if (i + 1) % 50 == 0 or i + 1 == reps:
                        progress.say(f"{LABELS.get(method, method)} on serpensd ({placement}): "
                                     f"{i + 1}/{reps} starts")
        finally:
            run_dir.remove()
    return out


# The methods whose starts take tens of ms (a process and an EAL init per start): startup.slow_reps rounds.
SLOW = {"exec", "fork", "snapshot"}


def serpensd_together(config: Config, method: str, counts: Sequence[int], reps: int, samples: Path,
                      progress: Progress, on_point: Callable[[int, list[dict[str, Any]]], None],
                      on_fault: Callable[[int, str], None]) -> None:
    """Fig. 11(a) on serpensd: one serpensd running the design of ``method`` (TABLE4_DESIGNS) with
    ``--max-instances`` the largest count and, for the pooled methods, a pool of ``startup.pool`` processes
    placed by ``startup.placement``; for each count n, ``reps`` rounds of ``start_instances`` (n FW
    instances started together, all or nothing), then ``stop_instance`` of each (so every round starts
    from the same state; pool processes sleep again). Each started instance is a ``startup`` record in
    ``samples`` (``program``: serpensd). A count's records go to ``on_point`` once its rounds are done; a
    count whose round failed goes to ``on_fault`` with the cause and the next count is tried — unless
    serpensd itself is gone (or would not start), when every count not yet done gets that cause."""
    s = config["startup"]
    conf = copy.deepcopy(config)
    settings = conf["platforms"]["serpens"]
    settings["instances"] = 0
    settings["max_instances"] = max(counts)
    pooled = method in POOLED
    settings["pool"] = int(s["pool"]) if pooled else 0
    if pooled:
        settings["start_placement"] = s["placement"]
        # the pool fills before serpensd says READY, one EAL init at a time (docs/startup.md)
        settings["ready_timeout_s"] = max(float(settings["ready_timeout_s"]), 1.0 * settings["pool"])
    design = TABLE4_DESIGNS[method]
    todo = list(counts)
    try:
        nf = nf_path(s["nf"], settings["nfs_dir"])
        if not nf.is_file():
            raise NativeError(f"startup.nf: {nf} does not exist (run `make build`)")
        with runlock.hold(conf):
            run_dir = RunDir(conf, f"fig11a-{method}")
            try:
                platform = DesignPlatform(conf, run_dir, design, sfc=SfcSpec.linear(s["nf"]))
                with platform, open(samples, "a") as f:
                    for n in counts:
                        try:
                            recs = _together_point(platform, method, design, n, reps, f, s["nf"])
                        except SerpensConnectionError:
                            raise   # serpensd is gone: below
                        except (SerpensError, PlatformError) as exc:
                            todo.remove(n)
                            on_fault(n, str(exc))
                            continue
                        todo.remove(n)
                        on_point(n, recs)
                        progress.say(f"{LABELS.get(method, method)} on serpensd: {n} instance(s) done")
            finally:
                run_dir.remove()
    except (NativeError, PlatformError) as exc:
        for n in todo:
            on_fault(n, str(exc))


def _together_point(platform: DesignPlatform, method: str, design: str, n: int, reps: int, f: Any,
                    sfc: str) -> list[dict[str, Any]]:
    """``reps`` rounds of n instances started together and stopped again; their records (written to f)."""
    recs: list[dict[str, Any]] = []
    for rep in range(reps):
        time.sleep(0.001)
        # a pooled method's n starts all from its pool, as the paper's (serpensd refuses a count beyond it)
        reply = platform.start_instances(sfc, n, pooled=method in POOLED)
        for one in reply["instances"]:
            platform.stop_instance(int(one["instance"]))
        for one in reply["instances"]:
            rec = {"kind": "startup", "program": SERPENSD, "design": design, "method": method, "instances": n,
                   "rep": rep, "instance": one["instance"], "ready_us": one["startup_us"],
                   "all_ready_us": reply["all_ready_us"], "pooled": one["pooled"], "loader": one["loader"],
                   "steps": one.get("steps")}
            f.write(json.dumps(rec) + "\n")
            recs.append(rec)
        f.flush()
    return recs


def together_row(method: str, n: int, recs: list[dict[str, Any]]) -> dict[str, Any]:
    """A Fig. 11(a) row from serpensd's records of one count: percentiles over every instance's start, and
    the median over rounds of the time until the last one was ready."""
    ready = [r["ready_us"] for r in recs]
    rounds = {r["rep"]: r["all_ready_us"] for r in recs}
    return {**identity(method), "platform": SERPENSD, "design": TABLE4_DESIGNS[method], "workload": "fw",
            "n_instances": n, "startup_p50_us": _pct(ready, 50), "startup_p99_us": _pct(ready, 99),
            "startup_all_p50_us": _pct(list(rounds.values()), 50),
            "first_packet_p50_us": float("nan"),   # serpensd's reply ends at READY; its routes follow
            "first_packet_p99_us": float("nan"), "n_samples": len(ready), "same_cpu_fraction": float("nan")}


class Table4(StartupExperiment):
    name = "table-4"
    title = "Scaling overhead of one new instance per mechanism (paper Table IV)"
    columns = [*IDENTITY, "workload", "n_instances", "overhead_us", "startup_p99_us", "overhead_same_cpu_us",
               "overhead_other_cpu_us", "first_packet_p50_us", "routes_p50_us", "n_samples",
               "same_cpu_fraction"]

    def measure(self, writer: ResultWriter) -> None:
        s = self.config["startup"]
        samples = self.fresh_samples()
        failures = Failures(self, writer, len(s["methods"]))
        # a method's row needs all of its placements: they run one after another, and the row is written
        # as soon as the method's last one is done
        for method in s["methods"]:
            reps = s["table_reps"] if method in ("load", "thread", "serpens") else s["slow_reps"]
            if method in TABLE4_DESIGNS:
                self.measure_serpensd(writer, failures, method, reps, samples)
            else:
                self.measure_startbench(writer, failures, method, reps, samples)
        failures.finish()

    def measure_serpensd(self, writer: ResultWriter, failures: Failures, method: str, reps: int,
                         samples: Path) -> None:
        """The method's starts through serpensd: pooled methods on the requester's CPU (the control
        thread's), on the other one, and where the kernel puts them; the others where serpensd starts
        every instance (the instance CPU)."""
        by: dict[str, list[dict[str, Any]]] = {}
        for placement in (("same", "other", "any") if method in POOLED else ("instance",)):
            try:
                by[placement] = serpensd_starts(self.config, method, placement, reps, samples, self.progress)
            except (NativeError, PlatformError) as exc:
                failures.add({"mechanism": method}, f"serpensd, placement {placement}: {exc}",
                             {"program": SERPENSD, "method": method, "placement": placement})
                return
        anyp = by.get("any", by.get("instance", []))
        ready = [r["ready_us"] for r in anyp]
        row = {
            **identity(method), "platform": SERPENSD, "design": TABLE4_DESIGNS[method],
            "workload": "fw", "n_instances": 1,
            "overhead_us": _pct(ready, 50), "startup_p99_us": _pct(ready, 99),
            "overhead_same_cpu_us": _pct([r["ready_us"] for r in by.get("same", [])], 50),
            "overhead_other_cpu_us": _pct([r["ready_us"] for r in by.get("other", [])], 50),
            "first_packet_p50_us": float("nan"),   # serpensd's reply ends at READY; its routes follow
            "routes_p50_us": _pct([r["routes_us"] for r in anyp if r["routes_us"] is not None], 50),
            "n_samples": len(anyp), "same_cpu_fraction": float("nan"),
        }
        writer.write(row)
        where = (f" (same CPU {row['overhead_same_cpu_us']:.1f}, "
                 f"other CPU {row['overhead_other_cpu_us']:.1f})" if method in POOLED else "")
        self.progress.say(f"{LABELS.get(method, method)} (serpensd): {row['overhead_us']:.1f} µs{where}")

    def measure_startbench(self, writer: ResultWriter, failures: Failures, method: str, reps: int,
                           samples: Path) -> None:
        by: dict[str, list[dict[str, Any]]] = {}
        for placement in ("same", "other", "any"):
            faults: list[dict[str, Any]] = []

            def on_record(rec: dict[str, Any], faults: list[dict[str, Any]] = faults) -> None:
                if rec["kind"] == "fault":
                    faults.append(rec)

            try:
                got = run_startbench(self.config, [
                    "--methods", method, "--instances", "1", "--reps", str(reps),
                    "--slow-reps", str(reps), "--pool", "1", "--placement", placement],
                    samples, self.progress, self.name, on_record)
            except NativeError as exc:
                cause = f"placement {placement}: " + (faults[0]["error"] if faults else str(exc))
                failures.add({"mechanism": method}, cause,
                             None if faults else {"method": method, "placement": placement})
                return
            by[placement] = [r for r in got if r["kind"] == "startup"]
        self.write_row(writer, method, by)

    def write_row(self, writer: ResultWriter, method: str, by: dict[str, list[dict[str, Any]]]) -> None:
        anyp = by["any"]
        ready = [r["ready_us"] for r in anyp]
        writer.write({
            **identity(method), "workload": "fw", "n_instances": 1,
            "overhead_us": _pct(ready, 50), "startup_p99_us": _pct(ready, 99),
            "overhead_same_cpu_us": _pct([r["ready_us"] for r in by["same"]], 50),
            "overhead_other_cpu_us": _pct([r["ready_us"] for r in by["other"]], 50),
            "first_packet_p50_us": _pct([r["first_packet_us"] for r in anyp], 50),
            "routes_p50_us": float("nan"),
            "n_samples": len(anyp),
            "same_cpu_fraction": float(np.mean([r["instance_cpu"] == r["requester_cpu"] for r in anyp])),
        })
        self.progress.say(f"{LABELS.get(method, method)}: {_pct(ready, 50):.1f} µs "
                          f"(same CPU {_pct([r['ready_us'] for r in by['same']], 50):.1f}, "
                          f"other CPU {_pct([r['ready_us'] for r in by['other']], 50):.1f})")

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
