"""TRex driver: the :class:`TrafficGenerator` interface over trex-stl-lib's ``STLClient``.

A thin adapter. One trial is::

    connect()        connect, acquire the configured ports, reset them, make them promiscuous
    reset()          stop, remove all streams, clear counters
    add_streams()    per port
    start()          clear counters, start every port that has streams at ``mult`` x their rates
                     (TRex never scales latency streams: they keep their own rate)
    wait_on_traffic()  until TRex stops them after ``duration``, then let counters settle
    get_stats()      port counters + per-pg_id latency -> TrialResult

Counters: tx = ``opackets`` of the transmitting ports; rx = ``ipackets`` of their receiving ports (the
paired port ``p ^ 1`` on a two-port testbed, the same port on a loopback/one-port topology, or any
mapping). TRex counts every frame on a port, so anything else arriving there (ARP, LLDP) counts too.

Latency: per ``pg_id`` of every latency stream added. TRex v3 servers send an HdrHistogram of the
latencies (``'hdrh'``, in microseconds) and the driver uses it when the client library passes it on;
otherwise it rebuilds one from TRex's coarse log-bucket histogram (``{10: n, 20: n, ..., 100: n, ...}``,
bucket ``k`` holding latencies in ``[k, k + 10**floor(log10 k))`` µs, ``0`` holding those under 10 µs),
putting each bucket's packets at its midpoint clamped to TRex's min/max. Percentiles from the rebuilt
histogram are only as fine as those buckets (±5 µs below 100 µs, ±50 µs below 1 ms ...).
max is TRex's ``total_max``; min/mean come from the HdrHistogram when there is one, else from TRex's
``total_min`` (which the client derives from the lowest non-empty bucket) and ``average`` (a low-pass
filtered mean).
The histogram becomes LatencyStats through harness.traffic.latency, like the built-in generator's.

Tested against a fake client (tests/unit/test_trex_driver.py) and, with the real trex-stl-lib client and
real packets, against the built-in TRex-compatible server (tests/integration/test_trex_server.py): protocol
conformance, not a TRex validation; see docs/trex.md.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal

from harness.traffic import latency
from harness.traffic.base import GeneratorError, LatencyStats, TrafficGenerator, TrialResult

log = logging.getLogger(__name__)

RxPorts = Literal["paired", "same"] | Mapping[int, int]


def default_client_factory(**kwargs: Any) -> Any:
    """trex-stl-lib's ``STLClient`` (imported late: it pulls in all of scapy)."""
    from harness.traffic import stl_compat

    stl_compat.apply()
    from trex_stl_lib.api import STLClient

    return STLClient(**kwargs)


class TRexGenerator(TrafficGenerator):
    """Sends STL streams from a TRex server (stateless mode) and reads its counters."""

    name = "trex"

    def __init__(self, server: str = "localhost", *, sync_port: int = 4501, async_port: int = 4500,
                 ports: Sequence[int] | None = None, rx_ports: RxPorts = "paired",
                 tx_port: int | None = None, rx_port: int | None = None, settle_s: float = 0.1,
                 force_acquire: bool = True, promiscuous: bool = True, rx_delay_ms: int | None = None,
                 hdrh_unit_ns: float = 1000.0,
                 client_factory: Callable[..., Any] | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """
        ``ports``: the TRex ports that may transmit. ``rx_ports``: where each one's traffic comes back,
        ``"paired"`` (``p ^ 1``, TRex's port pairs), ``"same"`` (loopback / one-port topology) or a
        mapping ``{tx_port: rx_port}``; default ports (0, 1), each receiving on the other.
        ``tx_port``/``rx_port``: shorthand for one sending port and where its traffic returns (the
        ``generator.trex`` configuration; ``rx_port == tx_port`` on a one-port loop).
        ``settle_s``: pause after the traffic stops before counters are read. ``rx_delay_ms``: how long
        TRex keeps counting latency packets after the last one was sent (None: the client's default,
        10 ms on physical ports). ``hdrh_unit_ns``: nanoseconds per unit of TRex's HdrHistogram
        (microseconds). ``client_factory``: makes the STLClient (the test seam).
        """
        if tx_port is not None:
            if ports is not None:
                raise ValueError("give either ports/rx_ports or tx_port/rx_port, not both")
            ports = (tx_port,)
            if rx_port is not None:
                rx_ports = {tx_port: rx_port}
        elif rx_port is not None:
            raise ValueError("rx_port needs tx_port")
        ports = (0, 1) if ports is None else ports
        if not ports:
            raise ValueError("ports must name at least one TRex port")
        if settle_s < 0:
            raise ValueError(f"settle_s must be >= 0, got {settle_s}")
        self.server = server
        self.sync_port = sync_port
        self.async_port = async_port
        self.ports = sorted(set(ports))
        self.rx_of = _rx_mapping(self.ports, rx_ports)
        self.settle_s = settle_s
        self.force_acquire = force_acquire
        self.promiscuous = promiscuous
        self.rx_delay_ms = rx_delay_ms
        self.hdrh_unit_ns = hdrh_unit_ns
        self._factory = client_factory or default_client_factory
        self._sleep = sleep
        self._clock = clock
        self._client: Any = None
        self._server_version = ""
        self._streams: dict[int, list[Any]] = {}
        self._trial: dict[str, Any] | None = None

    # --- connection -----------------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"{self.server}:{self.sync_port}"

    @property
    def all_ports(self) -> list[int]:
        return sorted(set(self.ports) | set(self.rx_of.values()))

    def connect(self) -> None:
        if self._client is not None:
            return
        try:
            client = self._factory(server=self.server, sync_port=self.sync_port,
                                   async_port=self.async_port)
            client.connect()
        except Exception as exc:
            raise GeneratorError(
                f"cannot connect to the TRex server at {self.address} (async port {self.async_port}): "
                f"{describe(exc)}. Is TRex running there in stateless mode (t-rex-64 -i)? "
                f"Run `harness doctor` to check.") from exc
        self._client = client
        try:
            self._call("acquire ports", client.acquire, ports=self.all_ports, force=self.force_acquire)
            self._call("reset ports", client.reset, ports=self.all_ports)
            if self.promiscuous:
                # Frames come back with our (locally administered) MACs, not the port's own.
                self._call("set promiscuous mode", client.set_port_attr, ports=self.all_ports,
                           promiscuous=True)
            self._call("clear counters", client.clear_stats, ports=self.all_ports)
            self._server_version = _version_string(
                self._call("read the server version", client.get_server_version))
        except GeneratorError:
            self.disconnect()
            raise
        self._streams = {}
        self._trial = None

    def disconnect(self) -> None:
        client, self._client = self._client, None
        self._streams = {}
        self._trial = None
        if client is None:
            return
        try:
            client.disconnect(stop_traffic=True, release_ports=True)
        except Exception as exc:  # leaving anyway; nothing left to protect
            log.warning("disconnecting from TRex at %s: %s", self.address, describe(exc))

    def version(self) -> str:
        return f"trex {self._server_version}".strip() if self._server_version else self.name

    # --- one trial ------------------------------------------------------------------------------------

    def reset(self) -> None:
        client = self._require_client()
        self._call("stop traffic", client.stop, ports=self.all_ports)
        self._call("remove streams", client.remove_all_streams, ports=self.all_ports)
        self._call("clear counters", client.clear_stats, ports=self.all_ports)
        self._streams = {}
        self._trial = None

    def add_streams(self, streams: Sequence[Any], port: int = 0) -> None:
        client = self._require_client()
        if port not in self.ports:
            raise GeneratorError(f"port {port} is not a transmit port of this generator ({self.ports})")
        streams = list(streams)
        if any(isinstance(s, Mapping) for s in streams):
            raise GeneratorError("the TRex driver takes STLStream objects, not their to_json() dicts")
        self._call(f"add {len(streams)} streams to port {port}", client.add_streams, streams,
                   ports=[port])
        self._streams.setdefault(port, []).extend(streams)

    def start(self, duration: float, mult: float = 1.0) -> None:
        client = self._require_client()
        if not self._streams:
            raise GeneratorError("start() before add_streams(): nothing to send")
        if not (isinstance(duration, int | float) and math.isfinite(duration) and duration > 0):
            raise GeneratorError(f"duration must be a positive number of seconds, got {duration!r}")
        tx_ports = sorted(self._streams)
        offered = mult_string(mult)  # validates mult
        pps = sum(_offered_pps(s, mult) for streams in self._streams.values() for s in streams)
        self._call("clear counters", client.clear_stats, ports=self.all_ports)
        # force=True: start even if TRex thinks the rate is above the link's; a generator that cannot
        # keep up is caught as a "short" trial instead.
        self._call(f"start traffic on ports {tx_ports} (mult {offered}, {duration} s)", client.start,
                   ports=tx_ports, mult=offered, duration=duration, force=True)
        self._trial = {"tx_ports": tx_ports, "duration": float(duration), "mult": float(mult),
                       "offered_pps": pps, "started": self._clock(), "ended": None,
                       "duration_s": float(duration), "events_seen": _event_count(client)}

    def wait_on_traffic(self, timeout: float | None = None) -> None:
        client = self._require_client()
        trial = self._require_trial()
        try:
            client.wait_on_traffic(ports=trial["tx_ports"], timeout=timeout, rx_delay_ms=self.rx_delay_ms)
        except Exception as exc:
            self._stop_quietly(trial)
            raise GeneratorError(f"TRex at {self.address}: traffic did not end within {timeout} s "
                                 f"({describe(exc)}); stopped it") from exc
        self._mark_ended(trial)
        failed = _failed_ports(client, trial["events_seen"], trial["tx_ports"])
        if failed:
            raise GeneratorError(f"TRex at {self.address}: {'; '.join(failed)} (the trial's counters are "
                                 "incomplete)")
        self._settle(trial)

    def stop(self) -> None:
        if self._client is None or self._trial is None:
            return
        trial = self._trial
        self._call("stop traffic", self._client.stop, ports=trial["tx_ports"])
        if trial["ended"] is None:
            elapsed = self._clock() - trial["started"]
            trial["duration_s"] = min(trial["duration"], elapsed)  # stopped early: it sent for less
            self._mark_ended(trial)

    def get_stats(self) -> TrialResult:
        client = self._require_client()
        trial = self._require_trial()
        if trial["ended"] is None:
            raise GeneratorError("get_stats() while the traffic runs: call wait_on_traffic() or stop()")
        self._settle(trial)
        stats = self._call("read counters", client.get_stats, ports=self.all_ports)
        return self._trial_result(stats, trial)

    # --- conversion -----------------------------------------------------------------------------------

    def _trial_result(self, stats: Mapping[Any, Any], trial: Mapping[str, Any]) -> TrialResult:
        tx_ports = trial["tx_ports"]
        rx_ports = sorted({self.rx_of[p] for p in tx_ports})

        def port_sum(ports: Sequence[int], key: str) -> int:
            total = 0
            for p in ports:
                value = _number(_port_stats(stats, p).get(key))
                if value is None:
                    raise GeneratorError(f"TRex at {self.address} gave no {key!r} counter for port {p}")
                total += int(value)
            return total

        per_pg_id = {}
        for pg_id in self._latency_pg_ids():
            per_pg_id[pg_id] = latency_from_trex(
                pg_id, stats.get("latency", {}).get(pg_id), stats.get("flow_stats", {}).get(pg_id),
                hdrh_unit_ns=self.hdrh_unit_ns)
        raw = {
            "server": self.address,
            "server_version": self._server_version,
            "tx_ports": tx_ports,
            "rx_ports": rx_ports,
            "mult": trial["mult"],
            "requested_duration_s": trial["duration"],
            "ports": {str(p): jsonable(_port_stats(stats, p)) for p in self.all_ports},
            "global": jsonable(stats.get("global", {})),
            "latency": jsonable(stats.get("latency", {})),
            "flow_stats": jsonable(stats.get("flow_stats", {})),
        }
        return TrialResult(
            offered_pps=trial["offered_pps"],
            duration_s=trial["duration_s"],
            tx_packets=port_sum(tx_ports, "opackets"),
            rx_packets=port_sum(rx_ports, "ipackets"),
            tx_bytes=port_sum(tx_ports, "obytes"),
            rx_bytes=port_sum(rx_ports, "ibytes"),
            latency=per_pg_id,
            generator=self.version(),
            raw=raw,
        )

    def _latency_pg_ids(self) -> list[int]:
        ids = set()
        for streams in self._streams.values():
            for s in streams:
                flow_stats = s.to_json().get("flow_stats", {})
                if flow_stats.get("enabled") and flow_stats.get("rule_type") == "latency":
                    ids.add(int(flow_stats["stream_id"]))
        return sorted(ids)

    # --- plumbing -------------------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise GeneratorError(f"TRex at {self.address}: could not {what}: {describe(exc)}") from exc

    def _require_client(self) -> Any:
        if self._client is None:
            raise GeneratorError(f"not connected to TRex at {self.address}: call connect() first")
        return self._client

    def _require_trial(self) -> dict[str, Any]:
        if self._trial is None:
            raise GeneratorError("no traffic was started: call start() first")
        return self._trial

    def _mark_ended(self, trial: dict[str, Any]) -> None:
        if trial["ended"] is None:
            trial["ended"] = self._clock()

    def _settle(self, trial: Mapping[str, Any]) -> None:
        remaining = self.settle_s - (self._clock() - trial["ended"])
        if remaining > 0:
            self._sleep(remaining)

    def _stop_quietly(self, trial: dict[str, Any]) -> None:
        try:
            self._client.stop(ports=trial["tx_ports"])
        except Exception as exc:
            log.warning("stopping TRex traffic at %s: %s", self.address, describe(exc))
        self._mark_ended(trial)


# --- pure helpers (no client) ----------------------------------------------------------------------------

def describe(exc: BaseException) -> str:
    """An exception's message. trex-stl-lib 0.3's ``STLError.__str__`` itself raises when called while an
    exception is being handled (it misreads traceback entries), so use its ``msg`` when it has one."""
    msg = getattr(exc, "msg", None)
    if isinstance(msg, str) and msg.strip():
        return msg.strip()
    try:
        return str(exc) or type(exc).__name__
    except Exception:
        return repr(exc)


def mult_string(mult: float) -> str:
    """``mult`` as the plain decimal STLClient.start() parses (it rejects ``1e-05`` and ``inf``)."""
    if isinstance(mult, bool) or not isinstance(mult, int | float) or not math.isfinite(mult) or mult <= 0:
        raise GeneratorError(f"mult must be a positive finite number, got {mult!r}")
    text = format(Decimal(repr(float(mult))), "f")
    return text if "." in text else text + ".0"


def latency_from_trex(pg_id: int, entry: Mapping[str, Any] | None, flow: Mapping[str, Any] | None,
                      hdrh_unit_ns: float = 1000.0) -> LatencyStats:
    """One pg_id of TRex's ``stats['latency']`` (and ``stats['flow_stats']``) as :class:`LatencyStats`."""
    entry = entry or {}
    lat = entry.get("latency", {}) or {}
    errors = entry.get("err_cntrs", {}) or {}
    min_us = _number(lat.get("total_min"))
    max_us = _number(lat.get("total_max"))
    mean_us = _number(lat.get("average"))

    hist = None
    encoded = lat.get("hdrh")
    if isinstance(encoded, str) and encoded:
        values = hdrh_values(encoded)
        if values:
            hist = latency.histogram(values, unit_ns=hdrh_unit_ns)
    samples = hist.get_total_count() if hist is not None else 0
    if samples:
        # TRex's own per-packet histogram: its min and mean beat total_min (the lowest 10 µs bucket, as
        # the client derives it) and average (a low-pass filter); total_max is exact either way.
        min_ns, mean_ns = float(hist.get_min_value()), float(hist.get_mean_value())
    else:
        hist = latency.histogram(bucket_values(lat.get("histogram", {}) or {}, min_us, max_us),
                                 unit_ns=1000.0)
        samples = hist.get_total_count()
        min_ns = min_us * 1000.0 if (min_us is not None and samples) else None
        mean_ns = mean_us * 1000.0 if (mean_us is not None and samples) else None
    max_ns = max_us * 1000.0 if (max_us is not None and samples) else None

    tx = _number(_total(flow, "tx_pkts"))
    rx = _number(_total(flow, "rx_pkts"))
    rx_packets = int(rx) if rx is not None else samples
    tx_packets = int(tx) if tx is not None else rx_packets + int(_number(errors.get("dropped")) or 0)
    return latency.stats_from_histogram(
        pg_id, hist, tx_packets=tx_packets, rx_packets=rx_packets,
        out_of_order=int(_number(errors.get("out_of_order")) or 0),
        min_ns=min_ns, max_ns=max_ns, mean_ns=mean_ns)


def bucket_values(buckets: Mapping[Any, Any], min_us: float | None = None,
                  max_us: float | None = None) -> list[tuple[float, int]]:
    """TRex's ``{bucket_usec: count}`` as ``(latency_us, count)``: each bucket at its midpoint, clamped to
    TRex's min/max (bucket ``k`` is ``[k, k + 10**floor(log10 k))`` µs; bucket 0 is ``[0, 10)``)."""
    out = []
    for key, count in buckets.items():
        low = float(key)
        n = int(_number(count) or 0)
        if n <= 0:
            continue
        value = 5.0 if low < 10 else low + 10.0 ** math.floor(math.log10(low)) / 2
        if min_us is not None:
            value = max(value, min_us)
        if max_us is not None and max_us > 0:
            value = min(value, max_us)
        out.append((value, n))
    return out


def hdrh_values(encoded: str) -> list[tuple[float, int]] | None:
    """The ``(value, count)`` pairs of an encoded HdrHistogram; None if it cannot be decoded."""
    from hdrh.histogram import HdrHistogram

    try:
        source = HdrHistogram.decode(encoded)
    except Exception as exc:
        log.warning("cannot decode TRex's HdrHistogram (%s); using its bucket histogram", exc)
        return None
    return [(item.value_iterated_to, item.count_added_in_this_iter_step)
            for item in source.get_recorded_iterator()]


def jsonable(value: Any) -> Any:
    """TRex's stats as plain JSON: string keys, None for 'N/A' and NaN."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if type(value).__name__ == "StatNotAvailable":
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _number(value: Any) -> float | None:
    """A finite number, or None for TRex's 'N/A' (StatNotAvailable), NaN, None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _total(flow: Mapping[str, Any] | None, key: str) -> Any:
    if not flow or not isinstance(flow.get(key), Mapping):
        return None
    return flow[key].get("total")


def _port_stats(stats: Mapping[Any, Any], port: int) -> Mapping[str, Any]:
    entry = stats.get(port, stats.get(str(port)))
    return entry if isinstance(entry, Mapping) else {}


def _offered_pps(stream: Any, mult: float) -> float:
    """What one stream sends: its rate x ``mult``, except latency streams, which TRex never scales."""
    from harness.traffic.profiles import stream_pps

    fields = stream.to_json()
    if not fields.get("enabled", True):
        return 0.0
    try:
        pps = stream_pps(fields)
    except ValueError as exc:
        raise GeneratorError(f"cannot tell the offered rate: {exc}") from exc
    flow_stats = fields.get("flow_stats") or {}
    is_latency = flow_stats.get("enabled") and flow_stats.get("rule_type") == "latency"
    return pps if is_latency else pps * mult


def _rx_mapping(ports: Sequence[int], rx_ports: RxPorts) -> dict[int, int]:
    if rx_ports == "same":
        return {p: p for p in ports}
    if rx_ports == "paired":
        return {p: p ^ 1 for p in ports}
    if isinstance(rx_ports, Mapping):
        missing = [p for p in ports if p not in rx_ports]
        if missing:
            raise ValueError(f"rx_ports has no receive port for transmit port(s) {missing}")
        return {p: int(rx_ports[p]) for p in ports}
    raise ValueError(f"rx_ports must be 'paired', 'same' or a {{tx_port: rx_port}} mapping, "
                     f"got {rx_ports!r}")


def _event_count(client: Any) -> int:
    get_events = getattr(client, "get_events", None)
    return len(get_events()) if callable(get_events) else 0


def _failed_ports(client: Any, seen: int, ports: Sequence[int]) -> list[str]:
    """The server's "port N job failed" events (TRex's port error event) since ``seen`` for ``ports``: the
    trial ended without sending what was asked, and only the server's log says why."""
    get_events = getattr(client, "get_events", None)
    if not callable(get_events):
        return []
    out = []
    for event in get_events()[seen:]:
        msg = str(getattr(event, "msg", ""))
        if "job failed" in msg and any(msg.startswith(f"port {p} ") for p in ports):
            out.append(msg)
    return out


def _version_string(info: Any) -> str:
    if isinstance(info, Mapping):
        return str(info.get("version", "")).strip()
    return str(info or "").strip()
