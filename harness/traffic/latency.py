"""Latency histograms: from a generator's buckets to percentiles and an encoded HdrHistogram.

Both generators report a histogram (the built-in one in ns buckets, TRex in µs buckets); both become an
``hdrh`` HdrHistogram with ns units and 3 significant digits, from which every percentile is read and
which is stored, encoded, with the result so any other percentile can be recomputed later.
"""

from __future__ import annotations

from collections.abc import Iterable

from hdrh.histogram import HdrHistogram

from harness.traffic.base import LatencyStats

LOWEST_NS = 1
HIGHEST_NS = 100 * 10**9   # 100 s: anything slower is a lost packet in practice
SIGNIFICANT_DIGITS = 3


def histogram(buckets: Iterable[tuple[float, int]], unit_ns: float = 1.0) -> HdrHistogram:
    h = HdrHistogram(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_DIGITS)
    for value, count in buckets:
        if count > 0:
            h.record_value(min(max(int(value * unit_ns), LOWEST_NS), HIGHEST_NS), int(count))
    return h


def stats_from_histogram(pg_id: int, h: HdrHistogram, tx_packets: int, rx_packets: int, out_of_order: int,
                         min_ns: float | None = None, max_ns: float | None = None,
                         mean_ns: float | None = None) -> LatencyStats:
    """Percentiles from the histogram; exact min/max/mean from the generator where it has them."""
    empty = h.get_total_count() == 0
    return LatencyStats(
        pg_id=pg_id,
        tx_packets=tx_packets,
        rx_packets=rx_packets,
        out_of_order=out_of_order,
        min_ns=float(min_ns if min_ns is not None else (0 if empty else h.get_min_value())),
        mean_ns=float(mean_ns if mean_ns is not None else (0 if empty else h.get_mean_value())),
        p50_ns=float(0 if empty else h.get_value_at_percentile(50)),
        p99_ns=float(0 if empty else h.get_value_at_percentile(99)),
        p999_ns=float(0 if empty else h.get_value_at_percentile(99.9)),
        max_ns=float(max_ns if max_ns is not None else (0 if empty else h.get_max_value())),
        histogram="" if empty else _encode(h),
    )


def _encode(h: HdrHistogram) -> str:
    enc = h.encode()
    return enc.decode() if isinstance(enc, bytes) else str(enc)
