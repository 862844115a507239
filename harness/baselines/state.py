"""The state axis of Fig. 12: Fission and SNF state management on Serpens' own substrate.

Both are :class:`~harness.serpens.platform.SerpensPlatform` — the same serpensd, runtime processes, Chainer,
router, cores, batch size and NF binaries — with only the state backend changed (DESIGN.md section 3,
docs/state-backends.md), and a redis-server of the run's own (harness/redis_server.py) started before
serpensd and always stopped after it:

* ``fission``: every table in Redis; each NF's share of a batch reads its keys in one pipelined round trip
  before and writes what changed in one after (the paper: "we aggregate multiple state access requests
  into a single one");
* ``snf``: per-flow tables in the local State Manager, global tables in Redis, accessed the same way.

They are the state axis only: instance startup, chaining and scaling stay Serpens'. A full Fission (exec
cold start, a proxy between NFs) or SNF (flowlet migration) composes those axes too (docs/baselines.md).
"""

from __future__ import annotations

from harness.serpens.platform import SerpensPlatform


class FissionStatePlatform(SerpensPlatform):
    name = "fission"
    state_backend = "fission"
    axes = frozenset({"state"})


class SnfStatePlatform(SerpensPlatform):
    name = "snf"
    state_backend = "snf"
    axes = frozenset({"state"})


__all__ = ["FissionStatePlatform", "SnfStatePlatform"]
