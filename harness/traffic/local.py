"""LocalGenerator: the built-in DPDK generator (native/generator, ``serpens-gen``) behind the generator API.

One trial is one ``serpens-gen`` process: the streams (``STLStream.to_json()``, exactly what a TRex server
would get) go into a file, the process connects to the platform over memif, sends for the duration, lets the
counters settle, writes a JSON report and exits. A process per trial costs one EAL init (~0.1–0.2 s) and buys
a clean state for every trial; the platform stays up across trials.

The report says what the schedule called for (``intended_packets``) and what the generator skipped instead of
firing a backlog at the platform after its own stall (``skipped_stall_packets``) or because it could not keep
the rate (``skipped_slow_packets``); only the latter makes a trial ``short`` (docs/generator.md, "Pacing").

Per-packet latency trace: set ``latency_trace`` (a path; constructor argument or attribute) and every trial
after that runs ``serpens-gen --latency-trace PATH`` and hands the path back as
``TrialResult.latency_trace``; read it with ``harness.traffic.latency_trace``. Each trial writes the same
path (the file of an earlier trial is removed when the next starts), so give a new path per trial to keep
them all. ``latency_trace_max`` (default: serpens-gen's, 4 Mi records of each kind) bounds its memory.
Off by default.

Jumbo frames (longer than memif's default 2048-byte buffer, up to serpens-gen's 9600): the memif client's
``bsize`` is raised to hold the longest frame in one buffer (:func:`memif_vdevs`). With chained buffers, DPDK
22.11's memif PMD corrupts the stream once its ring wraps: its copy-mode TX never clears the "next" flag of a
packet's first descriptor, so a one-buffer packet landing on a slot that last carried the middle of a jumbo
frame is chained to the packets after it (measured: a 9000 B + 64 B mix through the wire came back as
9056 B, 300 B ... frames; with ``bsize=9600`` every frame was intact). docs/generator.md, "Jumbo frames".
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import tsc
from harness.config import Config
from harness.native import (
    NativeError,
    RunDir,
    binary,
    die_with_parent,
    eal_args,
    failure_cause,
    popen,
    record_started,
    terminate,
)
from harness.traffic.base import GeneratorError, TrafficGenerator, TrialResult, stream_json
from harness.traffic.latency import histogram, stats_from_histogram

MEMIF_DEFAULT_BUFFER = 2048   # bytes: the memif PMD's default bsize, and serpens-gen's default mbuf room


def longest_frame(streams: Sequence[dict[str, Any]]) -> int:
    """The longest template (bytes, without FCS) of the streams' ``packet.binary``; 0 if none decodes."""
    longest = 0
    for s in streams:
        try:
            longest = max(longest, len(base64.b64decode(s["packet"]["binary"], validate=False)))
        except (KeyError, TypeError, ValueError, binascii.Error):
            continue   # serpens-gen refuses it with the stream's index and field
    return longest


def memif_vdevs(vdevs: Sequence[str], frame: int) -> list[str]:
    """The memif client vdevs with a buffer size (``bsize``) that holds ``frame`` bytes in one buffer, when
    ``frame`` is longer than memif's default buffer (rounded up to 128 bytes). A vdev that sets a smaller
    ``bsize`` itself is an error: its chained buffers would corrupt the stream (module docstring)."""
    if frame <= MEMIF_DEFAULT_BUFFER:
        return list(vdevs)
    need = min(-(-frame // 128) * 128, 65535)
    out = []
    for v in vdevs:
        if not v.startswith("net_memif"):
            out.append(v)
            continue
        given = re.search(r"(?:^|,)bsize=(\d+)", v)
        if given is None:
            out.append(f"{v},bsize={need}")
        elif int(given.group(1)) < frame:
            raise GeneratorError(
                f"memif buffer size {given.group(1)} B ({v}) is shorter than the longest frame ({frame} B): "
                f"frames chained over several buffers get merged once the ring wraps (DPDK 22.11 memif); use "
                f"bsize >= {frame} or drop the bsize= argument")
        else:
            out.append(v)
    return out


def result_from_report(report: dict[str, Any], shortfall_tolerance: float) -> TrialResult:
    """The TrialResult of one serpens-gen report (its JSON, docs/generator.md)."""
    latency = {}
    for key, lat in (report.get("latency") or {}).items():
        pg_id = int(key)
        h = histogram((b[0], b[1]) for b in lat.get("buckets", []))
        latency[pg_id] = stats_from_histogram(
            pg_id, h, int(lat["tx_packets"]), int(lat["rx_packets"]), int(lat.get("out_of_order", 0)),
            min_ns=lat.get("min_ns") if lat.get("rx_packets") else None,
            max_ns=lat.get("max_ns") if lat.get("rx_packets") else None,
            mean_ns=lat.get("mean_ns") if lat.get("rx_packets") else None)
    return TrialResult(
        offered_pps=float(report["offered_pps"]),
        duration_s=float(report["duration_s"]),
        tx_packets=int(report["tx_packets"]),
        rx_packets=int(report["rx_packets"]),
        tx_bytes=int(report.get("tx_bytes", 0)),
        rx_bytes=int(report.get("rx_bytes", 0)),
        dut_rx_full=int(report.get("dut_rx_full", 0)),
        latency=latency,
        shortfall_tolerance=shortfall_tolerance,
        generator="serpens-gen",
        raw=report,
        # reports of a serpens-gen before bounded catch-up have none of these: 0 / {} means "cannot say"
        intended_packets=int(report.get("intended_packets", 0)),
        skipped_stall_packets=int(report.get("skipped_stall_packets", 0)),
        skipped_slow_packets=int(report.get("skipped_slow_packets", 0)),
        generator_stalls=dict(report.get("loop_stalls") or {}),
        latency_trace=(report.get("latency_trace") or {}).get("file"),
    )


class LocalGenerator(TrafficGenerator):
    name = "serpens-gen"

    def __init__(self, config: Config, vdevs: Sequence[str], run_dir: RunDir,
                 capture: Path | None = None, capture_count: int = 0, latency_trace: Path | None = None,
                 latency_trace_max: int | None = None) -> None:
        self.settings = config["generator"]["local"]
        self.lcore = config["cores"]["generator"]
        self.tolerance = config["measurement"]["shortfall_tolerance"]
        self.vdevs = list(vdevs)
        self.run_dir = run_dir
        self.capture = capture
        self.capture_count = capture_count
        self.latency_trace = latency_trace
        self.latency_trace_max = latency_trace_max
        self.streams: list[dict[str, Any]] = []
        self.proc: subprocess.Popen[str] | None = None
        self.report_path = run_dir / "gen-report.json"
        self.last: TrialResult | None = None
        self.trials = 0
        self._version: str | None = None

    def connect(self) -> None:
        binary(self.settings["binary"])  # fail early and clearly if it is not built

    def disconnect(self) -> None:
        self.stop()

    def reset(self) -> None:
        self.stop()
        self.streams = []
        self.last = None

    def add_streams(self, streams: Sequence[Any], port: int = 0) -> None:
        if port != 0:
            raise GeneratorError("the built-in generator drives one port (0) per link")
        self.streams.extend(stream_json(s) for s in streams)

    def pacing_args(self) -> list[str]:
        """--catchup-us and --idle-sleep-us from generator.local, checked (docs/generator.md, "Pacing")."""
        catchup, idle_sleep = self.settings["catchup_us"], self.settings["idle_sleep_us"]
        if not 0 <= catchup <= 1e6:
            raise GeneratorError(f"generator.local.catchup_us must be between 0 and 1000000 (µs), "
                                 f"got {catchup:g}")
        if idle_sleep != 0 and not 100 <= idle_sleep <= 1e6:
            raise GeneratorError("generator.local.idle_sleep_us must be 0 (off) or between 100 and 1000000 "
                                 f"(µs), got {idle_sleep:g}")
        return ["--catchup-us", f"{catchup:g}", "--idle-sleep-us", f"{idle_sleep:g}"]

    def command(self, duration: float, mult: float) -> list[str]:
        pacing = self.pacing_args()
        streams_file = self.run_dir / "gen-streams.json"
        streams_file.write_text(json.dumps({"streams": self.streams}))
        vdevs = memif_vdevs(self.vdevs, longest_frame(self.streams))
        cmd = [str(binary(self.settings["binary"])),
               *eal_args(self.lcore, None, vdevs, in_memory=True),
               "--", "--streams", str(streams_file), "--duration", f"{duration:g}", "--mult", f"{mult:g}",
               "--report", str(self.report_path), "--settle-ms", str(self.settings["settle_ms"]),
               "--burst", str(self.settings["burst"]), *pacing,
               "--link-timeout-s", f"{self.settings['link_timeout_s']:g}"]
        if self.capture and self.capture_count:
            cmd += ["--capture", str(self.capture), "--capture-count", str(self.capture_count)]
        if self.latency_trace is not None:
            cmd += ["--latency-trace", str(self.latency_trace)]
            if self.latency_trace_max is not None:
                if isinstance(self.latency_trace_max, bool) or not isinstance(self.latency_trace_max, int) \
                        or not 1 <= self.latency_trace_max <= 1 << 28:
                    raise GeneratorError(f"latency_trace_max must be an integer in 1..{1 << 28} (records), "
                                         f"got {self.latency_trace_max!r}")
                cmd += ["--latency-trace-max", str(self.latency_trace_max)]
        kernel = tsc.kernel_tsc()
        if kernel is not None:   # not DPDK's rounded estimate (harness/tsc.py)
            cmd += ["--tsc-hz", str(kernel.hz)]
        return cmd

    def start(self, duration: float, mult: float = 1.0) -> None:
        if not self.streams:
            raise GeneratorError("no streams added")
        if self.proc is not None:
            raise GeneratorError("traffic already running")
        # neither an earlier trial's report nor its trace may pass for this one's
        for stale in (self.report_path, self.latency_trace):
            if stale is None:
                continue
            try:
                Path(stale).unlink()
            except FileNotFoundError:
                pass
        try:
            cmd = self.command(duration, mult)
        except NativeError as exc:
            raise GeneratorError(str(exc)) from exc
        self.proc = popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          preexec_fn=die_with_parent)
        record_started(self.proc, "generator")
        self.trials += 1

    def wait_on_traffic(self, timeout: float | None = None) -> None:
        if self.proc is None:
            return
        proc = self.proc
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            terminate(proc)
            self.proc = None
            raise GeneratorError(f"serpens-gen did not finish within {timeout} s") from None
        self.proc = None
        if proc.returncode != 0:
            # rte_exit's cause alone when there is one: EAL's messages and the usage text would bury it
            why = failure_cause(err) or err.strip()[-2000:]
            raise GeneratorError(f"serpens-gen failed (exit {proc.returncode}): {why}")
        self.last = self._load_report()

    def _load_report(self) -> TrialResult:
        try:
            report = json.loads(self.report_path.read_text())
        except (OSError, ValueError) as exc:
            raise GeneratorError(
                f"serpens-gen wrote no readable report to {self.report_path}: {exc}") from exc
        self._version = report.get("version")
        return result_from_report(report, self.tolerance)

    def stop(self) -> None:
        if self.proc is not None:
            proc, self.proc = self.proc, None
            terminate(proc)  # SIGTERM: serpens-gen stops, settles and still writes its report
            if self.report_path.exists():
                self.last = self._load_report()

    def get_stats(self) -> TrialResult:
        if self.last is None:
            raise GeneratorError("no finished trial to report")
        return self.last

    def version(self) -> str:
        return self._version or self.name
