"""The trial log: every trial behind every number, one JSON object per line.

A throughput experiment writes ``results/<experiment>-trials.jsonl`` next to its CSV. Two kinds of line:

* ``{"kind": "trial", ...}`` — one trial (a search trial, the warm-up, or the latency trial): what was
  asked (phase, intended load and duration), what the generator did (offered/tx/rx, what it skipped and
  why, its stalls), what the device under test did (loss, ring-full drops, its own stalls and busy time),
  and how the search judged it;
* ``{"kind": "fault", ...}`` — a point that failed: the platform, its state store or the generator broke
  during one of its trials (``error`` names the cause). Such a point has no ``point`` line and no CSV row:
  a trial that saw a fault is never a measurement (docs/reliability.md);
* ``{"kind": "point", ...}`` — the record of one measured point after its last trial: identity, the
  search's result per goal, the latency trial, per-stage costs. The CSV row is computed from this record
  alone by a pure function (``harness.traffic.measure.point_row``), so a CSV can always be rebuilt from
  its trial log (``harness experiment NAME --process-only``).

Every line of a point carries the same ``point_id`` (``<run_id>/<n>``), which is also a CSV column, so a
row links to its trials. Lines are flushed as they are written: an interrupted run keeps every trial it ran.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from harness.traffic.base import TrialResult


def trials_path(csv_path: Path) -> Path:
    """``results/figure-12.csv`` → ``results/figure-12-trials.jsonl``."""
    return csv_path.with_name(f"{csv_path.stem}-trials.jsonl")


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: they become null, so the file stays strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def trial_counters(result: TrialResult) -> dict[str, Any]:
    """What one trial measured, compactly (the latency histogram stays out: it is in the point record
    of a latency trial, and search trials do not need it)."""
    lat = next(iter(result.latency.values()), None)
    return {
        "generator": result.generator,
        "offered_pps": result.offered_pps,
        "duration_s": result.duration_s,
        "intended_packets": result.intended_packets,
        "tx_packets": result.tx_packets,
        "rx_packets": result.rx_packets,
        "loss_packets": result.loss_packets,
        "loss_ratio": result.loss_ratio,
        "dut_rx_full": result.dut_rx_full,
        "skipped_stall_packets": result.skipped_stall_packets,
        "skipped_slow_packets": result.skipped_slow_packets,
        "reached_intended_load": result.reached_intended_load,
        "generator_stalls": result.generator_stalls,
        "generator_rx_stale": result.raw.get("rx_stale"),
        "dut": result.dut,
        "latency_mean_us": lat.mean_ns / 1e3 if lat and lat.rx_packets else None,
        "latency_max_us": lat.max_ns / 1e3 if lat and lat.rx_packets else None,
    }


class TrialLogWriter:
    """Appends trial and point lines to one JSONL file (created fresh by the run that owns it)."""

    def __init__(self, path: Path, run_id: str, append: bool = False) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a" if append else "w")  # noqa: SIM115 — closed in close()
        self._points = 0

    def new_point_id(self) -> str:
        self._points += 1
        return f"{self.run_id}/{self._points}"

    def _write(self, line: Mapping[str, Any]) -> None:
        self._file.write(json.dumps(_clean(line), allow_nan=False, default=str) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def trial(self, point_id: str, index: int, phase: str, intended_load_pps: float,
              intended_duration_s: float, result: TrialResult, **judgement: Any) -> None:
        self._write({"kind": "trial", "run_id": self.run_id, "point_id": point_id, "index": index,
                     "phase": phase, "intended_load_pps": intended_load_pps,
                     "intended_duration_s": intended_duration_s, **judgement, **trial_counters(result)})

    def point(self, point_id: str, record: Mapping[str, Any]) -> None:
        self._write({"kind": "point", "run_id": self.run_id, "point_id": point_id, **record})

    def fault(self, point_id: str, error: BaseException | str) -> None:
        """The point ``point_id`` failed with ``error``: no point line, no row will follow."""
        cause = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self._write({"kind": "fault", "run_id": self.run_id, "point_id": point_id, "status": "failed",
                     "error": cause})

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> TrialLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read(path: Path) -> Iterator[dict[str, Any]]:
    """Every line of a trial log, in order. A torn last line (the run was killed mid-write) is skipped."""
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except ValueError:
                continue


def points(path: Path) -> list[dict[str, Any]]:
    return [rec for rec in read(path) if rec.get("kind") == "point"]


def faults(path: Path) -> list[dict[str, Any]]:
    """The points that failed (kind ``fault``), in order."""
    return [rec for rec in read(path) if rec.get("kind") == "fault"]


def trials_of(path: Path, point_id: str) -> list[dict[str, Any]]:
    return [rec for rec in read(path) if rec.get("kind") == "trial" and rec.get("point_id") == point_id]
