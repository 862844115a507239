"""The churn workload's settings and bookkeeping: new flows at a fixed rate, never the same flow twice.

The *churn* flow workload (docs/methodology.md, "Flow workloads") adds to the fixed flows a stream whose
every packet opens a new 5-tuple (harness.traffic.profiles.churn_flows), at ``traffic.churn.new_flows_per_s``.
A platform is started once per point and serves every trial of it (warm-up, search, latency trial), while
the generator starts afresh for each trial. So the flows must be handed out per point, not per trial:
:class:`ChurnFlows` gives each trial the next unused range of the churn series, and a second trial never
repeats a flow the platform already saw.

NFs that keep per-flow state without ever freeing it bound how many new flows a point may open. NAT is the
one that matters: its mappings never expire (native/nfs/nat.c), so when its pool of address/port pairs is
empty it drops every new flow. :func:`check_points` refuses, before anything is measured, a churn rate that
could exhaust the pool (or MON's tables, which then stop counting) within the longest a point can run, and
:class:`ChurnFlows` stops a point with a clear error rather than let it run past that budget.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.config import Config, ConfigError
from harness.traffic import profiles
from harness.traffic.base import GeneratorError

WORKLOADS = ("fixed", "churn")
# Per trial the flows handed out exceed rate x duration by this much: serpens-gen sends at most
# floor(rate x duration) packets of a stream, but TRex times the trial itself and may send a few more; a
# churn stream that outran its range would wrap and repeat flows.
TRIAL_MARGIN = 0.01
# The NFs whose per-flow state is never freed, and what bounds it (their deployment arguments, with the
# NF's own defaults): NAT's pool (external addresses x ports), MON's flow and host tables (every churn
# flow is also a new source host).
MON_DEFAULT_CAPACITY = 65536


class ChurnExhausted(GeneratorError):
    """A point wanted more new flows than its budget: it ran longer than :func:`point_traffic_s`."""


@dataclass(frozen=True)
class ChurnSettings:
    new_flows_per_s: float
    workloads: tuple[str, ...]      # the flow workloads experiments measure where they offer a choice


def settings(config: Config) -> ChurnSettings:
    """``traffic.churn`` and ``traffic.flows_workloads``, checked: a bad value is a ConfigError naming it."""
    traffic = config["traffic"]
    rate = traffic["churn"]["new_flows_per_s"]
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0:
        raise ConfigError(f"traffic.churn.new_flows_per_s must be a positive number of new flows per second, "
                          f"got {rate!r}")
    workloads = traffic["flows_workloads"]
    bad = [w for w in workloads if w not in WORKLOADS]
    if not workloads or bad or len(set(workloads)) != len(workloads):
        raise ConfigError(f"traffic.flows_workloads must list some of {', '.join(WORKLOADS)}, each once, "
                          f"got {workloads!r}")
    return ChurnSettings(float(rate), tuple(workloads))


def workloads(config: Config) -> tuple[str, ...]:
    """The flow workloads to measure where an experiment offers both (``traffic.flows_workloads``)."""
    return settings(config).workloads


def point_traffic_s(config: Config) -> float:
    """The most seconds of traffic one point (one platform instance) can see: the search's time limit (its
    warm-up included; MLRsearch checks the limit between trials, so one more trial of the longest kind may
    start just before it) plus the latency trial."""
    s = config["search"]
    longest = max(max(g["initial_trial_s"], g["final_trial_s"]) for g in s["goals"].values())
    return s["warmup_s"] + s["max_search_s"] + longest + config["measurement"]["latency_duration_s"]


def allotment(churn_pps: float, duration_s: float) -> int:
    """How many flows of the churn series one trial of ``duration_s`` at ``churn_pps`` is given."""
    return math.ceil(churn_pps * duration_s * (1 + TRIAL_MARGIN)) + 1


def trials_per_point(config: Config) -> int:
    """The most trials one point can run: :func:`point_traffic_s` over the shortest trial, plus two."""
    s = config["search"]
    shortest = min([g["initial_trial_s"] for g in s["goals"].values()]
                   + [config["measurement"]["latency_duration_s"]]
                   + ([s["warmup_s"]] if s["warmup_s"] > 0 else []))
    return math.ceil(point_traffic_s(config) / max(shortest, 1e-3)) + 2


def flows_per_point(config: Config, new_flows_per_s: float) -> int:
    """The most flows of the churn series one point can take: the allotments of every trial over
    :func:`point_traffic_s` (each rounded up by one)."""
    return math.ceil(new_flows_per_s * point_traffic_s(config) * (1 + TRIAL_MARGIN)) \
        + trials_per_point(config)


def nf_flow_capacity(nf: str, args: dict[str, Any]) -> tuple[int, str] | None:
    """How many distinct flows ``nf`` holds state for before it fails or stops keeping it, and why; None for
    NFs whose state does not grow with new flows (or is bounded by something else)."""
    if nf == "nat":
        ips = [a for a in str(args.get("external_ip", "")).split(",") if a.strip()]
        lo, _, hi = str(args.get("ports", "1024-65535")).partition("-")
        try:
            ports = int(hi) - int(lo) + 1
        except ValueError:
            return None   # the NF refuses such arguments itself, with its own message
        return len(ips) * ports, (f"NAT's pool of {len(ips) * ports} address/port pairs ({len(ips)} external "
                                  f"address(es) x ports {args.get('ports', '1024-65535')}); its mappings "
                                  "never expire, and a new flow finding the pool empty is dropped")
    if nf == "mon":
        cap = min(int(args.get("flows", MON_DEFAULT_CAPACITY)), int(args.get("hosts", MON_DEFAULT_CAPACITY)))
        return cap, (f"MON's flow/host tables of {cap} entries; a full table stops counting new flows "
                     "(every churn flow is also a new host)")
    return None


@dataclass(frozen=True)
class Budget:
    """What one churn point may use, and what bounds it."""

    new_flows_per_s: float
    point_traffic_s: float
    flows_per_point: int          # the churn flows one point takes at most
    limit: int                    # the churn flows one point may take (the series, or the tightest NF)
    limited_by: str

    def sidecar(self) -> dict[str, Any]:
        return {"new_flows_per_s": self.new_flows_per_s, "source_block": f"{profiles.CHURN_SRC}/10",
                "point_traffic_s_max": self.point_traffic_s, "flows_per_point_max": self.flows_per_point,
                "flows_per_point_limit": self.limit, "limited_by": self.limited_by}


def budget(config: Config, nfs: Iterable[str] = ()) -> Budget:
    """The churn budget of a point whose SFC has ``nfs`` (NF types), checked: a rate that could exhaust the
    churn series or an NF's per-flow state within :func:`point_traffic_s` is a ConfigError that says how
    far to lower it."""
    rate = settings(config).new_flows_per_s
    total_s = point_traffic_s(config)
    need = flows_per_point(config, rate)
    # the fixed flows and the latency flow hold state too
    taken = config["traffic"]["flows"] + 1
    limit, why = profiles.CHURN_MAX_FLOWS, f"the churn series ({profiles.CHURN_MAX_FLOWS} flows, " \
                                           f"{profiles.CHURN_SRC}/10)"
    nf_args = config["platforms"]["serpens"]["nfs"]
    for nf in dict.fromkeys(nfs):
        cap = nf_flow_capacity(nf, dict(nf_args.get(nf) or {}))
        if cap is not None and cap[0] - taken < limit:
            limit, why = max(0, cap[0] - taken), f"{cap[1]}, less the {taken} fixed and latency flows"
    if need > limit:
        most = max(0, limit - trials_per_point(config)) / (total_s * (1 + TRIAL_MARGIN))
        raise ConfigError(
            f"traffic.churn.new_flows_per_s = {rate:g} opens up to {need} new flows in one point (up to "
            f"{total_s:g} s of traffic: warm-up, search.max_search_s, one more trial, the latency trial), "
            f"more than {why}: {limit}; use at most {math.floor(most)} new flows/s or shorten the search")
    return Budget(rate, total_s, need, limit, why)


def sfc_nfs(sfc: str | None) -> list[str]:
    """The NF types of a linear SFC text ("fw,mon,nat")."""
    return [n.strip() for n in sfc.split(",") if n.strip()] if sfc else []


class ChurnFlows:
    """The churn series of one point: each trial gets the next unused flows, never more than ``limit``."""

    def __init__(self, new_flows_per_s: float, limit: int = profiles.CHURN_MAX_FLOWS,
                 limited_by: str = "the churn series") -> None:
        self.new_flows_per_s = new_flows_per_s
        self.limit = min(limit, profiles.CHURN_MAX_FLOWS)
        self.limited_by = limited_by
        self.next = 0                 # the first flow not handed out yet = flows handed out so far

    @classmethod
    def for_point(cls, config: Config, nfs: Sequence[str] = ()) -> ChurnFlows:
        b = budget(config, nfs)
        return cls(b.new_flows_per_s, b.limit, b.limited_by)

    def take(self, churn_pps: float, duration_s: float) -> tuple[int, int]:
        """(first flow, number of flows) for one trial at ``churn_pps`` for ``duration_s``."""
        n = allotment(churn_pps, duration_s)
        if self.next + n > self.limit:
            raise ChurnExhausted(
                f"the churn workload has handed out {self.next} new flows in this point and the next trial "
                f"needs {n} more, past {self.limited_by} ({self.limit}): the point ran longer than budgeted; "
                "lower traffic.churn.new_flows_per_s or search.max_search_s")
        first = self.next
        self.next += n
        return first, n
