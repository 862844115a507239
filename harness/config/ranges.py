"""Ranges of configuration values: the checks a type alone cannot make.

:func:`harness.config.load` checks every key's type against the defaults; this module then checks that
each number is one the harness can run with (``traffic.flows: 0``, ``measurement.latency_duration_s: 1e9``
or ``.nan`` are the right type and still nonsense) and the few rules that tie keys together (two
busy-polling processes on one core). Every problem is one :class:`ConfigError` line naming the key, the
range and the value, so a wrong setting stops a run before anything starts instead of deep inside it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.config.errors import ConfigError

MIN_FRAME_SIZE_B = 64        # Ethernet's minimum, FCS included
# A jumbo frame, FCS included: TRex's limit, and within the built-in generator's (GEN_MAX_PKT, 9600 bytes
# without FCS, native/generator/stream.h; jumbo frames in docs/generator.md)
MAX_FRAME_SIZE_B = 9000
MAX_FLOWS = 1 << 22          # 4 M flows: far beyond any NF table here; more is a typo, not an experiment
MAX_TRIAL_S = 3600.0         # one trial of an hour is already far beyond any experiment here
# The shortest trial the built-in generator runs (its --duration, native/generator/main.c): a shorter one
# would reach it and fail there, its cause among EAL's messages (issue 13: --duration 0)
MIN_TRIAL_S = 0.001
MAX_RATE_MPPS = 1000.0       # far above any link this harness drives; beyond it a value is a typo
MAX_CPU = 4095               # Linux's usual NR_CPUS; whether the CPU exists is checked when pinning


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    low_open: bool = False   # True: low itself is not allowed
    integer: bool = False
    zero: bool = False       # True: 0 is allowed too (it means "none", e.g. no warm-up trial)

    def holds(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.zero and value == 0:
            return True
        above = value > self.low if self.low_open else value >= self.low
        return above and value <= self.high

    def text(self) -> str:
        if self.integer:
            lo = int(self.low) + 1 if self.low_open else int(self.low)
            return f"an integer in {lo}..{int(self.high)}"
        interval = f"a number in {'(' if self.low_open else '['}{_num(self.low)}, {_num(self.high)}]"
        return f"0 or {interval}" if self.zero else interval


def _num(x: float) -> str:
    """1000000.0 → 1000000, 0.5 → 0.5: bounds as a user would type them."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _closed(low: float, high: float) -> Range:
    return Range(low, high)


def _open(low: float, high: float) -> Range:
    return Range(low, high, low_open=True)


def _int(low: int, high: int) -> Range:
    return Range(low, high, integer=True)


_RATIO = Range(0.0, 1.0)
_TIMEOUT = _open(0.0, 3600.0)
TRIAL_S = _closed(MIN_TRIAL_S, MAX_TRIAL_S)   # the length of one trial of the generator

# dotted key -> allowed range (for a list: of every element). Keys not named here take any value of their
# type; every number a run depends on is named.
RANGES: dict[str, Range] = {
    "machine.hugepages": _int(0, 1 << 20),
    "machine.lock_wait_s": _closed(0, 24 * 3600.0),
    "cores.generator": _int(0, MAX_CPU),
    "cores.platform": _int(0, MAX_CPU),
    "generator.local.settle_ms": _closed(0, 60_000),
    # the built-in generator's own limits (native/generator/main.c): a value it refuses must stop here, not
    # in its EAL init (GEN_MAX_BURST; an idle sleep shorter than twice its wake-up margin)
    "generator.local.burst": _int(1, 512),
    "generator.local.catchup_us": _closed(0, 1e6),
    "generator.local.idle_sleep_us": Range(100, 1e6, zero=True),
    "generator.local.link_timeout_s": _TIMEOUT,
    "generator.trex.sync_port": _int(1, 65535),
    "generator.trex.async_port": _int(1, 65535),
    "generator.trex.tx_port": _int(0, 255),
    "generator.trex.rx_port": _int(0, 255),
    "generator.trex.settle_ms": _closed(0, 60_000),
    "traffic.frame_sizes_b": _int(MIN_FRAME_SIZE_B, MAX_FRAME_SIZE_B),
    "traffic.flows": _int(1, MAX_FLOWS),
    "traffic.latency_pps": _open(0, 1e6),
    "search.min_rate_mpps": _open(0, MAX_RATE_MPPS),
    "search.max_rate_mpps": _open(0, MAX_RATE_MPPS),
    "search.max_search_s": _open(0, 24 * 3600.0),
    "search.warmup_s": Range(MIN_TRIAL_S, MAX_TRIAL_S, zero=True),
    "measurement.repetitions": _int(1, 1000),
    "measurement.latency_load_fraction": _open(0, 2),
    "measurement.latency_duration_s": TRIAL_S,
    "measurement.shortfall_tolerance": Range(0.0, 1.0, low_open=False),
    "platforms.wire.burst": _int(1, 512),                  # WIRE_MAX_BURST (native/wire/main.c)
    "platforms.wire.ready_timeout_s": _TIMEOUT,
    # serpensd's own limits (native/serpens/serpensd.c): beyond them it exits with its usage text
    "platforms.serpens.state_region_mb": _int(4, 1 << 20),
    "platforms.serpens.wake_batch": _int(1, 4096),         # half its rings (RING_SIZE / 2)
    "platforms.serpens.batch": _int(1, 128),
    "platforms.serpens.flush_us": _int(0, 10_000_000),
    "platforms.serpens.rx_gap_ns": _int(0, 1_000_000),     # serpensd --rx-gap-ns
    "platforms.serpens.keep_warm_s": _int(0, 7 * 24 * 3600),
    "platforms.serpens.instances": _int(0, 100),           # at most its instance slots (SM_MAX_INSTANCES)
    "platforms.serpens.max_instances": _int(1, 100),       # serpensd --max-instances (SM_MAX_INSTANCES)
    "platforms.serpens.pool": _int(0, 512),            # SP_MAX_POOL: apart from the slots
    "platforms.serpens.servers": _int(1, 9),           # a gateway and up to 8 workers (SL_MAX_PEERS)
    "platforms.serpens.ready_timeout_s": _TIMEOUT,
    "startup.instances": _int(1, 10_000),
    "startup.reps": _int(1, 1_000_000),
    "startup.slow_reps": _int(1, 1_000_000),
    "startup.pool": _int(1, 10_000),
    "startup.table_reps": _int(1, 1_000_000),
    "startup.memory_steps": _int(1, 100_000),
    "startup.timeout_s": _open(0, 7 * 24 * 3600.0),
    "platforms.serpens.gproxy_hold": _int(1, 1 << 20),      # serpensd --gproxy-hold
    "figure13.lengths": _int(1, 16),        # chains of FWs: one serpensd runs at most 16 NFs in an SFC
    "soak.duration_s": _open(0, 7 * 24 * 3600.0),
    "soak.trial_s": TRIAL_S,
    "soak.load_fraction": _open(0, 1.0),
    "soak.memory_tolerance": _open(0, 1.0),
    "figure14.rate_mpps": _open(0, MAX_RATE_MPPS),
    "figure14.probe_rates_mpps": _open(0, MAX_RATE_MPPS),
    "figure14.probe_s": TRIAL_S,
    "figure14.flows": _int(1, 65536),
    "figure14.latency_kpps": _open(0, 1000.0),
    "figure14.state_size_b": _int(8, 65536),
    "figure14.duration_s": TRIAL_S,
    "figure14.out_at_s": _open(0, MAX_TRIAL_S),
    "figure14.in_at_s": _open(0, MAX_TRIAL_S),
    "figure14.zero_at_s": _open(0, MAX_TRIAL_S),
    "figure14.bin_us": _int(10, 1_000_000),
    "figure14.split_rounds": _int(1, 10_000),
    "table2.rate_mpps": _open(0, MAX_RATE_MPPS),
    "table2.delivery_rate_mpps": _open(0, MAX_RATE_MPPS),
    "table2.duration_s": TRIAL_S,
    "table2.startup_reps": _int(1, 1_000_000),
    "redis.maxmemory_mb": _int(1, 1 << 20),
    "redis.ready_timeout_s": _TIMEOUT,
    "redis.timeout_ms": _int(1, 3_600_000),
    "doctor.floor_probe_s": _closed(0, MAX_TRIAL_S),
    "doctor.floor_profile.lost_ratio": _RATIO,
    "doctor.floor_profile.steal_ratio": _RATIO,
    "doctor.floor_profile.max_gap_us": _closed(0, 1e9),
    "doctor.floor_profile.gaps_10us_100us_per_s": _closed(0, 1e9),
    "doctor.floor_profile.gaps_1ms_5ms_per_s": _closed(0, 1e9),
    "doctor.floor_profile.gaps_over_5ms_per_s": _closed(0, 1e9),
}
# every search goal, whatever its name, shares these (the goal's own rules are in traffic/search.py)
GOAL_RANGES: dict[str, Range] = {
    "loss_ratio": Range(0.0, 1.0),
    "exceed_ratio": Range(0.0, 1.0),
    "relative_width": _open(0, 1),
    "initial_trial_s": TRIAL_S,
    "final_trial_s": TRIAL_S,
    "duration_sum_s": _open(0, 24 * 3600.0),
    "preceding_targets": _int(0, 100),
    "expansion_coefficient": _int(2, 1000),
}


# where serpensd's pooled runtimes wait and run their start (serpensd --start-placement; docs/startup.md)
START_PLACEMENTS = ("instance", "same", "other", "any")


def _get(config: Mapping[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _check(dotted: str, value: Any, rng: Range) -> None:
    values = value if isinstance(value, list) else [value]
    for v in values:
        if v is None or isinstance(v, bool) or not isinstance(v, int | float):
            continue    # the type check (or a null default such as redis.core) has spoken
        if not rng.holds(v):
            each = " (every element)" if isinstance(value, list) else ""
            raise ConfigError(f"configuration key '{dotted}' must be {rng.text()}{each}, got {v!r}")


def check(config: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` for the first value out of its range, or keys that contradict each
    other."""
    for dotted, rng in RANGES.items():
        _check(dotted, _get(config, dotted), rng)
    for name, goal in (_get(config, "search.goals") or {}).items():
        for key, rng in GOAL_RANGES.items():
            if isinstance(goal, Mapping):
                _check(f"search.goals.{name}.{key}", goal.get(key), rng)
    redis_core = _get(config, "redis.core")
    if redis_core is not None and (isinstance(redis_core, bool) or not isinstance(redis_core, int)):
        raise ConfigError(f"configuration key 'redis.core' must be null or a CPU number, got {redis_core!r}")
    _check("redis.core", redis_core, _int(0, MAX_CPU))
    s = config["search"]
    if not s["min_rate_mpps"] < s["max_rate_mpps"]:
        raise ConfigError("configuration key 'search.min_rate_mpps' must be below 'search.max_rate_mpps', "
                          f"got {s['min_rate_mpps']} and {s['max_rate_mpps']}")
    check_frame_sizes(config, config["traffic"]["frame_sizes_b"], "configuration key 'traffic.frame_sizes_b'")
    check_cores(config)
    instances = _get(config, "platforms.serpens.instances")
    slots = _get(config, "platforms.serpens.max_instances")
    if isinstance(instances, int) and isinstance(slots, int) and instances > slots:
        raise ConfigError(f"configuration key 'platforms.serpens.instances' must be at most "
                          f"'platforms.serpens.max_instances' ({slots}: serpensd's instance slots), "
                          f"got {instances}")
    placement = _get(config, "platforms.serpens.start_placement")
    if placement is not None and placement not in START_PLACEMENTS:
        raise ConfigError(f"configuration key 'platforms.serpens.start_placement' must be one of "
                          f"{', '.join(START_PLACEMENTS)} (serpensd --start-placement), got {placement!r}")


def max_frame_size(config: Mapping[str, Any]) -> int:
    """The largest frame the configured generator can send (the same for both generators now)."""
    return MAX_FRAME_SIZE_B


def check_frame_sizes(config: Mapping[str, Any], sizes: list[int], what: str) -> None:
    high = max_frame_size(config)
    for size in sizes:
        if not MIN_FRAME_SIZE_B <= size <= high:
            raise ConfigError(f"{what} must be in {MIN_FRAME_SIZE_B}..{high} bytes, got {size}")


def check_cores(config: Mapping[str, Any]) -> None:
    """The built-in generator and the platform's data plane both busy-poll: on one core each gets half of
    it in slices of the scheduler's tick, and latency reads milliseconds (issue 13). Refused unless
    ``cores.allow_shared`` says it is meant."""
    cores = config["cores"]
    if (config["generator"]["kind"] == "local" and cores["generator"] == cores["platform"]
            and not cores.get("allow_shared")):
        raise ConfigError(f"configuration keys 'cores.generator' and 'cores.platform' are both "
                          f"{cores['platform']}: two busy-polling processes on one core measure the "
                          "scheduler, not the platform; give them different cores, or set "
                          "cores.allow_shared: true if that is what you mean")
