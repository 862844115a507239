"""serpens-gen's per-packet latency trace (``--latency-trace``): read it, join what was received to what was
sent, and turn it into latency over time and loss and reordering per flow.

Why: a scaling event (issue 12, the paper's Fig. 14) lasts milliseconds inside a trial of seconds and concerns
only the flows that move; the generator's per-trial histogram cannot show it. The trace has one TX record per
latency packet sent (pg_id, seq, TX TSC, the flow id of the 5-tuple sent) and one RX record per latency packet
received (pg_id, seq, TX TSC from its signature, RX TSC). Records are in the order sent and the order
received, so the record index is exact send and receive order even within one burst (which shares one TSC).
The file format is in docs/generator.md ("Latency trace"); ``native/generator/lat_trace.h`` writes it.

The flow id is serpensd's gateway flow hash of the 5-tuple (:func:`flow_id`), so the trace's flows are the
flows serpensd routes and moves.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

MAGIC = b"SGENLTRC"
VERSION = 1
# TX flag: counted as sent into the DUT's full ring without being built; no flow, never received
UNBUILT = 0x1

HEADER = np.dtype([("magic", "S8"), ("version", "<u4"), ("hdr_len", "<u4"), ("tx_rec_len", "<u4"),
                   ("rx_rec_len", "<u4"), ("tsc_hz", "<u8"), ("tsc_start", "<u8"), ("tx_records", "<u8"),
                   ("rx_records", "<u8"), ("tx_overflow", "<u8"), ("rx_overflow", "<u8")])
TX = np.dtype([("tx_tsc", "<u8"), ("seq", "<u4"), ("flow_id", "<u4"), ("pg_id", "<u2"), ("flags", "<u2"),
               ("reserved", "<u4")])
RX = np.dtype([("tx_tsc", "<u8"), ("rx_tsc", "<u8"), ("seq", "<u4"), ("pg_id", "<u2"), ("reserved", "<u2")])


class LatencyTraceError(ValueError):
    """The file is not a readable serpens-gen latency trace, or the trace cannot answer the question."""


@dataclass(frozen=True)
class LatencyTrace:
    """A trace in memory: ``tx`` and ``rx`` are structured arrays of :data:`TX` and :data:`RX` records."""

    tsc_hz: int
    tx: np.ndarray
    rx: np.ndarray
    tsc_start: int = 0          # the generator's TSC at the start of its schedule (report: tsc_start)
    tx_overflow: int = 0        # records the generator could not keep (--latency-trace-max)
    rx_overflow: int = 0
    path: str = field(default="", compare=False)

    def seconds(self, tsc: np.ndarray | int) -> np.ndarray | float:
        """TSC ticks (a difference) in seconds, with the TSC frequency the generator used."""
        return np.asarray(tsc, dtype=np.float64) / float(self.tsc_hz)


def read(path: str | Path) -> LatencyTrace:
    """Read a trace file; any problem is one :class:`LatencyTraceError` naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LatencyTraceError(f"latency trace {path}: cannot read it: {exc.strerror or exc}") from None
    if len(data) < HEADER.itemsize or data[:8] != MAGIC:
        raise LatencyTraceError(f"latency trace {path}: not a serpens-gen latency trace (no {MAGIC.decode()} "
                                f"magic at the start)")
    h = np.frombuffer(data, HEADER, count=1)[0]
    if int(h["version"]) != VERSION:
        raise LatencyTraceError(f"latency trace {path}: format version {int(h['version'])}, this reader "
                                f"knows {VERSION}")
    if (int(h["hdr_len"]), int(h["tx_rec_len"]), int(h["rx_rec_len"])) != \
            (HEADER.itemsize, TX.itemsize, RX.itemsize):
        lengths = f"{int(h['hdr_len'])}/{int(h['tx_rec_len'])}/{int(h['rx_rec_len'])}"
        raise LatencyTraceError(f"latency trace {path}: header or record lengths {lengths}, expected "
                                f"{HEADER.itemsize}/{TX.itemsize}/{RX.itemsize}")
    n_tx, n_rx = int(h["tx_records"]), int(h["rx_records"])
    size = HEADER.itemsize + n_tx * TX.itemsize + n_rx * RX.itemsize
    if len(data) != size:
        raise LatencyTraceError(f"latency trace {path}: {len(data)} bytes, the header says {size} "
                                f"({n_tx} TX and {n_rx} RX records): truncated or corrupt")
    if int(h["tsc_hz"]) == 0:
        raise LatencyTraceError(f"latency trace {path}: tsc_hz is 0")
    tx = np.frombuffer(data, TX, count=n_tx, offset=HEADER.itemsize)
    rx = np.frombuffer(data, RX, count=n_rx, offset=HEADER.itemsize + n_tx * TX.itemsize)
    return LatencyTrace(tsc_hz=int(h["tsc_hz"]), tsc_start=int(h["tsc_start"]), tx=tx, rx=rx,
                        tx_overflow=int(h["tx_overflow"]), rx_overflow=int(h["rx_overflow"]), path=str(path))


def write(path: str | Path, trace: LatencyTrace) -> None:
    """Write ``trace`` in the generator's format (for tests and for re-saving a cut-down trace)."""
    h = np.zeros(1, HEADER)
    h[0] = (MAGIC, VERSION, HEADER.itemsize, TX.itemsize, RX.itemsize, trace.tsc_hz, trace.tsc_start,
            len(trace.tx), len(trace.rx), trace.tx_overflow, trace.rx_overflow)
    body = np.asarray(trace.tx, TX).tobytes() + np.asarray(trace.rx, RX).tobytes()
    Path(path).write_bytes(h.tobytes() + body)


def tx_records(rows: Sequence[tuple[int, ...]]) -> np.ndarray:
    """TX records from ``(pg_id, seq, tx_tsc, flow_id[, flags])`` tuples, in the order sent."""
    a = np.zeros(len(rows), TX)
    for i, r in enumerate(rows):
        a[i]["pg_id"], a[i]["seq"], a[i]["tx_tsc"], a[i]["flow_id"] = r[:4]
        a[i]["flags"] = r[4] if len(r) > 4 else 0
    return a


def rx_records(rows: Sequence[tuple[int, ...]]) -> np.ndarray:
    """RX records from ``(pg_id, seq, tx_tsc, rx_tsc)`` tuples, in the order received."""
    a = np.zeros(len(rows), RX)
    for i, r in enumerate(rows):
        a[i]["pg_id"], a[i]["seq"], a[i]["tx_tsc"], a[i]["rx_tsc"] = r
    return a


def packets(trace: LatencyTrace) -> pd.DataFrame:
    """One row per latency packet sent, in the order sent, joined with its first reception by (pg_id, seq).

    Columns: ``pg_id``, ``seq``, ``flow_id``, ``unbuilt`` (see :data:`UNBUILT`), ``tx_tsc``, ``received``,
    ``rx_index`` (position in the order received, -1 if lost), ``latency_us`` (NaN if lost) and
    ``reordered``: received after a packet of the same flow id that was sent later. A trace that overflowed
    cannot say which packets were lost and is refused.
    """
    if trace.tx_overflow or trace.rx_overflow:
        raise LatencyTraceError(f"latency trace {trace.path or '(in memory)'}: {trace.tx_overflow} TX and "
                                f"{trace.rx_overflow} RX records did not fit (--latency-trace-max), so loss "
                                "cannot be told from records that were not kept")
    tx, rx = trace.tx, trace.rx
    tx_key = tx["pg_id"].astype(np.uint64) << np.uint64(32) | tx["seq"].astype(np.uint64)
    rx_key = rx["pg_id"].astype(np.uint64) << np.uint64(32) | rx["seq"].astype(np.uint64)
    if len(np.unique(tx_key)) != len(tx_key):
        raise LatencyTraceError(f"latency trace {trace.path or '(in memory)'}: a (pg_id, seq) was sent twice")
    # the first reception of each key (a DUT that duplicates a packet does not make it arrive earlier)
    keys, first = np.unique(rx_key, return_index=True)
    pos = np.searchsorted(keys, tx_key)
    pos_ok = np.minimum(pos, max(len(keys) - 1, 0))
    received = (pos < len(keys)) & (keys[pos_ok] == tx_key) if len(keys) else np.zeros(len(tx), bool)
    rx_index = np.where(received, first[pos_ok] if len(keys) else 0, -1).astype(np.int64)
    latency = np.full(len(tx), np.nan)
    hit = rx_index[received]
    latency[received] = (rx["rx_tsc"][hit].astype(np.float64) - rx["tx_tsc"][hit].astype(np.float64)) \
        * 1e6 / float(trace.tsc_hz)
    df = pd.DataFrame({"pg_id": tx["pg_id"].astype(np.int64), "seq": tx["seq"].astype(np.int64),
                       "flow_id": tx["flow_id"].astype(np.int64),
                       "unbuilt": (tx["flags"] & UNBUILT) != 0, "tx_tsc": tx["tx_tsc"].astype(np.uint64),
                       "received": received, "rx_index": rx_index, "latency_us": latency})
    df["reordered"] = _reordered(df)
    return df


def _reordered(df: pd.DataFrame) -> np.ndarray:
    """A received packet is reordered if a later-sent packet of its flow was received before it: its receive
    position is above the smallest receive position of itself and every later-sent packet of its flow."""
    out = np.zeros(len(df), bool)
    got = df.index[df["received"].to_numpy()]
    if len(got) == 0:
        return out
    sub = df.loc[got, ["flow_id", "rx_index"]].iloc[::-1]   # latest sent first
    later_min = sub.groupby("flow_id", sort=False)["rx_index"].cummin()
    out[sub.index.to_numpy()] = sub["rx_index"].to_numpy() > later_min.to_numpy()
    return out


def bins(trace: LatencyTrace, bin_us: float, t0_tsc: int | None = None) -> pd.DataFrame:
    """Latency over time: packets grouped by when they were SENT, in bins of ``bin_us`` µs.

    ``time_ms`` is each bin's start relative to ``t0_tsc`` (default: the first TX record; pass e.g. the TSC
    serpensd stamped when it started a move, same machine TSC). Columns: ``time_ms``, ``sent``,
    ``received``, ``lost`` (sent in the bin, never received), ``reordered`` (of those sent in the bin),
    ``latency_mean_us``, ``latency_p50_us``, ``latency_max_us`` (of those sent in the bin and received;
    NaN for a bin with none). Every bin from the first to the last packet is there, empty ones included.
    """
    if not bin_us > 0:
        raise LatencyTraceError(f"bin_us must be > 0, got {bin_us!r}")
    p = packets(trace)
    columns = ["time_ms", "sent", "received", "lost", "reordered", "latency_mean_us", "latency_p50_us",
               "latency_max_us"]
    if p.empty:
        return pd.DataFrame(columns=columns)
    t0 = int(p["tx_tsc"].iloc[0]) if t0_tsc is None else int(t0_tsc)
    t_us = (p["tx_tsc"].to_numpy().astype(np.float64) - float(t0)) * 1e6 / float(trace.tsc_hz)
    p["bin"] = np.floor(t_us / bin_us).astype(np.int64)
    g = p.groupby("bin")
    out = pd.DataFrame({"sent": g.size(), "received": g["received"].sum(),
                        "reordered": g["reordered"].sum(),
                        "latency_mean_us": g["latency_us"].mean(), "latency_p50_us": g["latency_us"].median(),
                        "latency_max_us": g["latency_us"].max()})
    out = out.reindex(range(int(p["bin"].min()), int(p["bin"].max()) + 1))
    for col in ("sent", "received", "reordered"):
        out[col] = out[col].fillna(0).astype(np.int64)
    out["lost"] = out["sent"] - out["received"]
    out["time_ms"] = out.index.to_numpy() * bin_us / 1e3
    return out.reset_index(drop=True)[columns]


def per_flow(trace: LatencyTrace) -> pd.DataFrame:
    """Per flow id: ``sent``, ``lost``, ``reordered``, indexed by ``flow_id``. Packets that were never built
    (:data:`UNBUILT`: due while the DUT's ring was full) have no flow and are left out; :func:`bins` counts
    them as sent and lost."""
    p = packets(trace)
    p = p[~p["unbuilt"]]
    g = p.groupby("flow_id")
    out = pd.DataFrame({"sent": g.size(), "received": g["received"].sum(), "reordered": g["reordered"].sum()})
    out["lost"] = out["sent"] - out["received"]
    return out[["sent", "lost", "reordered"]].astype(np.int64)


# --- the flow id: serpensd's gateway flow hash (native/serpens/gateway.h: gw_flow_hash) -----------------

def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C = _crc32c_table()


def _crc32c_u64(value: int, crc: int) -> int:
    """DPDK's rte_hash_crc_8byte: the CRC32C update over 8 bytes, little-endian, no inversion."""
    for byte in value.to_bytes(8, "little"):
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def flow_id(src: str, dst: str, sport: int, dport: int, proto: int = 17) -> int:
    """The flow id serpens-gen records for a packet of this IPv4 5-tuple (and serpensd's flow hash of it):
    each field's network-order bytes read as a little-endian integer, as the C code loads them."""
    s = int.from_bytes(ipaddress.IPv4Address(src).packed, "little")
    d = int.from_bytes(ipaddress.IPv4Address(dst).packed, "little")
    sp = int.from_bytes(sport.to_bytes(2, "big"), "little") if proto in (6, 17) else 0
    dp = int.from_bytes(dport.to_bytes(2, "big"), "little") if proto in (6, 17) else 0
    a = s << 32 | d
    b = sp << 32 | dp << 16 | proto
    return _crc32c_u64(b, _crc32c_u64(a, 0x5E59))
