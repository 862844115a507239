"""Units of the claims' numbers: which there are, converting between them, writing a number with one.

Every metric column of a results CSV ends in its unit (``latency_mean_us``, ``ndr_mpps``); the paper's unit
is written in the claims file. harness.claims_file validates both against :data:`UNITS`; harness.claims
converts our values to the paper's unit and writes them, and the paper's, the same way (:func:`fmt`,
:func:`with_unit`).
"""

from __future__ import annotations

import math

# unit → (dimension, factor to the dimension's base unit)
UNITS: dict[str, tuple[str, float]] = {
    "ns": ("time", 1e-3), "us": ("time", 1.0), "ms": ("time", 1e3), "s": ("time", 1e6),
    "pps": ("rate", 1e-6), "kpps": ("rate", 1e-3), "mpps": ("rate", 1.0),
    "b": ("memory", 1 / 1024), "kb": ("memory", 1.0), "mb": ("memory", 1024.0), "gb": ("memory", 1024.0**2),
    "x": ("ratio", 1.0),
    "%": ("percent", 1.0),
}
UNIT_DISPLAY = {"us": "µs", "ns": "ns", "ms": "ms", "s": "s", "pps": "pps", "kpps": "Kpps", "mpps": "Mpps",
                "b": "B", "kb": "KB", "mb": "MB", "gb": "GB", "x": "×", "%": "%"}


def norm_unit(unit: str) -> str:
    """A unit as written (``µs``, ``×``, ``Mpps``) → its key in :data:`UNITS` (``us``, ``x``, ``mpps``)."""
    return unit.strip().lower().replace("µ", "u").replace("μ", "u").replace("×", "x")


def metric_unit(metric: str) -> str | None:
    """The unit a metric column's name ends in (``latency_mean_us`` → ``us``), or None."""
    suffix = metric.rsplit("_", 1)[-1].lower() if "_" in metric else ""
    return suffix if suffix in UNITS and suffix not in ("x", "%") else None


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit`` (both keys of :data:`UNITS`, same dimension)."""
    dim_f, f = UNITS[from_unit]
    dim_t, t = UNITS[to_unit]
    assert dim_f == dim_t, (from_unit, to_unit)
    return value * f / t


def fmt(v: float | None) -> str:
    """Three significant digits, no exponent for everyday magnitudes."""
    if v is None or math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e7 or a < 1e-3:
        return f"{v:.3g}"
    digits = max(0, 2 - math.floor(math.log10(a)))
    s = f"{v:.{digits}f}"
    return s.rstrip("0").rstrip(".") if "." in s else s


def with_unit(num: str, u: str) -> str:
    """A formatted number and a displayed unit: ``1.5×``, ``12 µs``, or the number alone without a unit."""
    if u == "×":
        return f"{num}×"
    return f"{num} {u}" if u else num
