"""The one interface every traffic generator implements, and what one trial returns.

Three layers, as in NFVbench and FD.io CSIT (docs/methodology.md):

* a *generator* (this interface) sends STL streams for a duration and reports counters;
* the *measurer* (harness.traffic.measure) turns "offered rate R for T seconds" into one trial;
* the *search* (harness.traffic.search) finds NDR/PDR over trials.

The interface follows the shape of trex-stl-lib's ``STLClient`` (connect, add_streams, start, wait_on_traffic,
stop, get_stats) so that the TRex driver is a thin adapter and the built-in DPDK generator is a drop-in.
Both take the same ``STLStream`` objects.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# Loss is computed against what was actually sent. A trial whose generator sent less than this fraction of
# the offered packets is flagged as "short": it says nothing about the device under test.
DEFAULT_SHORTFALL_TOLERANCE = 0.005
# Packets a generator skipped while it was descheduled are not the DUT's doing and, while rare, are left out
# of both sent and unsent. This VM takes ~1-1.5 % of a busy loop's time in gaps longer than the generator's
# bounded catch-up covers (gaps of 1-10 ms, DESIGN.md section 10), a few per second, so one 1 s trial can
# lose 3-4 %; beyond 5 % of the schedule the trial did not offer its load (a busy neighbour on the
# generator's core, not the VM's usual stalls) and is flagged like a short one.
DEFAULT_STALL_TOLERANCE = 0.05


@dataclass
class LatencyStats:
    """Latency of one latency stream (a TRex ``pg_id``), from per-packet timestamps."""

    pg_id: int
    tx_packets: int
    rx_packets: int
    out_of_order: int
    min_ns: float
    mean_ns: float
    p50_ns: float
    p99_ns: float
    p999_ns: float
    max_ns: float
    # The full histogram, HdrHistogram-encoded (base64 "HISTFAAA..."), so any percentile can be recomputed.
    histogram: str = ""

    @property
    def lost(self) -> int:
        return max(0, self.tx_packets - self.rx_packets)


@dataclass
class TrialResult:
    """Counters of one trial, after the traffic stopped and the counters settled."""

    offered_pps: float          # sum of the stream rates asked for (load streams and latency streams)
    duration_s: float           # how long the generator was sending
    tx_packets: int             # packets put on the link (a packet the DUT had no room for still counts)
    rx_packets: int             # packets that came back
    tx_bytes: int = 0
    rx_bytes: int = 0
    dut_rx_full: int = 0        # of tx_packets, how many the DUT's receive ring refused (a DUT-side drop)
    latency: dict[int, LatencyStats] = field(default_factory=dict)
    shortfall_tolerance: float = DEFAULT_SHORTFALL_TOLERANCE
    stall_tolerance: float = DEFAULT_STALL_TOLERANCE
    generator: str = ""
    raw: dict[str, Any] = field(default_factory=dict)  # the generator's own report, kept for the sidecar
    # What the schedule called for over the trial (every stream's rate x duration); 0 when the generator
    # cannot say (then tx_packets stands in for it).
    intended_packets: int = 0
    # Packets of the schedule the generator did not send, by cause (docs/generator.md): it was descheduled
    # (a loop stall longer than its bounded catch-up), or it ran but could not keep the rate. Neither is
    # DUT loss; only the second means the generator did not reach the intended load.
    skipped_stall_packets: int = 0
    skipped_slow_packets: int = 0
    # The generator's own loop stalls in this trial: {"threshold_us", "count", "total_ms", "max_us"}.
    generator_stalls: dict[str, Any] = field(default_factory=dict)
    # The device under test over the same trial, from its own counters (filled by the measurer when it
    # knows the platform): its loop stalls, drops and per-stage busy time (harness.traffic.measure).
    dut: dict[str, Any] = field(default_factory=dict)
    # The per-packet latency trace of this trial (serpens-gen --latency-trace, read with
    # harness.traffic.latency_trace), when the generator was asked for one.
    latency_trace: str | None = None

    @property
    def loss_packets(self) -> int:
        return max(0, self.tx_packets - self.rx_packets)

    @property
    def loss_ratio(self) -> float:
        return self.loss_packets / self.tx_packets if self.tx_packets else 0.0

    @property
    def tx_pps(self) -> float:
        return self.tx_packets / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def rx_pps(self) -> float:
        return self.rx_packets / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def stalled(self) -> bool:
        """The generator was descheduled for more than ``stall_tolerance`` of its schedule: the load was not
        offered, whatever the DUT did."""
        return self.skipped_stall_packets > self.intended_packets * self.stall_tolerance

    @property
    def short(self) -> bool:
        """True when the generator fell short of the offered rate: the trial measured the generator.

        With a generator that reports its schedule (``intended_packets``), that is packets it skipped while
        running (``skipped_slow_packets``) beyond ``shortfall_tolerance``, or packets it skipped while
        descheduled beyond ``stall_tolerance`` (:attr:`stalled`); otherwise the sent rate against the
        offered one."""
        if self.intended_packets:
            return (self.skipped_slow_packets > self.intended_packets * self.shortfall_tolerance
                    or self.stalled)
        return self.tx_pps < self.offered_pps * (1.0 - self.shortfall_tolerance)

    @property
    def reached_intended_load(self) -> bool:
        return not self.short


class GeneratorError(RuntimeError):
    """The generator could not run a trial (not connected, bad profile, process died...)."""


def stream_json(stream: Any) -> dict[str, Any]:
    """An ``STLStream`` (or an already-converted dict) as the JSON a TRex server receives."""
    if isinstance(stream, dict):
        return stream
    to_json = getattr(stream, "to_json", None)
    if to_json is None:
        raise GeneratorError(f"not an STLStream or stream dict: {stream!r}")
    return to_json()


class TrafficGenerator(abc.ABC):
    """A traffic generator that takes trex-stl-lib ``STLStream`` objects."""

    name: str = "abstract"

    @abc.abstractmethod
    def connect(self) -> None:
        """Get ready to send (start or reach the generator). Idempotent."""

    @abc.abstractmethod
    def disconnect(self) -> None:
        """Release everything :meth:`connect` took. Idempotent."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Remove all streams and clear the counters."""

    @abc.abstractmethod
    def add_streams(self, streams: Sequence[Any], port: int = 0) -> None:
        """Add ``STLStream`` objects (or their ``to_json()`` dicts) to ``port``."""

    @abc.abstractmethod
    def start(self, duration: float, mult: float = 1.0) -> None:
        """Start every added stream at ``mult`` times its own rate, for ``duration`` seconds."""

    @abc.abstractmethod
    def wait_on_traffic(self, timeout: float | None = None) -> None:
        """Block until the traffic started by :meth:`start` has ended and the counters have settled."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop the traffic now."""

    @abc.abstractmethod
    def get_stats(self) -> TrialResult:
        """Counters of the last trial."""

    def version(self) -> str:
        """What generator (and version) produced the numbers; goes into the run metadata."""
        return self.name

    # One trial, the way the measurer uses the interface.
    def run_trial(self, streams: Sequence[Any], duration: float, mult: float = 1.0,
                  port: int = 0) -> TrialResult:
        self.reset()
        self.add_streams(streams, port=port)
        self.start(duration=duration, mult=mult)
        self.wait_on_traffic(timeout=duration + 60.0)
        return self.get_stats()

    def __enter__(self) -> TrafficGenerator:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()
