"""What the per-tenant Redis AUTH costs a start (docs/security.md, "What it costs").

One build, two ways: the run's Redis with ACLs (serpensd makes a user per tenant, every runtime AUTHs as
its tenant: the code as it is) and without (nobody AUTHs: the store as it was), alternating block by block
(which goes first too), each block a rig of its own (serpensd and redis-server). Per block `starts`
times start_instance + stop_instance of FW (the first 2 of each block not counted); then per way the
median and quartiles of startup_us.

Run from the repository root, under the benchmark lock:
    flock /tmp/bench.lock env PYTHONPATH=. .venv/bin/python scripts/authcost.py [DESIGN [STARTS [BLOCKS]]]
(DESIGN a remote-state design, default fission; STARTS 20; BLOCKS 2).
"""

from __future__ import annotations

import statistics
import sys
from typing import Any

import harness.platforms  # noqa: F401  (the platforms, before the rig)
from harness import config as cfg
from harness.redis_server import RedisServer
from harness.rig import rig
from harness.serpens.sfc import SfcSpec


def main(argv: list[str]) -> int:
    design = argv[0] if argv else "fission"
    starts = int(argv[1]) if len(argv) > 1 else 20
    blocks = int(argv[2]) if len(argv) > 2 else 2
    orig = RedisServer.__init__
    conf = cfg.load()
    times: dict[str, list[float]] = {"no ACL": [], "ACL": []}
    for b in range(blocks):
        for way in (list(times) if b % 2 == 0 else list(times)[::-1]):   # which goes first alternates
            def init(self: RedisServer, *a: Any, acl: bool = False, _way: str = way, **k: Any) -> None:
                orig(self, *a, acl=acl and _way == "ACL", **k)
            RedisServer.__init__ = init   # type: ignore[method-assign]
            with rig(conf, design, sfc=SfcSpec.linear("fw")) as r:
                assert r.platform.redis is not None and (r.platform.redis.admin is not None) == (way == "ACL")
                for i in range(starts + 2):
                    rep = r.platform.start_instance("fw")
                    if i >= 2:
                        times[way].append(float(rep["startup_us"]))
                    r.platform.stop_instance(int(rep["instance"]))
    RedisServer.__init__ = orig   # type: ignore[method-assign]
    for way, v in times.items():
        q = statistics.quantiles(v, n=4)
        print(f"{design} {way}: {len(v)} starts, startup_us median {statistics.median(v):.1f} "
              f"(quartiles {q[0]:.1f}, {q[2]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
