"""`make figure-14` — latency during NF scaling (paper Sec. V-D, Fig. 14), and Serpens' split pause.

Set-up (the paper's): the synthetic NF (a per-flow|write counter state of ``figure14.state_size_b`` bytes,
read and written by every packet), one instance, ``figure14.flows`` concurrent flows at
``figure14.rate_mpps``, of which a latency stream of ``figure14.latency_kpps`` is spread over the same
flows, every one of its packets timestamped and traced (serpens-gen --latency-trace, docs/generator.md).
At ``out_at_s`` a second instance starts on the same server and half of the router's buckets (so half of
the flows) move to it through the design's scaling protocol (serpensd --scaling, docs/scaling.md); at
``in_at_s`` it stops again and its flows move back (scale-in, merge). Platforms: the scaling variants of
the design registry (OpenNF, S6, CHC, SNF: per-flow state in the instances, moved by the protocol) and
Serpens (state in shared memory, nothing moved), ``figure14.platforms``, interleaved across repetitions.

Rate: 1 Mpps is the paper's; before measuring, each steady-state data path (Serpens' shared tables and the
instance-private tables of the others) gets one probe trial per rate of ``probe_rates_mpps`` (at most
``rate_mpps``), highest first, and the first rate both carry without loss is used. This is a coarse
zero-loss probe, not MLRsearch; the probes and the chosen rate are in the sidecar.

Outputs:

* ``results/figure-14.csv``: per platform, repetition and latency bin (``bin_us``, by send time): the
  event the bin belongs to (``move``: ``out``, ``in``, or ``zero`` for Serpens' scale to zero at
  ``zero_at_s``, after which serpensd starts an instance on demand), its phase (``before``/``window``/
  ``after``; the window runs from serpensd taking up the request — for a scale-out the start of the new
  instance, which is part of scaling — to the move's end or its last state transfer, whichever is later;
  for ``zero`` to the new instance being ready; bins are aligned on the request), time since the trial
  began and since the request, mean/p50/max latency, packets sent, lost and reordered (per flow);
* ``results/figure-14-summary.csv``: per platform, repetition and move: the window's length, mean and max
  latency in it, the steady-state mean before it, packets held, lost and reordered in it, what the
  protocol did (flows, messages, bytes, its phases' µs), and Serpens' split/merge pause; plus one row per
  round of the split-pause measurement (``move`` = ``split-pause``: a NAT+MON instance started and stopped
  under load, each start splitting NAT's pool and MON's host table under the State Manager's pause);
* ``results/figure-14-trials.jsonl``: every trial (the probes too) with the generator's counters, the
  move records and serpensd's scaling counters;
* the plot: latency over time per platform around the scale-out, like the paper's.
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from experiments.base import Experiment
from harness import plots
from harness.config.errors import ConfigError
from harness.platforms import designs
from harness.platforms.base import PlatformError
from harness.results import ResultWriter
from harness.rig import rig
from harness.serpens.sfc import SfcSpec
from harness.traffic import latency_trace, profiles
from harness.trial_log import TrialLogWriter, trials_path

SFC = "scale"
ATTEMPTS = 3           # a trial whose generator fell behind its schedule is run again, at most this often
GAP_S = 0.25           # stats snapshots this far from a move (see _trial)
ZERO_WAIT_S = 0.5      # after a scale to zero, how long an on-demand start may take before stats are read
FRAME_SIZE_B = 64
LABELS = {"opennf-scaling": "OpenNF", "opennf-loss-free-scaling": "OpenNF (loss-free)", "s6-scaling": "S6",
          "chc-scaling": "CHC", "snf-scaling": "SNF", "serpens": "Serpens"}
IDENTITY = ["platform", "system", "design", "mechanism", "workload", "frame_size_b", "flows", "trial", "move",
            "phase"]
BIN_COLUMNS = ["time_ms", "time_from_move_ms", "sent_packets", "lost_packets", "reordered_packets",
               "latency_mean_us", "latency_p50_us", "latency_max_us", "offered_mpps", "generator_limited"]
SUMMARY_COLUMNS = ["platform", "system", "design", "mechanism", "workload", "frame_size_b", "flows", "trial",
                   "move", "offered_mpps", "window_ms", "latency_mean_us", "latency_max_us",
                   "steady_latency_mean_us", "held_packets", "hold_max_us", "lost_packets",
                   "moved_lost_packets", "reordered_packets", "tx_packets", "rx_packets", "flows_moved",
                   "protocol_msgs", "state_b", "move_total_us", "move_state_us", "split_pause_us",
                   "merge_pause_us", "split_wait_us", "merge_wait_us", "generator_limited"]


def sfc_spec(state_size_b: int, flows: int) -> SfcSpec:
    """The synthetic NF with its flow table sized to the experiment (4x its flows), not to its default 65 536:
    an instance-private table is mapped and populated when the instance starts, which is part of the
    scaling window, and Serpens' shared table is sized the same."""
    return SfcSpec(SFC, {}, ["synthetic"], {"synthetic": ("synthetic", {"state_size": str(state_size_b),
                                                                       "flows": str(4 * flows)})})


def mask_of(record: dict[str, Any]) -> set[int]:
    """The router buckets a move record's hex mask names (scale_control.c: 4 little-endian u64 words)."""
    words = bytes.fromhex(record.get("mask", ""))
    return {i for i in range(len(words) * 8) if words[i // 8] >> (i % 8) & 1}


def _pause_total(pauses: dict[str, Any], kind: str, part: str) -> tuple[int, float]:
    p = pauses.get(kind, {})
    n = int(p.get("count", 0))
    return n, float(p.get(part, 0.0)) * n


def pause_between(before: dict[str, Any], after: dict[str, Any], kind: str, part: str = "mean_us") -> float:
    """Mean pause (µs) of the ``kind`` ("split"/"merge") pauses between two stats snapshots (``part``
    "wait_mean_us": the share of it spent waiting for instances to finish a batch); NaN if none."""
    n0, t0 = _pause_total(before["state"]["pauses"], kind, part)
    n1, t1 = _pause_total(after["state"]["pauses"], kind, part)
    return (t1 - t0) / (n1 - n0) if n1 > n0 else math.nan


def held_total(stats: dict[str, Any]) -> tuple[int, float]:
    """Packets every instance ever held for a flow's state, and the longest hold (µs)."""
    inst = (stats.get("scaling") or {}).get("instances", {}) or {}
    return (sum(int(v.get("held", 0)) for v in inst.values()),
            max((float(v.get("hold_max_us", 0.0)) for v in inst.values()), default=0.0))


def window_of(event: dict[str, Any]) -> tuple[int, int]:
    """A scaling event's window in TSC: from serpensd taking up the request (``request_tsc``: for a scale-out
    the start of the new instance, which is part of scaling) to the move's end or its last state transfer,
    whichever is later (S6 pulls flows after the move's request returned)."""
    rec = event["record"]
    start = int(event.get("request_tsc") or rec["t_request_tsc"])
    return start, max(int(rec["t_end_tsc"]), int(rec.get("t_last_state_tsc") or 0), start)


class Figure14(Experiment):
    name = "figure-14"
    title = "Latency during NF scaling (paper Fig. 14)"
    columns = IDENTITY + BIN_COLUMNS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.f = self.config["figure14"]
        self.rate_mpps = float(self.f["rate_mpps"])
        self.probes: list[dict[str, Any]] = []
        self.log: TrialLogWriter | None = None

    def cores(self) -> dict[str, Any]:
        c = self.config["cores"]
        return {"generator": c["generator"], "platform_data_plane": c["platform"],
                "instances_and_controller": (f"share core {c['platform']} with serpensd (colocate: serpensd "
                                             "hands the core to whoever has a packet or a protocol message)"),
                "redis": "the run's redis-server (CHC's store), pinned with the platform"}

    def platforms(self) -> list[str]:
        names = list(self.f["platforms"])
        for n in names:
            designs.entry(n)   # an unknown name is one clear error before anything runs
        return names

    # --- one trial -----------------------------------------------------------------------------------

    def _trial(self, platform: str, rate_mpps: float, duration: float, trace: Path,
               moves: bool) -> dict[str, Any]:
        f = self.f
        latency_pps = float(f["latency_kpps"]) * 1e3
        load_pps = max(rate_mpps * 1e6 - latency_pps, 1.0)
        streams = profiles.load_with_latency_on_flows(load_pps, int(f["flows"]), latency_pps, FRAME_SIZE_B)
        out: dict[str, Any] = {"platform": platform, "rate_mpps": rate_mpps, "moves": {}}
        spec = sfc_spec(int(f["state_size_b"]), int(f["flows"]))
        with rig(self.config, platform, sfc=spec, latency_trace=trace) as r:
            p, gen = r.platform, r.generator
            out["before"] = p.stats()
            gen.reset()
            gen.add_streams(streams)
            gen.start(duration=duration)
            t0, t0_ns = time.monotonic(), time.monotonic_ns()
            errors: list[BaseException] = []

            def wait_until(at: float) -> None:
                time.sleep(max(0.0, t0 + at - time.monotonic()))

            # Only the two scaling requests happen near the moves: a stats request (serpensd builds a large
            # reply on the DUT's core, this process parses it on the generator's) would disturb what is
            # measured, so the snapshots are taken GAP_S away from either move.
            # The scaling requests are sent EARLY with the time to act (at_ns): serpensd's control thread
            # waits for it, so the harness does not run at the measured moment (sent at the moment itself,
            # the request's wake-up took the generator's core for ~250 µs right before the move, and the
            # catch-up burst after it landed in the window). Only the reply still wakes this thread on
            # the generator's core, after the move. (On the platform's core as SCHED_IDLE it starved for
            # seconds behind the busy data plane; at normal priority there it would take the DUT's core.)
            def scale() -> None:
                try:
                    out_at, in_at = float(f["out_at_s"]), float(f["in_at_s"])
                    zero_at = float(f["zero_at_s"])
                    wait_until(out_at - GAP_S)
                    pre = p.stats()
                    started = p.start_instance(SFC, at_ns=t0_ns + int(out_at * 1e9))
                    wait_until(in_at - GAP_S)
                    mid = p.stats()   # the out-move's final record: S6 pulls flows after it returned
                    stopped = p.scale_in(int(started["instance"]), at_ns=t0_ns + int(in_at * 1e9))
                    wait_until(in_at + GAP_S)
                    end = p.stats()
                    last = lambda s: (s.get("scaling") or {}).get("last_move") or {}   # noqa: E731
                    out["moves"] = {
                        "out": {"record": last(mid), "reply_moves": started.get("moves", []), "pre": pre,
                                "post": mid, "end": mid, "request_tsc": started.get("t_request_tsc")},
                        "in": {"record": last(end), "reply_moves": stopped.get("moves", []), "pre": mid,
                               "post": end, "end": end, "request_tsc": stopped.get("t_request_tsc")}}
                    if not p.design.moves_state:
                        out["moves"]["zero"] = self._to_zero(p, end, t0_ns, zero_at, wait_until)
                except BaseException as exc:   # reported after the trial: the generator must finish first
                    errors.append(exc)

            worker = threading.Thread(target=scale, daemon=True) if moves else None
            if worker:
                worker.start()
            gen.wait_on_traffic(timeout=duration + 60.0)
            result = gen.get_stats()
            if worker:
                worker.join(timeout=60.0)
            out["after"] = p.stats()
            if errors:
                raise PlatformError(f"{platform}: scaling during the trial failed: {errors[0]}")
        out["result"] = result
        return out

    def _to_zero(self, p: Any, pre: dict[str, Any], t0_ns: int, at: float, wait_until: Any) -> dict[str, Any]:
        """Scale to zero under load (only where state outlives its instances: every instance reaches it):
        the SFC's last instance stops at ``at``; packets then find no instance and are dropped until
        serpensd starts one on demand (auto-start). The event's window runs from the stop to the new
        instance being ready."""
        ready = lambda s: [i for i in s.get("instances", [])   # noqa: E731
                           if i.get("sfc_name") == SFC and i.get("state") == "ready"]
        last = ready(pre)
        if len(last) != 1:
            raise PlatformError(f"scale to zero: expected one instance of {SFC!r} left, found {len(last)}")
        stopped = p.scale_in(int(last[0]["instance"]), at_ns=t0_ns + int(at * 1e9))
        wait_until(at + ZERO_WAIT_S)
        end = p.stats()
        again = ready(end)
        if not again:
            raise PlatformError(f"scale to zero: no instance of {SFC!r} came back within {ZERO_WAIT_S} s")
        t_req = int(stopped["t_request_tsc"])
        record = {"t_request_tsc": t_req, "t_end_tsc": max(int(again[0]["ready_tsc"]), t_req),
                  "t_last_state_tsc": 0, "total_us": math.nan, "state_us": math.nan,
                  "mask": "ff" * (256 // 8)}   # every flow lost its instance
        return {"record": record, "reply_moves": stopped.get("moves", []), "pre": pre, "post": end,
                "end": end, "request_tsc": t_req}

    # --- the rate ------------------------------------------------------------------------------------

    def _probe_rate(self) -> float:
        """The highest probe rate (<= rate_mpps) at which both steady-state data paths lose nothing."""
        paths = [n for n in ("serpens", next((p for p in self.platforms() if p != "serpens"), None)) if n]
        rates = sorted((float(x) for x in self.f["probe_rates_mpps"] if float(x) <= self.rate_mpps),
                       reverse=True) or [self.rate_mpps]
        trace = Path(self.config["results"]["dir"]) / ".figure-14-probe.trace"
        for rate in rates:
            ok = True
            for name in paths:
                self.progress.say(f"probe: {name} at {rate:g} Mpps")
                t = self._trial(name, rate, float(self.f["probe_s"]), trace, moves=False)
                res = t["result"]
                self.probes.append({"platform": name, "rate_mpps": rate, "tx": res.tx_packets,
                                    "rx": res.rx_packets, "loss_ratio": res.loss_ratio})
                if self.log:
                    self.log.trial(self.log.new_point_id(), 0, "probe", rate * 1e6, float(self.f["probe_s"]),
                                   res, platform=name)
                ok &= res.loss_packets == 0
            if ok:
                return rate
        return rates[-1]

    # --- rows ----------------------------------------------------------------------------------------

    def _rows(self, t: dict[str, Any], rep: int, trace: Path) -> tuple[list[dict[str, Any]],
                                                                      list[dict[str, Any]]]:
        platform = t["platform"]
        tr = latency_trace.read(trace)
        hz = float(tr.tsc_hz)
        bin_us = float(self.f["bin_us"])
        pk = latency_trace.packets(tr)
        t0 = int(tr.tsc_start) or int(pk["tx_tsc"].iloc[0])
        ident = {**designs.row_identity(platform, "scaling"), "platform": platform, "workload": "synthetic",
                 "frame_size_b": FRAME_SIZE_B, "flows": int(self.f["flows"]), "trial": rep}
        windows = {m: window_of(v) for m, v in t["moves"].items() if v.get("record")}
        to_ms = lambda tsc: (tsc - t0) * 1e3 / hz   # noqa: E731 (a unit conversion)
        # each bin belongs to the nearest scaling event: from halfway after the previous one's window to
        # halfway before the next one's
        order = sorted(windows, key=lambda m: windows[m][0])
        bounds = [-math.inf] + [(to_ms(windows[a][1]) + to_ms(windows[b][0])) / 2
                                for a, b in zip(order, order[1:], strict=False)] + [math.inf]
        territory = {m: (bounds[i], bounds[i + 1]) for i, m in enumerate(order)}
        bins_out: list[dict[str, Any]] = []
        for move, (w0_tsc, w1_tsc) in windows.items():
            # bins aligned on the event's start: its first window bin begins with the request
            df = latency_trace.bins(tr, bin_us, t0_tsc=w0_tsc)
            w_ms = (w1_tsc - w0_tsc) * 1e3 / hz
            offset = to_ms(w0_tsc)
            lo, hi = territory[move]
            for b in df.itertuples(index=False):
                at = b.time_ms + offset   # since the trial's start
                if not lo <= at < hi:
                    continue
                phase = "before" if b.time_ms < 0 else "window" if b.time_ms < max(w_ms, 1e-9) else "after"
                bins_out.append({**ident, "move": move, "phase": phase, "time_ms": round(at, 3),
                                 "time_from_move_ms": round(b.time_ms, 3), "sent_packets": int(b.sent),
                                 "lost_packets": int(b.lost), "reordered_packets": int(b.reordered),
                                 "latency_mean_us": b.latency_mean_us, "latency_p50_us": b.latency_p50_us,
                                 "latency_max_us": b.latency_max_us, "offered_mpps": t["rate_mpps"],
                                 "generator_limited": not t["result"].reached_intended_load})
        rows = pd.DataFrame(bins_out)
        summary: list[dict[str, Any]] = []
        res = t["result"]
        for move, v in t["moves"].items():
            rec = v.get("record") or {}
            if not rec or rows.empty:
                continue
            mine = rows[rows["move"] == move]
            win, before = mine[mine["phase"] == "window"], mine[mine["phase"] == "before"]
            before = before[before["time_ms"] >= 200.0]   # past the first instance's warm-up
            w0, w1 = windows[move]
            lo_ms, hi_ms = territory[move]
            tx_ms = (pk["tx_tsc"].astype(np.float64) - t0) * 1e3 / hz
            mine_pk = (tx_ms >= lo_ms) & (tx_ms < hi_ms)   # packets sent in this event's part of the trial
            moved = np.array(sorted(mask_of(rec)), dtype=np.int64)
            in_win = (pk["tx_tsc"].astype(np.float64) >= w0) & (pk["tx_tsc"].astype(np.float64) <= w1)
            buckets = pk["flow_id"].to_numpy().astype(np.int64) & 255
            of_moved = pd.Series(np.isin(buckets, moved), index=pk.index)
            steady = float(before["latency_mean_us"].mean()) if len(before) else math.nan
            h0, _ = held_total(v["pre"])
            h1, hmax = held_total(v["end"])
            summary.append({
                **{k: ident[k] for k in ("platform", "system", "design", "mechanism", "workload",
                                         "frame_size_b", "flows", "trial")},
                "move": move, "offered_mpps": t["rate_mpps"],
                "window_ms": (w1 - w0) * 1e3 / hz,
                "latency_mean_us": float(win["latency_mean_us"].mean()) if len(win) else math.nan,
                "latency_max_us": float(win["latency_max_us"].max()) if len(win) else math.nan,
                "steady_latency_mean_us": steady,
                "held_packets": max(0, h1 - h0), "hold_max_us": hmax,
                "lost_packets": int(win["lost_packets"].sum()),
                "moved_lost_packets": int((~pk["received"] & of_moved & mine_pk).sum()),
                "reordered_packets": int(pk.loc[of_moved | in_win, "reordered"].sum()),
                "tx_packets": res.tx_packets, "rx_packets": res.rx_packets,
                "flows_moved": int(rec.get("flows", 0)), "protocol_msgs": int(rec.get("msgs", 0)),
                "state_b": int(rec.get("bytes", 0)),
                "move_total_us": float(rec.get("total_us", math.nan)),
                "move_state_us": float(rec.get("state_us", math.nan)),
                "split_pause_us": pause_between(v["pre"], v["post"], "split") if move == "out" else math.nan,
                "merge_pause_us": pause_between(v["pre"], v["post"], "merge") if move == "in" else math.nan,
                "generator_limited": not res.reached_intended_load})
        return bins_out, summary

    # --- Serpens' split pause ------------------------------------------------------------------------

    def _split_pause(self, summary: ResultWriter, rate_mpps: float) -> None:
        """Start and stop a NAT+MON instance ``split_rounds`` times under load; each start splits NAT's pool
        (release) and replicates MON's hosts (eventual) under the State Manager's pause."""
        rounds = int(self.f["split_rounds"])
        spec = SfcSpec("monnat", {}, ["mon", "nat"], {})
        duration = 0.5 + rounds * 0.15
        streams = profiles.udp_flows(rate_mpps * 1e6, FRAME_SIZE_B, int(self.f["flows"]))
        samples: list[tuple[float, float, float, float]] = []
        with rig(self.config, "serpens", sfc=spec) as r:
            p, gen = r.platform, r.generator
            gen.reset()
            gen.add_streams(streams)
            gen.start(duration=duration)
            time.sleep(0.3)
            for _ in range(rounds):
                a = p.stats()
                slot = int(p.start_instance("monnat")["instance"])
                b = p.stats()
                p.scale_in(slot)
                c = p.stats()
                samples.append((pause_between(a, b, "split"), pause_between(b, c, "merge"),
                                pause_between(a, b, "split", "wait_mean_us"),
                                pause_between(b, c, "merge", "wait_mean_us")))
            gen.wait_on_traffic(timeout=duration + 60.0)
            res = gen.get_stats()
        if self.log:
            self.log.trial(self.log.new_point_id(), 0, "split-pause", rate_mpps * 1e6, duration, res,
                           platform="serpens", pauses=samples)
        ident = {**designs.row_identity("serpens", "scaling"), "platform": "serpens", "workload": "mon,nat",
                 "frame_size_b": FRAME_SIZE_B, "flows": int(self.f["flows"])}
        # one trial (one load, ``rounds`` pauses): the claim takes the median pause and shows the longest
        for split, merge, split_wait, merge_wait in samples:
            summary.write({**ident, "trial": 0, "move": "split-pause", "offered_mpps": rate_mpps,
                           "split_pause_us": split, "merge_pause_us": merge, "split_wait_us": split_wait,
                           "merge_wait_us": merge_wait, "tx_packets": res.tx_packets,
                           "rx_packets": res.rx_packets})

    # --- the run -------------------------------------------------------------------------------------

    def check(self) -> None:
        self.platforms()
        f = self.f
        out_at, in_at, duration = float(f["out_at_s"]), float(f["in_at_s"]), float(f["duration_s"])
        zero = float(f["zero_at_s"])
        if not (in_at + 2 * GAP_S <= zero and zero + ZERO_WAIT_S <= duration):
            raise ConfigError(f"figure14: want in_at_s + {2 * GAP_S} s <= zero_at_s and zero_at_s + "
                              f"{ZERO_WAIT_S} s <= duration_s; got in_at_s {in_at}, zero_at_s {zero}, "
                              f"duration_s {duration}")
        if not (GAP_S <= out_at and out_at + 2 * GAP_S <= in_at and in_at + GAP_S <= duration):
            raise ConfigError(f"figure14: want {GAP_S} s <= out_at_s, out_at_s + {2 * GAP_S} s <= in_at_s "
                              f"and in_at_s + {GAP_S} s <= duration_s (stats are read that far from a move); "
                              f"got out_at_s {out_at}, in_at_s {in_at}, duration_s {duration}")

    def measure(self, writer: ResultWriter) -> None:
        summary_path = self.csv_path.with_name(f"{self.name}-summary.csv")
        trace = Path(self.config["results"]["dir"]) / ".figure-14.trace"
        with TrialLogWriter(trials_path(self.csv_path), writer.run_id) as log, \
                ResultWriter(summary_path, self.name, SUMMARY_COLUMNS, self.config, cores=self.cores(),
                             extra={"quick": self.quick}) as summary:
            self.log = log
            rate = self._probe_rate()
            for w in (writer, summary):
                w.note("rate_mpps_asked", self.rate_mpps)
                w.note("rate_mpps_used", rate)
                w.note("rate_probes", self.probes)
            self.progress.say(f"load {rate:g} Mpps ({self.f['flows']} flows, {self.f['latency_kpps']} kpps "
                              "traced)")
            names = self.platforms()
            reps = self.repetition_count()
            total, done = reps * len(names), 0
            for rep in range(reps):            # interleaved: every platform once per repetition
                for name in names:
                    done += 1
                    self.progress.say(f"[{done}/{total}] {name}, repetition {rep + 1}")
                    point = log.new_point_id()
                    for attempt in range(ATTEMPTS):
                        try:
                            t = self._trial(name, rate, float(self.f["duration_s"]), trace, moves=True)
                        except PlatformError as exc:
                            log.fault(point, exc)
                            raise
                        res = t["result"]
                        kept = res.reached_intended_load or attempt == ATTEMPTS - 1
                        log.trial(point, attempt, "scaling", rate * 1e6, float(self.f["duration_s"]), res,
                                  platform=name, repetition=rep, kept=kept,
                                  moves={m: v.get("record") for m, v in t["moves"].items()},
                                  reply_moves={m: v.get("reply_moves") for m, v in t["moves"].items()},
                                  scaling=(t["after"].get("scaling") or {}))
                        if kept:
                            break
                        # the generator was descheduled (this VM stalls): the bins would time the stall,
                        # not the platform; the trial is logged and run again
                        self.progress.say(f"  {name}: the generator did not reach its load "
                                          f"({res.tx_packets} of {res.intended_packets} packets); again")
                    bins_rows, summ = self._rows(t, rep, trace)
                    for row in bins_rows:
                        writer.write(row)
                    for row in summ:
                        summary.write(row)
            self.progress.say("split pause (Serpens, NAT+MON)")
            self._split_pause(summary, rate)
        trace.unlink(missing_ok=True)
        (Path(self.config["results"]["dir"]) / ".figure-14-probe.trace").unlink(missing_ok=True)

    def plot(self, df: pd.DataFrame, path: Path) -> None:
        figure_14_figure(df, path)


def figure_14_figure(df: pd.DataFrame, path: Path) -> None:
    """Latency over time around the scale-out, per platform (the paper's Fig. 14): the mean latency of each
    bin, first repetition, from 20 ms before the move to 60 ms after it; log scale."""
    sns.set_theme(style="whitegrid", context="paper")
    fig, ax = plt.subplots(figsize=(7, 3.4))
    out = df[(df["move"] == "out") & (df["trial"] == df["trial"].min())]
    out = out[(out["time_from_move_ms"] >= -20) & (out["time_from_move_ms"] <= 60)]
    for name in [p for p in LABELS if p in set(out["platform"])]:
        d = out[out["platform"] == name].sort_values("time_from_move_ms")
        ax.plot(d["time_from_move_ms"], d["latency_mean_us"], label=LABELS.get(name, name), lw=1.2)
    ax.axvline(0, color="0.3", ls="--", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("time since the scale-out request (ms)")
    ax.set_ylabel("mean latency per bin (µs)")
    ax.set_title("Latency while half of the flows move to a new instance")
    ax.legend(fontsize=7)
    plots.save(fig, path, "results/figure-14.csv")
