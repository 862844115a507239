"""Tidy results: one CSV row per measured point, units in column names, a JSON sidecar with run metadata.

The result schema lives here and only here (vswitchperf's results_constants idea): every column any
experiment writes is declared in :data:`COLUMNS` with its meaning. Rows are appended and flushed one at a
time, so an interrupted run keeps every point it already measured; the sidecar says whether the run
completed.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness import native, sysinfo, tsc

# name → meaning. Identity columns first, then metrics (unit in the name).
COLUMNS: dict[str, str] = {
    # identity
    "experiment": "experiment target, e.g. limit, figure-12",
    "run_id": "identifier of the run that produced the row (also the sidecar's run_id)",
    "platform": "what ran the row: a registered platform (--platform: wire or a design name), or the tool "
                "of a row measured outside them (startbench, machine)",
    "system": "the paper's system the row stands for: serpens, fission, snf, sand, sock, catalyzer, wire, "
              "...; for a single-axis variant the system whose mechanism it borrows",
    "design": "the design's name in the registry (harness/platforms/designs.py), e.g. serpens, fission, "
              "fission-state, sand-chaining; empty for rows that ran no design (wire, startbench)",
    "mechanism": "the value on the axis the experiment compares (Fig. 12: remote, snf, serpens; Fig. 13: "
                 "global-proxy, local-proxy, consolidated; Fig. 11, Table IV: exec, fork, load, serpens, "
                 "...); empty when whole systems are compared",
    "workload": "NF or SFC: fw, mon, nat, ids, vpn, 'fw,mon,nat', synthetic, forward",
    "frame_size_b": "Ethernet frame size including FCS, bytes",
    "flows": "number of distinct 5-tuples in the load stream (the fixed flows)",
    "flows_workload": "fixed: only the `flows` 5-tuples; churn: new flows all the time too (new_flows_per_s)",
    "new_flows_per_s": "new 5-tuples per second in every trial, part of the offered load (0: fixed workload)",
    "chain_length": "number of NFs in the chain",
    "n_instances": "number of instances",
    "n_nfs": "number of deployed NFs",
    "load_fraction": "offered load as a fraction of the measured PDR",
    "trial": "repetition index of this point (0-based)",
    "generator": "traffic generator that measured the row",
    "generator_limited": "true when the generator could not offer the rate asked for (the number is a floor)",
    # throughput
    "ndr_mpps": "NDR goal (search.goals.ndr: loss ratio 0): MLRsearch conditional throughput, Mpps",
    "pdr_mpps": "PDR goal (search.goals.pdr: loss ratio 0.001): MLRsearch conditional throughput, Mpps",
    "ndr_gbps": "NDR as L1 bit rate (frame + 20 B preamble/IFG), Gbit/s",
    "pdr_gbps": "PDR as L1 bit rate, Gbit/s",
    "offered_mpps": "rate asked of the generator (load + latency streams), Mpps",
    "tx_mpps": "rate the generator actually sent, Mpps",
    "rx_mpps": "rate that came back, Mpps",
    "throughput_mpps": "rate that came back in a fixed-rate trial, Mpps",
    "tx_packets": "packets sent in the trial",
    "rx_packets": "packets received in the trial",
    "loss_packets": "tx_packets - rx_packets",
    "loss_ratio": "loss_packets / tx_packets",
    "search_trials": "number of trials the search used (the warm-up included)",
    # the search (MLRsearch, docs/search.md): per goal, the conditional throughput and its relevant bounds
    "ndr_lower_bound_mpps": "NDR goal: relevant lower bound (intended load), Mpps",
    "ndr_upper_bound_mpps": "NDR goal: relevant upper bound (intended load), Mpps; empty: max load passed",
    "ndr_lower_bad_fraction": "NDR goal: share of the lower bound's trial seconds that missed the goal",
    "ndr_upper_bad_fraction": "NDR goal: share of the upper bound's trial seconds that missed the goal",
    "ndr_generator_limited": "NDR goal: the generator, not the DUT, may have set a bound (docs/search.md)",
    "pdr_lower_bound_mpps": "PDR goal: relevant lower bound (intended load), Mpps",
    "pdr_upper_bound_mpps": "PDR goal: relevant upper bound (intended load), Mpps; empty: max load passed",
    "pdr_lower_bad_fraction": "PDR goal: share of the lower bound's trial seconds that missed the goal",
    "pdr_upper_bad_fraction": "PDR goal: share of the upper bound's trial seconds that missed the goal",
    "pdr_generator_limited": "PDR goal: the generator, not the DUT, may have set a bound (docs/search.md)",
    "search_time_s": "wall time of the search (trials and their overheads), s",
    "search_note": "what the search wants a reader to know (empty when uneventful)",
    "point_id": "this row's point in the trial log: every trial behind the row carries the same point_id",
    "trials_file": "the trial log (JSON lines) that holds every trial of this row, relative to the CSV",
    "latency_trial_valid": "the latency trial lost at most the PDR goal and the generator reached its load",
    "generator_skipped_ratio": "latency trial: share of the schedule the generator skipped (stalled, slow)",
    # where the CPU goes (busy TSC time around work, never around idle polling), latency trial
    "gateway_ns_per_packet": "gateway/router (or the wire forwarder) busy time per packet it handled, ns",
    "instance_ns_per_packet": "instances' busy time per packet (NFs, Chainer, local state, remote waits), ns",
    "proxy_ns_per_packet": "chaining proxies' busy time per packet (platforms that have them), ns",
    "remote_state_ns_per_packet": "of instance time, waiting on the remote state store per packet, ns",
    "instance_capacity_mpps": "one instance alone on one core: 1e3 / instance_ns_per_packet, Mpps",
    "bottleneck": "the stage whose capacity bounded the measured throughput (generator, core, instance...)",
    "instance_crashes": "instances that crashed and were restarted during the point's trials (their losses "
                        "are in loss_packets; a latency trial with one is not valid)",
    "instance_crash_losses": "packets the crashed instances' SFCs lost while restarting, in all the point's "
                             "trials (no instance, or left in the dead one's ring; serpensd's counters)",
    # the machine's own floor (harness doctor / make limit): a pinned busy loop per vCPU
    "cpu": "the vCPU a row is about",
    "probe_s": "how long the busy-loop probe ran, s",
    "floor_lost_ratio": "share of the probe's time lost in gaps >= 10 µs",
    "floor_max_gap_us": "longest gap the busy loop saw, µs",
    "floor_gaps_10us_100us_per_s": "gaps of 10-100 µs per second",
    "floor_gaps_100us_1ms_per_s": "gaps of 0.1-1 ms per second",
    "floor_gaps_1ms_5ms_per_s": "gaps of 1-5 ms per second",
    "floor_gaps_over_5ms_per_s": "gaps of 5 ms or more per second",
    "steal_ratio": "steal time over the probe (from /proc/stat) as a share of the vCPU's time",
    # latency
    "latency_min_us": "latency minimum, µs",
    "latency_mean_us": "latency mean, µs",
    "latency_p50_us": "latency median, µs",
    "latency_p99_us": "latency 99th percentile, µs",
    "latency_p999_us": "latency 99.9th percentile, µs",
    "latency_max_us": "latency maximum, µs",
    "latency_packets": "latency-stream packets received (the histogram's sample count)",
    "latency_histogram": "the HdrHistogram of the latency stream, encoded (base64)",
    # startup, memory, overheads (later experiments)
    "startup_p50_us": "instance start-up latency (request → ready to process packets), median, µs",
    "startup_p99_us": "instance start-up latency, 99th percentile, µs",
    "startup_all_p50_us": "time until all instances started together are ready, median over rounds, µs",
    "first_packet_p50_us": "request → the instance's first packet processed, median, µs",
    "routes_p50_us": "serpensd: READY → routes published (a first batch can reach the instance), median, µs",
    "first_packet_p99_us": "request → the instance's first packet processed, 99th percentile, µs",
    "n_samples": "number of measurements the row summarises",
    "same_cpu_fraction": "fraction of the samples in which the started instance ran on the requester's CPU",
    "overhead_same_cpu_us": "scaling overhead with the new instance on the requester's CPU, median, µs",
    "overhead_other_cpu_us": "scaling overhead with the new instance on the other CPU, median, µs",
    "n_processes": "processes counted in memory_mb or processes_pss_kb (the orchestrator included)",
    "image_kb": "NF images in shared memory (memfd pages), KiB",
    "memory_mb": "memory (PSS) of every process involved, MiB",
    "memory_per_nf_kb": "memory per deployed NF, KiB",
    "overhead_us": "scaling overhead of one mechanism, µs",
    "processing_us": "packet processing time per batch (NFs, Chainer, local state; no remote access), µs",
    "state_access_us": "remote state access time per NF batch (pipelined Redis round trips), µs",
    "batch_packets": "mean packets per batch an instance dequeued",
    "startup_us": "instance start-up time, µs",
    "delivery_us": "packet delivery time between two NFs, µs per batch: one NF's hand-over to the next one's "
                   "start, through the chaining mechanism's proxy",
    "delivery_batches": "batches behind delivery_us (those that came from another NF)",
    "latency_diff_us": "mean end-to-end latency of the row's chain less that of the same chain in one "
                       "instance at the same rate (consolidated), µs: every proxy hop of the chain",
    "time_s": "time since the start of the trial, s",
    "split_pause_us": "packet processing paused while global/write state was split or replicated, µs",
    # Fig. 14: latency during scaling (experiments/figure_14.py, docs/scaling.md)
    "move": "which move of flows a row belongs to: out (scale-out: half of the flows to a new instance), in "
            "(scale-in: back), split-pause (Serpens' split pause rounds)",
    "phase": "the row's time relative to its move: before, window (request to last state transfer), after",
    "time_ms": "start of the latency bin (by send time) since the trial's first packet, ms",
    "time_from_move_ms": "start of the latency bin since the move was requested, ms",
    "sent_packets": "latency-stream packets sent in the bin",
    "lost_packets": "of those (or of the window's), never received",
    "elapsed_s": "soak: seconds since the soak's first trial began, at this trial's end",
    "counted_packets": "packets dropped in the trial and counted (DUT rx ring, port, gateway, SFCs, NFs)",
    "unaccounted_packets": "lost packets no platform counter accounts for (lost - counted, >= 0)",
    "serpensd_pss_kb": "serpensd's PSS after the trial, KiB",
    "processes_pss_kb": "PSS of serpensd and every process below it after the trial, KiB",
    "reordered_packets": "received after a later-sent packet of the same flow",
    "moved_lost_packets": "latency-stream packets of the moved flows never received, sent in the part of the "
                          "trial nearest to this event",
    "window_ms": "the move's window: its request to its end or its last state transfer, ms",
    "steady_latency_mean_us": "mean latency of the bins before the move (past the first 200 ms), µs",
    "held_packets": "packets instances held while their flow's state was on its way",
    "hold_max_us": "longest a packet was held, µs",
    "flows_moved": "flows whose state the protocol moved",
    "protocol_msgs": "messages (ring messages, store commands) the protocol sent for the move",
    "state_b": "state bytes the protocol moved (keys and values)",
    "move_total_us": "the move from its request to its end (the control thread's view), µs",
    "move_state_us": "from the route change to the state's arrival (or the old instance's readiness), µs",
    "merge_pause_us": "packet processing paused while global/write state was merged back, µs",
    "split_wait_us": "of split_pause_us, waiting for instances to finish the batch they were in, µs",
    "merge_wait_us": "of merge_pause_us, waiting for instances to finish the batch they were in, µs",
}


class SchemaError(ValueError):
    pass


class PointsFailed(RuntimeError):
    """Some points of a run failed and the others were measured: every measured point's row is written, and
    each failed point is recorded with its cause by the experiment (a ``fault`` line in its JSONL, the
    sidecar's ``failed_points``); no row of a failed point is written. The message is one line."""


def run_id(experiment: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now()
    return f"{now:%Y%m%d-%H%M%S}-{experiment}"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class ResultWriter:
    """Writes one CSV (row by row, flushed) and its JSON sidecar ``<name>.json``.

    Use as a context manager: the sidecar is written at the start with ``status: running`` and rewritten at
    the end with ``complete``, or ``interrupted`` / ``failed`` if the body raised.
    """

    def __init__(self, csv_path: Path, experiment: str, columns: Iterable[str], config: Mapping[str, Any],
                 cores: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None) -> None:
        self.csv_path = Path(csv_path)
        self.sidecar_path = self.csv_path.with_suffix(".json")
        self.experiment = experiment
        self.run_id = run_id(experiment)
        cols = ["experiment", "run_id", *[c for c in columns if c not in ("experiment", "run_id")]]
        unknown = [c for c in cols if c not in COLUMNS]
        if unknown:
            raise SchemaError(f"columns not declared in harness.results.COLUMNS: {unknown}")
        self.columns = cols
        self.meta: dict[str, Any] = {
            "run_id": self.run_id,
            "experiment": experiment,
            "csv": str(self.csv_path),
            "status": "running",
            "started": _now(),
            "finished": None,
            "command": " ".join(sys.argv),
            "columns": {c: COLUMNS[c] for c in cols},
            "cores": dict(cores or {}),
            "host": sysinfo.host_facts(),
            # the TSC frequency the generator converted ticks with, and its source (harness/tsc.py)
            "tsc": tsc.facts(),
            "software": sysinfo.software_versions(),
            "git": sysinfo.git_revision(),
            "config": dict(config),
            **dict(extra or {}),
        }
        self.rows = 0
        self._file: Any = None
        self._writer: csv.DictWriter[str] | None = None

    def __enter__(self) -> ResultWriter:
        # what the machine was doing: compared with a second snapshot at the end (steal, load, others)
        self._machine_before = sysinfo.cpu_times_snapshot()
        self._started_at = time.time()
        self.meta["machine_at_start"] = {"loadavg": self._machine_before.loadavg}
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.csv_path, "w", newline="")  # noqa: SIM115 — closed in __exit__
        self._writer = csv.DictWriter(self._file, fieldnames=self.columns, extrasaction="raise")
        self._writer.writeheader()
        self._file.flush()
        self._write_sidecar()
        return self

    def write(self, row: Mapping[str, Any]) -> None:
        assert self._writer is not None, "use ResultWriter as a context manager"
        extra = [k for k in row if k not in self.columns]
        if extra:
            raise SchemaError(f"{self.csv_path}: row has columns not declared for this file: {extra}")
        full = {"experiment": self.experiment, "run_id": self.run_id, **row}
        self._writer.writerow({k: _cell(v) for k, v in full.items()})
        self._file.flush()
        os.fsync(self._file.fileno())
        self.rows += 1

    def note(self, key: str, value: Any) -> None:
        """Add something learnt during the run (e.g. the generator version) to the sidecar."""
        self.meta[key] = value
        self._write_sidecar()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if self._file:
            self._file.close()
        if exc_type is None:
            self.meta["status"] = "complete"
        elif issubclass(exc_type, KeyboardInterrupt):
            self.meta["status"] = "interrupted"
        else:
            self.meta["status"] = "failed"
            self.meta["error"] = f"{exc_type.__name__}: {exc}"
        self.meta["finished"] = _now()
        self.meta["rows"] = self.rows
        try:
            self.meta["machine_during_run"] = sysinfo.run_facts(self._machine_before,
                                                                sysinfo.cpu_times_snapshot())
            self.meta["processes"] = process_summary(native.started_processes(since=self._started_at))
        except (OSError, ValueError) as exc:   # /proc unreadable: say so rather than lose the sidecar
            self.meta["machine_during_run"] = {"error": str(exc)}
        self._write_sidecar()

    def _write_sidecar(self) -> None:
        tmp = self.sidecar_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.meta, indent=2, default=str) + "\n")
        tmp.replace(self.sidecar_path)


def process_summary(started: Mapping[int, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The processes a run started, grouped by role and by the CPUs they were *read back* on (one
    generator per trial would otherwise be hundreds of entries): count, configured and actual CPUs,
    threads allowed elsewhere (DPDK's control threads), and the pids of the first few."""
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for pid, e in sorted(started.items()):
        actual = tuple(e.get("cpus_allowed") or ())
        key = (e.get("role"), tuple(e.get("configured_cpus") or ()), actual)
        g = groups.setdefault(key, {"role": e.get("role"), "command": e.get("command"),
                                    "configured_cpus": e.get("configured_cpus"),
                                    "cpus_allowed": list(actual) if actual else None, "count": 0,
                                    "pids": [], "other_threads": e.get("other_threads") or [],
                                    "children": {}})
        g["count"] += 1
        if len(g["pids"]) < 5:
            g["pids"].append(pid)
        for child, info in (e.get("children") or {}).items():
            if len(g["children"]) < 8:
                g["children"][str(child)] = info
    for g in groups.values():
        configured, actual = g["configured_cpus"], g["cpus_allowed"]
        g["as_configured"] = (None if not configured or actual is None
                              else sorted(configured) == sorted(actual))
    return list(groups.values())


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    return value
