"""Progress for long runs: one line per event on stderr, with elapsed time, so a researcher (or a CI log)
always sees what is being measured and how far along it is."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from harness.traffic.search import TrialLog


class Progress:
    def __init__(self, name: str, stream: TextIO | None = None) -> None:
        self.name = name
        self.stream = stream or sys.stderr
        self.t0 = time.monotonic()

    def say(self, text: str) -> None:
        elapsed = time.monotonic() - self.t0
        print(f"[{self.name} {elapsed:7.1f}s] {text}", file=self.stream, flush=True)

    def trial(self, log: TrialLog, prefix: str = "") -> None:
        r = log.result
        verdict = "short" if r.short else ("pass" if log.pdr_pass else "fail")
        self.say(f"{prefix}{log.purpose:<13} offered {log.rate_pps / 1e6:8.3f} Mpps {log.duration_s:4.1f}s → "
                 f"tx {r.tx_pps / 1e6:8.3f} rx {r.rx_pps / 1e6:8.3f} Mpps, loss {r.loss_ratio * 100:.4f}% "
                 f"[{verdict}]")
