"""Progress for long runs: one line per event on stderr, with elapsed time, so a researcher (or a CI log)
always sees what is being measured and how far along it is."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from harness.traffic.base import TrialResult


def _num(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.{digits}f}"


class Progress:
    def __init__(self, name: str, stream: TextIO | None = None) -> None:
        self.name = name
        self.stream = stream or sys.stderr
        self.t0 = time.monotonic()

    def say(self, text: str) -> None:
        elapsed = time.monotonic() - self.t0
        print(f"[{self.name} {elapsed:7.1f}s] {text}", file=self.stream, flush=True)

    def trial_line(self, prefix: str, phase: str, load_pps: float, duration_s: float, r: TrialResult,
                   judgement: Mapping[str, Any]) -> None:
        """One trial: what was asked, what the generator sent, what came back, and the verdict."""
        passed = judgement.get("passed")
        if r.short:
            verdict = "generator short"
        elif isinstance(passed, Mapping):
            verdict = " ".join(f"{g}:{'ok' if ok else 'bad'}" for g, ok in passed.items())
        elif "valid" in judgement:
            verdict = "valid" if judgement["valid"] else "INVALID (lossy)"
        else:
            verdict = ""
        skipped = r.skipped_stall_packets + r.skipped_slow_packets
        skip = f", skipped {skipped}" if skipped else ""
        self.say(f"{prefix}{phase:<7} {load_pps / 1e6:8.3f} Mpps {duration_s:4.1f}s → "
                 f"tx {r.tx_pps / 1e6:8.3f} rx {r.rx_pps / 1e6:8.3f} Mpps, "
                 f"loss {r.loss_ratio * 100:.4f}%{skip} [{verdict}]")

    def point_line(self, prefix: str, row: Mapping[str, Any]) -> None:
        """A measured point, in one line."""
        parts = [f"NDR {_num(row.get('ndr_mpps'))} Mpps", f"PDR {_num(row.get('pdr_mpps'))} Mpps"]
        if row.get("latency_mean_us") is not None:
            parts.append(f"latency mean {_num(row.get('latency_mean_us'), 1)} µs "
                         f"p50 {_num(row.get('latency_p50_us'), 1)} µs at "
                         f"{row.get('load_fraction', 0):.0%} of PDR"
                         + ("" if row.get("latency_trial_valid", True) else " (invalid: lossy or short)"))
        if row.get("instance_capacity_mpps") is not None:
            parts.append(f"instance capacity {_num(row.get('instance_capacity_mpps'))} Mpps, "
                         f"bounded by {row.get('bottleneck', '?')}")
        if row.get("generator_limited"):
            parts.append("generator-limited")
        self.say(prefix + "; ".join(parts))
