"""serpens-gen behind one TRex port: checking streams, scaling them by ``mul``, running one trial.

* **Checks.** TRex refuses a stream it cannot run at ``add_stream``; so does this server, with serpens-gen's
  own message: the port's streams are written to a file and serpens-gen loads them in a process of its own
  (no hugepages, no device; ~0.2-0.3 s), which exits with code 2 and the reason when it refuses one, or
  fails later ("port 0 does not exist") when it accepted them all. Results are cached by content.
* **Multiplier.** TRex scales every stream by ``mul`` except latency streams, which keep their own rate;
  serpens-gen's ``--mult`` scales all of them, so the streams are scaled here and serpens-gen runs at 1.
* **Trial.** One serpens-gen process per ``start_traffic`` (the command of
  :class:`harness.traffic.local.LocalGenerator`, with this port's vdev only), waited for by a thread;
  ``stop_traffic`` sends SIGTERM, after which serpens-gen settles and still writes its report. A duration of
  -1 ("until stopped") runs serpens-gen for its longest duration, 10^6 s.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.config import Config
from harness.native import NativeError, binary, die_with_parent, failure_cause, popen, record_started
from harness.traffic.local import LocalGenerator
from harness.traffic.trex_server.rpc import INVALID_PARAMS, RpcError

log = logging.getLogger(__name__)

UNLIMITED_S = 1e6            # serpens-gen's longest --duration
CHECK_TIMEOUT_S = 60.0
FCS_B = 4
L1_OVERHEAD_B = 20


def is_latency(stream: Mapping[str, Any]) -> bool:
    fs = stream.get("flow_stats") or {}
    return bool(fs.get("enabled")) and fs.get("rule_type") == "latency"


def latency_pg_id(stream: Mapping[str, Any]) -> int | None:
    return int(stream["flow_stats"]["stream_id"]) if is_latency(stream) else None


def enabled(stream: Mapping[str, Any]) -> bool:
    return stream.get("enabled", True) is not False


def _frame_b(stream: Mapping[str, Any]) -> int:
    import base64

    return len(base64.b64decode(stream["packet"]["binary"])) + FCS_B


def stream_pps(stream: Mapping[str, Any]) -> float:
    rate = stream["mode"]["rate"]
    kind, value = rate["type"], float(rate["value"])
    if kind == "pps":
        return value
    if kind == "bps_L2":
        return value / (8 * _frame_b(stream))
    if kind == "bps_L1":
        return value / (8 * (_frame_b(stream) + L1_OVERHEAD_B))
    raise RpcError(f"stream rate of type {kind!r} has no packet rate on a memif port (no line rate)")


def scale(streams: Sequence[Mapping[str, Any]], mul: Mapping[str, Any]) -> tuple[list[dict[str, Any]], float]:
    """``(streams at mul, the factor)``: TRex's ``mul`` object (``type`` raw/pps/bps/bpsl1/percentage,
    ``value``, ``op``) applied to every enabled stream but latency streams."""
    kind, value, op = mul.get("type"), mul.get("value"), mul.get("op", "abs")
    if op != "abs":
        raise RpcError(f"start_traffic: mul.op must be 'abs', got {op!r}", INVALID_PARAMS)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value <= 0:
        raise RpcError(f"start_traffic: mul.value must be a positive number, got {value!r}", INVALID_PARAMS)
    load = [s for s in streams if enabled(s) and not is_latency(s)]
    if kind == "raw":
        factor = float(value)
    elif kind in ("pps", "bps", "bpsl1"):
        if not load:
            raise RpcError(f"start_traffic: a '{kind}' multiplier needs a stream that is not a latency "
                           "stream")
        per_packet = {"pps": lambda s: 1.0, "bps": lambda s: 8.0 * _frame_b(s),
                      "bpsl1": lambda s: 8.0 * (_frame_b(s) + L1_OVERHEAD_B)}[kind]
        base = sum(stream_pps(s) * per_packet(s) for s in load)
        factor = float(value) / base
    elif kind == "percentage":
        raise RpcError("start_traffic: a 'percentage' multiplier needs a line rate, and the built-in "
                       "generator's memif port has none: give pps, bps or a plain factor")
    else:
        raise RpcError(f"start_traffic: mul.type {kind!r} is not one of raw, pps, bps, bpsl1, percentage",
                       INVALID_PARAMS)
    out = []
    for s in streams:
        s = copy.deepcopy(dict(s))
        if enabled(s) and not is_latency(s):
            s["mode"]["rate"]["value"] = float(s["mode"]["rate"]["value"]) * factor
        out.append(s)
    return out, factor


class StreamCheckError(RuntimeError):
    """serpens-gen could not be run to check streams (not a refusal of the streams)."""


class Runner:
    """serpens-gen for one TRex port (one vdev)."""

    def __init__(self, config: Config, vdev: str, work_dir: Path) -> None:
        work_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir = work_dir
        self.gen = LocalGenerator(config, [vdev], work_dir)  # type: ignore[arg-type]  # a path is all it uses
        self.lcore = config["cores"]["generator"]
        self.binary_setting = config["generator"]["local"]["binary"]
        self._checked: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def check(self, streams: Sequence[Mapping[str, Any]]) -> str | None:
        """None when serpens-gen accepts ``streams``; else its reason (``stream N: field 'x': why``, N
        counting from 0 in ``streams``)."""
        if not any(enabled(s) for s in streams):
            return None     # serpens-gen skips disabled streams: nothing to check
        text = json.dumps({"streams": list(streams)}, sort_keys=True)
        key = hashlib.sha256(text.encode()).hexdigest()
        with self._lock:
            if key in self._checked:
                return self._checked[key]
        verdict = self._run_check(text)
        with self._lock:
            self._checked[key] = verdict
        return verdict

    def _run_check(self, text: str) -> str | None:
        try:
            exe = str(binary(self.binary_setting))
        except NativeError as exc:
            raise StreamCheckError(str(exc)) from None
        with tempfile.NamedTemporaryFile("w", suffix=".json", dir=self.work_dir, delete=False) as f:
            f.write(text)
            path = Path(f.name)
        # no device: serpens-gen loads the streams (exit 2 with the reason if it refuses one), then stops at
        # "port 0 does not exist"; no hugepages and no runtime files, so it touches nothing of a run
        cmd = [exe, "-l", str(self.lcore), "--no-pci", "--no-telemetry", "--log-level=*:error", "--no-huge",
               "-m", "16", "--no-shconf", "--", "--streams", str(path), "--duration", "1",
               "--report", "/dev/null"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CHECK_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StreamCheckError(f"serpens-gen could not check the streams: {exc}") from None
        finally:
            path.unlink(missing_ok=True)
        cause = failure_cause(proc.stderr) or proc.stderr.strip()[-500:]
        if proc.returncode == 2 and cause.startswith("streams file "):
            return cause.split(": ", 1)[1] if ": " in cause else cause
        if proc.returncode != 0 and "does not exist" in cause:
            return None
        raise StreamCheckError(f"serpens-gen could not check the streams (exit {proc.returncode}): {cause}")

    def start(self, streams: list[dict[str, Any]], duration: float,
              on_done: Callable[[Trial], None]) -> Trial:
        trial = Trial(self, streams, duration, on_done)
        trial.start()
        return trial


class Trial:
    """One serpens-gen run; ``on_done`` is called from the waiting thread when it has ended."""

    def __init__(self, runner: Runner, streams: list[dict[str, Any]], duration: float,
                 on_done: Callable[[Trial], None]) -> None:
        self.runner = runner
        self.streams = streams
        self.duration = duration
        self.on_done = on_done
        self.report: dict[str, Any] | None = None
        self.error: str | None = None
        self.proc: subprocess.Popen[str] | None = None
        self.thread: threading.Thread | None = None
        self.started = time.monotonic()
        self.stop_requested = False

    def start(self) -> None:
        gen = self.runner.gen
        gen.streams = self.streams
        gen.report_path.unlink(missing_ok=True)   # an earlier trial's report must not pass for this one's
        try:
            cmd = gen.command(self.duration, 1.0)
        except NativeError as exc:
            raise RpcError(f"start_traffic: {exc}") from None
        self.proc = popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          preexec_fn=die_with_parent)
        record_started(self.proc, "generator")
        self.thread = threading.Thread(target=self._wait, name="serpens-gen-trial", daemon=True)
        self.thread.start()

    def _wait(self) -> None:
        assert self.proc is not None
        _, err = self.proc.communicate()
        rc = self.proc.returncode
        if rc == 0:
            try:
                self.report = json.loads(self.runner.gen.report_path.read_text())
            except (OSError, ValueError) as exc:
                self.error = f"serpens-gen wrote no readable report: {exc}"
        else:
            self.error = f"serpens-gen failed (exit {rc}): {failure_cause(err) or err.strip()[-1000:]}"
        if self.error:
            log.error("port trial: %s", self.error)
        try:
            self.on_done(self)
        except Exception:
            log.exception("finishing a trial")

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def stop(self, timeout: float) -> None:
        """SIGTERM (serpens-gen settles and writes its report), then wait for :attr:`on_done` to have run."""
        self.stop_requested = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        if self.thread is not None:
            self.thread.join(timeout)
        if self.running and self.proc is not None:
            self.proc.kill()
            self.thread.join(timeout)   # type: ignore[union-attr]
