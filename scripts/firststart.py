"""A pool process's first start of an SFC against its later ones, builds compared interleaved
(docs/startup.md, "What was cut"; docs/security.md, "NF images by descriptor").

Per block, every --build DIR (a meson build dir: serpens/serpensd, serpens/serpens-runtime, nfs/) gets a
serpensd of its own with a pool of --held + 2 (the order alternating from block to block). The rig's
instance is stopped, then --held instances of the SFC are started at once and stopped: each but the first
runs in a pool process that served no tenant yet (its first start: the tenant's region and the SFC's images
come with it); then --held again, each in a process that served the tenant (later starts). Prints per build
the medians of startup_us and of its wake, map and ready steps, first and later starts apart.

Run from the repository root, under the benchmark lock:
    flock /tmp/bench.lock env PYTHONPATH=. .venv/bin/python scripts/firststart.py --build A --build B
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import builds_ab  # scripts/builds_ab.py, beside this one

from harness import runlock
from harness.rig import rig
from harness.serpens.sfc import SfcSpec

STEPS = ("wake_us", "map_us", "ready_us")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", action="append", default=[], help="meson build dir (serpens/, nfs/)")
    ap.add_argument("--blocks", type=int, default=8, help="serpensd runs per build")
    ap.add_argument("--held", type=int, default=6, help="instances started at once per round")
    ap.add_argument("--sfc", default="fw")
    a = ap.parse_args()
    runlock.set_default_wait(120.0)
    builds = a.build or ["build/native"]
    if not builds_ab.check("firststart", builds):
        return 2
    if a.blocks < 1 or a.held < 2:
        print("firststart: --blocks must be positive and --held at least 2", file=sys.stderr)
        return 2
    rows: dict[str, dict[str, list[dict[str, float]]]] = {b: {"first": [], "later": []} for b in builds}
    for _, b in builds_ab.interleaved(builds, a.blocks):
        c = builds_ab.config_for(b)
        c["platforms"]["serpens"]["pool"] = a.held + 2
        with rig(c, "serpens", sfc=SfcSpec.linear(a.sfc)) as r:
            pl = r.platform
            name = next(iter(pl.sfc_ids))
            for slot in list(pl.instances):
                pl.stop_instance(slot)
            for kind in ("first", "later"):
                reps = []
                for _ in range(a.held):
                    time.sleep(0.001)
                    reps.append(pl.start_instance(name))
                for x in reps:
                    pl.stop_instance(int(x["instance"]))
                # the first of each round runs in the rig's own process, which served the tenant
                rows[b][kind] += [{"startup_us": x["startup_us"], **{k: x["steps"][k] for k in STEPS}}
                                  for x in reps[1:]]
    for b, kinds in rows.items():
        parts = []
        for kind, xs in kinds.items():
            med = {k: statistics.median(x[k] for x in xs) for k in ("startup_us", *STEPS)}
            steps = " ".join(f"{k[:-3]} {med[k]:.1f}" for k in STEPS)
            parts.append(f"{kind} n={len(xs)} startup_us {med['startup_us']:.1f} ({steps})")
        print(f"{b}: " + "; ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
