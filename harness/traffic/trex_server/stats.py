"""serpens-gen's trial reports as TRex's counters: port counters, the ``trex-global`` snapshot and the
per-pg_id flow and latency statistics of ``get_pgid_stats``.

serpens-gen has no live counters: it reports once, when a trial ends (docs/generator.md). So every counter
here is cumulative since the server started (port counters) or since the pg_id's stream was added (pg_id
statistics, as TRex keeps them) and grows by one whole trial when that trial ends; while a trial runs, the
counters stand still at their value from before it. The client's ``clear_stats`` is client-side (it keeps a
reference snapshot and subtracts it), exactly as with TRex.

Units follow TRex:

* bytes with the 4-byte FCS (serpens-gen counts frames without it): ``obytes = tx_bytes + 4 x tx_packets``;
* latency in microseconds: ``total_max``/``last_max`` truncated to whole µs, ``average`` a float;
* the latency histogram in TRex's log buckets, ``{key: count}`` with string keys: key ``k`` counts latencies
  in ``[k, k + 10**floor(log10 k))`` µs, key ``"0"`` those under 10 µs (trex-core src/time_histogram.cpp);
* ``hdrh``: an encoded HdrHistogram of the same latencies in µs (TRex v3 sends one; trex-stl-lib 0.3
  drops it).

Rates (``m_total_tx_pps-N`` ...) are the averages of the port's last finished trial, not instantaneous
rates: nothing finer exists.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

FCS_B = 4
L1_OVERHEAD_B = 20
HDRH_LOWEST_US = 1
HDRH_HIGHEST_US = 100_000_000   # 100 s
HDRH_DIGITS = 3


def trex_bucket(latency_ns: float) -> int:
    """TRex's histogram key for one latency: 0 below 10 µs; else the leading digit times its decade (15 µs ->
    10, 150 µs -> 100, 2500 µs -> 2000)."""
    d = int(latency_ns / 10_000.0)   # units of 10 µs, truncated like TRex's (uint32_t)(dt * 100000)
    if d <= 0:
        return 0
    base = 10
    while d >= 10:
        d //= 10
        base *= 10
    return base * d


@dataclass
class PortCounters:
    opackets: int = 0
    ipackets: int = 0
    obytes: int = 0
    ibytes: int = 0
    oerrors: int = 0
    ierrors: int = 0
    # averages over the port's last finished trial
    tx_pps: float = 0.0
    rx_pps: float = 0.0
    tx_bps: float = 0.0
    rx_bps: float = 0.0

    def add_trial(self, report: Mapping[str, Any]) -> None:
        tx, rx = int(report["tx_packets"]), int(report["rx_packets"])
        tx_b = int(report.get("tx_bytes", 0)) + FCS_B * tx
        rx_b = int(report.get("rx_bytes", 0)) + FCS_B * rx
        self.opackets += tx
        self.ipackets += rx
        self.obytes += tx_b
        self.ibytes += rx_b
        # the receive ring overflowing or running out of mbufs: what TRex's ierrors counts on a NIC
        self.ierrors += int(report.get("imissed", 0)) + int(report.get("rx_nombuf", 0))
        duration = float(report.get("duration_s") or 0.0)
        if duration > 0:
            self.tx_pps, self.rx_pps = tx / duration, rx / duration
            self.tx_bps, self.rx_bps = 8.0 * tx_b / duration, 8.0 * rx_b / duration

    def snapshot(self, port: int) -> dict[str, Any]:
        """This port's fields of the ``trex-global`` message (``<field>-<port>``)."""
        fields = {"opackets": self.opackets, "ipackets": self.ipackets, "obytes": self.obytes,
                  "ibytes": self.ibytes, "oerrors": self.oerrors, "ierrors": self.ierrors,
                  "m_total_tx_pps": self.tx_pps, "m_total_rx_pps": self.rx_pps,
                  "m_total_tx_bps": self.tx_bps, "m_total_rx_bps": self.rx_bps, "m_cpu_util": 0.0}
        return {f"{key}-{port}": value for key, value in fields.items()}


@dataclass
class PgId:
    """One pg_id (a latency stream's ``flow_stats.stream_id``) since its stream was added."""

    ver_id: int
    ports: list[int]
    tx_pkts: dict[int, int] = field(default_factory=dict)
    tx_bytes: dict[int, int] = field(default_factory=dict)
    rx_pkts: dict[int, int] = field(default_factory=dict)
    rx_bytes: dict[int, int] = field(default_factory=dict)
    histogram: dict[int, int] = field(default_factory=dict)
    hdrh: HdrHistogram = field(default_factory=lambda: HdrHistogram(HDRH_LOWEST_US, HDRH_HIGHEST_US,
                                                                     HDRH_DIGITS))
    total_max_us: int = 0
    last_max_us: int = 0
    average_us: float = 0.0
    out_of_order: int = 0

    def __post_init__(self) -> None:
        for table in (self.tx_pkts, self.tx_bytes, self.rx_pkts, self.rx_bytes):
            for p in self.ports:
                table.setdefault(p, 0)

    def add_trial(self, port: int, latency: Mapping[str, Any], stream: Mapping[str, Any] | None) -> None:
        tx, rx = int(latency["tx_packets"]), int(latency["rx_packets"])
        frame_b = int(stream["packet_len"]) + FCS_B if stream else 0
        self.tx_pkts[port] = self.tx_pkts.get(port, 0) + tx
        self.rx_pkts[port] = self.rx_pkts.get(port, 0) + rx
        tx_b = int(stream["tx_bytes"]) + FCS_B * tx if stream and "tx_bytes" in stream else tx * frame_b
        self.tx_bytes[port] = self.tx_bytes.get(port, 0) + tx_b
        self.rx_bytes[port] = self.rx_bytes.get(port, 0) + rx * frame_b
        self.out_of_order += int(latency.get("out_of_order", 0))
        if rx <= 0:
            return
        for value_ns, count in _buckets(latency.get("buckets", [])):
            key = trex_bucket(value_ns)
            self.histogram[key] = self.histogram.get(key, 0) + count
            self.hdrh.record_value(min(int(value_ns // 1000), HDRH_HIGHEST_US), count)
        max_us = int(float(latency.get("max_ns", 0)) // 1000)
        self.last_max_us = max_us
        self.total_max_us = max(self.total_max_us, max_us)
        mean_us = float(latency.get("mean_ns", 0.0)) / 1000.0
        # TRex's average is a low-pass filter over its 0.5 s windows (new = old/2 + window/2); a trial is
        # the only window serpens-gen has
        self.average_us = mean_us if self.average_us == 0.0 else 0.5 * self.average_us + 0.5 * mean_us

    def flow_json(self) -> dict[str, Any]:
        """``get_pgid_stats``'s ``flow_stats[pg_id]`` (TRex's short keys, per-port dicts keyed by string)."""
        def per_port(table: Mapping[int, Any]) -> dict[str, Any]:
            return {str(p): v for p, v in sorted(table.items())}
        zero = {str(p): 0 for p in self.ports}
        return {"tp": per_port(self.tx_pkts), "tb": per_port(self.tx_bytes), "rp": per_port(self.rx_pkts),
                "rb": per_port(self.rx_bytes), "tps": dict(zero), "tbs": dict(zero), "rps": dict(zero),
                "rbs": dict(zero)}

    def latency_json(self) -> dict[str, Any]:
        """``get_pgid_stats``'s ``latency[pg_id]``. Not measured by serpens-gen, so not sent: ``jit``
        (RFC 3550 jitter), ``dup``, ``sth``, ``stl``; ``drp`` is tx - rx."""
        tx, rx = sum(self.tx_pkts.values()), sum(self.rx_pkts.values())
        lat: dict[str, Any] = {"total_max": self.total_max_us, "last_max": self.last_max_us,
                               "average": self.average_us}
        if self.histogram:
            lat["histogram"] = {str(k): v for k, v in sorted(self.histogram.items())}
            encoded = self.hdrh.encode()
            lat["hdrh"] = encoded.decode() if isinstance(encoded, bytes) else str(encoded)
        return {"lat": lat, "er": {"drp": max(0, tx - rx), "ooo": self.out_of_order}}


def _buckets(raw: Iterable[Any]) -> Iterable[tuple[float, int]]:
    for entry in raw:
        value, count = float(entry[0]), int(entry[1])
        if count > 0 and math.isfinite(value) and value >= 0:
            yield value, count


def global_snapshot(ports: Mapping[int, PortCounters]) -> dict[str, Any]:
    """The ``trex-global`` message's data: totals plus every port's ``<field>-<port>``."""
    data: dict[str, Any] = {
        "m_cpu_util": 0.0, "m_cpu_util_raw": 0.0, "m_rx_cpu_util": 0.0, "m_bw_per_core": 0.0,
        "m_platform_factor": 1.0, "m_total_queue_full": 0, "m_rx_drop_bps": 0.0,
        "m_tx_bps": sum(c.tx_bps for c in ports.values()), "m_rx_bps": sum(c.rx_bps for c in ports.values()),
        "m_tx_pps": sum(c.tx_pps for c in ports.values()), "m_rx_pps": sum(c.rx_pps for c in ports.values()),
        "m_total_tx_pkts": sum(c.opackets for c in ports.values()),
        "m_total_rx_pkts": sum(c.ipackets for c in ports.values()),
        "m_total_tx_bytes": sum(c.obytes for c in ports.values()),
        "m_total_rx_bytes": sum(c.ibytes for c in ports.values()),
    }
    for port, counters in ports.items():
        data.update(counters.snapshot(port))
    return data
