"""SimulatedGenerator: a traffic generator that sends nothing, for testing the rate search without a NIC.

It is the seam NFVbench's dummy generator is: the streams' offered rate goes in, a :class:`TrialResult`
comes out, computed from a *response curve* that stands in for the device under test. Nothing sleeps, so a
search of dozens of "10 s" trials takes milliseconds.

The model, one trial at a time:

* offered pps = the sum of every enabled stream's rate times ``mult``;
* the schedule is ``round(offered * duration)`` packets; the generator sends them, but never more than
  ``floor(max_tx_pps * duration)``; when it is capped the trial comes out ``short`` (it measured the
  generator, not the DUT);
* the DUT sees the *actual* tx rate ``tx / duration`` (``duration`` less the generator's own stalls, if any)
  and loses ``round(tx * loss)`` packets, where ``loss`` comes from the response curve at that rate (so a
  generator shortfall is never loss);
* the default curve is a DUT that forwards at most ``capacity_pps``, with a buffer of ``buffer_packets``
  that absorbs the excess for a while: short trials then pass above capacity and long ones do not, which is
  how a search's full-length validation trial can fail where its short trials passed;
* optional seeded noise perturbs the loss ratio (relative and/or absolute);
* optional *stalls* (:class:`StallClass`, seeded): the DUT is descheduled now and then — by default as often
  and as long as this machine kind's vCPUs are (:data:`MEASURED_STALLS`) — and a stall of ``s`` seconds at
  tx rate ``R`` loses what overflows its receive ring, ``max(0, R * s - ring_packets)``, on top of the
  curve's loss. The generator can stall too: then it skips ``max(0, offered * s - catchup_packets)`` packets
  of its schedule (``skipped_stall_packets``: not sent, so never the DUT's loss). A generator capped by
  ``max_tx_pps`` skips the rest of the schedule as ``skipped_slow_packets``. The trial reports its schedule
  (``intended_packets``) as the built-in generator does, unless ``reports_schedule=False`` (like TRex);
* latency streams (``flow_stats.rule_type == "latency"``) get :class:`LatencyStats` from a queueing model:
  a fixed ``base_ns`` plus an exponential queueing delay whose mean grows as ``rho / (1 - rho)`` with the
  utilisation ``rho = tx rate / capacity`` and saturates at ``max_queue_ns``. No histogram is encoded.

Every trial asked for is recorded in :attr:`SimulatedGenerator.trials` as ``(offered_pps, duration_s)``.
"""

from __future__ import annotations

import base64
import bisect
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.traffic.base import (
    DEFAULT_SHORTFALL_TOLERANCE,
    GeneratorError,
    LatencyStats,
    TrafficGenerator,
    TrialResult,
    stream_json,
)

LossCurve = Callable[[float], float] | Sequence[tuple[float, float]]

# The packet binary has no FCS; TRex's bps_L2 counts it, bps_L1 also counts preamble + SFD (8) and the
# inter-frame gap (12). Only used to turn bps rates into pps.
FCS_BYTES = 4
L1_OVERHEAD_BYTES = 20

# The receive ring of the DUT's memif port (slots): what a stall of the DUT can absorb.
DEFAULT_RING_PACKETS = 16384
# The generator's loop-stall threshold, as the built-in generator reports it (docs/generator.md).
GENERATOR_STALL_THRESHOLD_US = 50


@dataclass(frozen=True)
class StallClass:
    """One kind of scheduling stall: ``per_s`` of them per second on average (Poisson), each lasting between
    ``min_s`` and ``max_s`` seconds (uniform)."""

    per_s: float
    min_s: float
    max_s: float

    def __post_init__(self) -> None:
        if self.per_s < 0 or not 0 <= self.min_s <= self.max_s:
            raise ValueError(f"a stall class needs per_s >= 0 and 0 <= min_s <= max_s, got {self}")


# What a busy loop pinned to one vCPU of this machine kind sees (DESIGN.md section 10, issue 10): about one
# stall of 5-10 ms per second and three of 1-2 ms (the ~1000/s of 10-100 us fit in any ring and are left out).
MEASURED_STALLS = (StallClass(1.0, 0.005, 0.010), StallClass(3.0, 0.001, 0.002))


@dataclass(frozen=True)
class SimStream:
    """What the simulator needs from one stream."""

    pps: float                # the stream's own rate, before ``mult``
    frame_bytes: int          # length of the packet template (0 when the stream has none)
    latency_pg_id: int | None  # pg_id when the stream carries latency flow stats


def parse_stream(stream: Any) -> SimStream | None:
    """The rate, frame size and latency pg_id of one stream; ``None`` for a disabled stream."""
    d = stream_json(stream)
    if not d.get("enabled", True):
        return None
    mode = d.get("mode") or {}
    mode_type = mode.get("type", "continuous")
    if mode_type != "continuous":
        raise GeneratorError(f"the simulated generator only runs continuous streams, not {mode_type!r}")
    binary = (d.get("packet") or {}).get("binary") or ""
    frame_bytes = len(base64.b64decode(binary)) if binary else 0
    rate = mode.get("rate") or {}
    kind, value = rate.get("type", "pps"), float(rate.get("value", 0.0))
    if kind == "pps":
        pps = value
    elif kind in ("bps_L2", "bps_L1") and frame_bytes:
        wire = frame_bytes + FCS_BYTES + (L1_OVERHEAD_BYTES if kind == "bps_L1" else 0)
        pps = value / (8 * wire)
    else:
        raise GeneratorError(f"the simulated generator cannot turn a {kind!r} rate into pps")
    if pps < 0:
        raise GeneratorError(f"negative stream rate: {pps} pps")
    fs = d.get("flow_stats") or {}
    pg_id = int(fs["stream_id"]) if fs.get("enabled") and fs.get("rule_type") == "latency" else None
    return SimStream(pps=pps, frame_bytes=frame_bytes, latency_pg_id=pg_id)


def draw_stalls(rng: random.Random, classes: Sequence[StallClass], duration_s: float) -> list[float]:
    """The lengths (s) of the stalls that hit one trial of ``duration_s``: a Poisson process per class."""
    stalls: list[float] = []
    for c in classes:
        if c.per_s <= 0:
            continue
        t = rng.expovariate(c.per_s)
        while t < duration_s:
            stalls.append(rng.uniform(c.min_s, c.max_s))
            t += rng.expovariate(c.per_s)
    return stalls


def interpolate(points: Sequence[tuple[float, float]]) -> Callable[[float], float]:
    """A loss curve through ``(rate_pps, loss_ratio)`` points: linear between them, flat outside."""
    pts = sorted((float(r), float(loss)) for r, loss in points)
    if not pts:
        raise ValueError("a loss curve needs at least one (rate_pps, loss_ratio) point")
    rates = [r for r, _ in pts]

    def loss_at(rate: float) -> float:
        if rate <= rates[0]:
            return pts[0][1]
        if rate >= rates[-1]:
            return pts[-1][1]
        i = bisect.bisect_right(rates, rate)
        (r0, l0), (r1, l1) = pts[i - 1], pts[i]
        return l0 + (l1 - l0) * (rate - r0) / (r1 - r0)

    return loss_at


class SimulatedGenerator(TrafficGenerator):
    """A generator whose trials come from a response curve instead of a wire."""

    name = "simulated"

    def __init__(self, capacity_pps: float = 1e6, *, loss_at: LossCurve | None = None,
                 buffer_packets: int = 0, max_tx_pps: float | None = None,
                 base_latency_ns: float = 10_000.0, max_queue_ns: float = 1_000_000.0,
                 noise_relative: float = 0.0, noise_absolute: float = 0.0, seed: int = 0,
                 dut_stalls: Sequence[StallClass] = (), ring_packets: int = DEFAULT_RING_PACKETS,
                 generator_stalls: Sequence[StallClass] = (), catchup_packets: int = 0,
                 reports_schedule: bool = True,
                 shortfall_tolerance: float = DEFAULT_SHORTFALL_TOLERANCE) -> None:
        self.connected = False
        self.streams: list[SimStream] = []
        self.trials: list[tuple[float, float]] = []
        self.shortfall_tolerance = shortfall_tolerance
        self.reports_schedule = reports_schedule
        self._last: TrialResult | None = None
        self.set_response_curve(capacity_pps, loss_at, buffer_packets=buffer_packets)
        self.set_max_tx_rate(max_tx_pps)
        self.set_latency(base_latency_ns, max_queue_ns)
        self.set_noise(relative=noise_relative, absolute=noise_absolute, seed=seed)
        self.set_dut_stalls(dut_stalls, ring_packets=ring_packets, seed=seed)
        self.set_generator_stalls(generator_stalls, catchup_packets=catchup_packets, seed=seed)

    # ---- configuration -------------------------------------------------------------------------------

    def set_response_curve(self, capacity_pps: float, loss_at: LossCurve | None = None, *,
                           buffer_packets: int = 0) -> None:
        """How the simulated DUT loses packets.

        ``loss_at``: a callable ``rate_pps -> loss_ratio`` or a list of ``(rate_pps, loss_ratio)`` points
        (linearly interpolated, flat beyond the ends), evaluated at the actual tx rate. Without it the DUT
        forwards at most ``capacity_pps`` and its ``buffer_packets`` absorb the excess of one trial, so the
        loss of a trial above capacity grows with its duration. ``capacity_pps`` also drives latency.
        """
        if capacity_pps <= 0:
            raise ValueError(f"capacity_pps must be > 0, got {capacity_pps}")
        if buffer_packets < 0:
            raise ValueError(f"buffer_packets must be >= 0, got {buffer_packets}")
        if loss_at is not None and buffer_packets:
            raise ValueError("buffer_packets only applies to the default curve (loss_at=None)")
        self.capacity_pps = float(capacity_pps)
        self.buffer_packets = int(buffer_packets)
        if loss_at is None or callable(loss_at):
            self.loss_at: Callable[[float], float] | None = loss_at
        else:
            self.loss_at = interpolate(loss_at)

    def set_max_tx_rate(self, max_tx_pps: float | None) -> None:
        """The fastest the generator can send (``None``: as fast as asked)."""
        if max_tx_pps is not None and max_tx_pps <= 0:
            raise ValueError(f"max_tx_pps must be > 0 or None, got {max_tx_pps}")
        self.max_tx_pps = max_tx_pps

    def set_latency(self, base_ns: float, max_queue_ns: float) -> None:
        """Latency = ``base_ns`` + a queueing delay growing with utilisation, at most ``max_queue_ns``."""
        if base_ns < 0 or max_queue_ns < 0:
            raise ValueError("latency parameters must be >= 0")
        self.base_latency_ns = float(base_ns)
        self.max_queue_ns = float(max_queue_ns)

    def set_noise(self, relative: float = 0.0, absolute: float = 0.0, seed: int = 0) -> None:
        """Seeded Gaussian noise on each trial's loss ratio.

        ``relative``: standard deviation of a factor ``1 + N(0, relative)`` applied to the loss (a lossless
        rate stays lossless). ``absolute``: standard deviation of an added ``N(0, absolute)`` (clamped at 0,
        so it can make a lossless rate lose a little).
        """
        if relative < 0 or absolute < 0:
            raise ValueError("noise standard deviations must be >= 0")
        self.noise_relative = float(relative)
        self.noise_absolute = float(absolute)
        self._rng = random.Random(seed)

    def set_dut_stalls(self, stalls: Sequence[StallClass] = MEASURED_STALLS, *,
                       ring_packets: int = DEFAULT_RING_PACKETS, seed: int = 0) -> None:
        """The DUT stalls at random (seeded): a stall of ``s`` seconds at tx rate ``R`` loses
        ``max(0, R * s - ring_packets)`` packets (what its receive ring cannot hold), on top of the curve."""
        if ring_packets < 0:
            raise ValueError(f"ring_packets must be >= 0, got {ring_packets}")
        self.dut_stalls = tuple(stalls)
        self.ring_packets = int(ring_packets)
        # its own generator, so that turning stalls on does not change the noise sequence
        self._dut_stall_rng = random.Random(f"dut-stalls/{seed}")

    def set_generator_stalls(self, stalls: Sequence[StallClass] = MEASURED_STALLS, *,
                             catchup_packets: int = 0, seed: int = 0) -> None:
        """The generator stalls at random (seeded): a stall of ``s`` seconds skips
        ``max(0, offered * s - catchup_packets)`` packets of the schedule (``skipped_stall_packets``)."""
        if catchup_packets < 0:
            raise ValueError(f"catchup_packets must be >= 0, got {catchup_packets}")
        self.generator_stalls = tuple(stalls)
        self.catchup_packets = int(catchup_packets)
        self._gen_stall_rng = random.Random(f"generator-stalls/{seed}")

    # ---- the generator interface ---------------------------------------------------------------------

    def connect(self) -> None:
        self.connected = True

    def disconnect(self) -> None:
        self.connected = False

    def reset(self) -> None:
        self.streams = []
        self._last = None

    def add_streams(self, streams: Sequence[Any], port: int = 0) -> None:
        parsed = (parse_stream(s) for s in streams)
        self.streams.extend(s for s in parsed if s is not None)

    def start(self, duration: float, mult: float = 1.0) -> None:
        if duration <= 0:
            raise GeneratorError(f"trial duration must be > 0, got {duration}")
        if not self.streams:
            raise GeneratorError("no streams added")
        self._last = self.simulate(self.streams, duration, mult)

    def wait_on_traffic(self, timeout: float | None = None) -> None:
        if self._last is None:
            raise GeneratorError("wait_on_traffic() without start()")

    def stop(self) -> None:
        pass

    def get_stats(self) -> TrialResult:
        if self._last is None:
            raise GeneratorError("no trial has run")
        return self._last

    def version(self) -> str:
        return "simulated-1"

    # ---- the model -----------------------------------------------------------------------------------

    def simulate(self, streams: Sequence[SimStream], duration: float, mult: float = 1.0) -> TrialResult:
        """One trial of ``streams`` at ``mult`` for ``duration`` seconds, recorded in :attr:`trials`."""
        offered = sum(s.pps for s in streams) * mult
        self.trials.append((offered, duration))
        nominal = round(offered * duration)
        # the generator: descheduled for a while (skips that part of the schedule), then too slow for the rest
        gen_stalls = draw_stalls(self._gen_stall_rng, self.generator_stalls, duration)
        skipped_stall = min(nominal, sum(max(0, round(offered * s) - self.catchup_packets)
                                         for s in gen_stalls))
        running_s = max(0.0, duration - sum(gen_stalls))
        skipped_slow = 0
        if self.max_tx_pps is not None:
            skipped_slow = max(0, nominal - skipped_stall - math.floor(self.max_tx_pps * running_s))
        tx = nominal - skipped_stall - skipped_slow
        # the rate the DUT sees while the generator runs: a generator stall gives the DUT a pause, it does not
        # make it faster (so the curve is not evaluated at the lower average rate)
        tx_rate = tx / running_s if running_s > 0 else 0.0
        # the DUT: the curve's loss, plus what its own stalls overflow
        dut_stalls = draw_stalls(self._dut_stall_rng, self.dut_stalls, duration)
        stall_lost = sum(max(0, round(tx_rate * s) - self.ring_packets) for s in dut_stalls)
        lost = min(tx, round(tx * self._loss_ratio(tx, tx_rate, running_s)) + stall_lost)
        loss = lost / tx if tx else 0.0
        rx = tx - lost

        # Per-stream counts, for bytes and latency streams: each stream keeps its share of what was sent.
        sent_fraction = tx / nominal if nominal else 0.0
        tx_bytes = rx_bytes = 0
        latency: dict[int, LatencyStats] = {}
        for s in streams:
            s_tx = round(s.pps * mult * duration * sent_fraction)
            s_rx = s_tx - round(s_tx * loss)
            tx_bytes += s_tx * s.frame_bytes
            rx_bytes += s_rx * s.frame_bytes
            if s.latency_pg_id is not None:
                latency[s.latency_pg_id] = self._latency(s.latency_pg_id, s_tx, s_rx, tx_rate)
        return TrialResult(
            offered_pps=offered,
            duration_s=duration,
            tx_packets=tx,
            rx_packets=rx,
            tx_bytes=tx_bytes,
            rx_bytes=rx_bytes,
            dut_rx_full=tx - rx,  # every simulated loss is the DUT's
            latency=latency,
            shortfall_tolerance=self.shortfall_tolerance,
            generator=self.name,
            raw={"model_loss_ratio": loss, "tx_rate_pps": tx_rate, "capacity_pps": self.capacity_pps,
                 "dut_stalls": len(dut_stalls), "dut_stall_max_us": max(dut_stalls, default=0.0) * 1e6,
                 "dut_stall_lost_packets": min(tx, stall_lost)},
            **(self._schedule(nominal, skipped_stall, skipped_slow, gen_stalls) if self.reports_schedule
               else {}),
        )

    @staticmethod
    def _schedule(nominal: int, skipped_stall: int, skipped_slow: int,
                  stalls: Sequence[float]) -> dict[str, Any]:
        """What the built-in generator reports about its schedule and its own stalls (TRex cannot)."""
        return {
            "intended_packets": nominal,
            "skipped_stall_packets": skipped_stall,
            "skipped_slow_packets": skipped_slow,
            "generator_stalls": {"threshold_us": GENERATOR_STALL_THRESHOLD_US, "count": len(stalls),
                                 "total_ms": sum(stalls) * 1e3, "max_us": max(stalls, default=0.0) * 1e6},
        }

    def _loss_ratio(self, tx: int, tx_rate: float, duration: float) -> float:
        if tx == 0:
            return 0.0
        if self.loss_at is None:
            forwarded = self.capacity_pps * duration + self.buffer_packets
            loss = max(0.0, tx - forwarded) / tx
        else:
            loss = float(self.loss_at(tx_rate))
        if self.noise_relative:
            loss *= max(0.0, 1.0 + self._rng.gauss(0.0, self.noise_relative))
        if self.noise_absolute:
            loss += self._rng.gauss(0.0, self.noise_absolute)
        return min(1.0, max(0.0, loss))

    def _latency(self, pg_id: int, tx: int, rx: int, tx_rate: float) -> LatencyStats:
        if rx == 0:
            return LatencyStats(pg_id, tx, rx, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        base = self.base_latency_ns
        rho = tx_rate / self.capacity_pps
        queue = self.max_queue_ns if rho >= 1 else min(self.max_queue_ns, base * rho / (1 - rho))

        def at(p: float) -> float:  # percentile p (0..1) of base + Exp(mean=queue)
            return base + queue * -math.log(1.0 - p)

        return LatencyStats(
            pg_id=pg_id, tx_packets=tx, rx_packets=rx, out_of_order=0,
            min_ns=base, mean_ns=base + queue, p50_ns=at(0.5), p99_ns=at(0.99), p999_ns=at(0.999),
            max_ns=base + queue * math.log(max(rx, 2)),
        )
