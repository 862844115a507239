"""Bench results that matter are rates and latencies, not the wall time pytest-benchmark tabulates: each
benchmark records them in extra_info, and this prints them as a table at the end of `make bench`."""

from __future__ import annotations

from typing import Any

import pytest

ROWS: list[dict[str, Any]] = []


@pytest.fixture
def record() -> Any:
    return ROWS.append


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not ROWS:
        return
    tr = terminalreporter
    tr.section("measured (offered → sent → received, loss, latency at that rate)")
    for r in ROWS:
        if r.get("kind") == "pause":
            tr.write_line(f"{r['name']:<22} {r['count']:4d} pauses, mean {r['mean_us']:8.1f} µs, max "
                          f"{r['max_us']:8.1f} µs (traffic loss meanwhile {r['loss_ratio'] * 100:.3f} %)")
            continue
        p50 = r.get("latency_p50_us")
        p99 = r.get("latency_p99_us")
        lat = f"p50 {p50:8.1f} µs  p99 {p99:9.1f} µs" if p50 is not None else "no latency samples"
        short = "  (generator short)" if r["generator_short"] else ""
        tr.write_line(f"{r['name']:<22} {r['offered_mpps']:6.2f} → {r['tx_mpps']:6.2f} → "
                      f"{r['rx_mpps']:6.2f} Mpps  loss {r['loss_ratio'] * 100:7.3f} %  {lat}{short}")
