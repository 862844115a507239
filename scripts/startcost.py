"""start_instance's startup_us on serpens, builds compared interleaved (docs/security.md, "What it costs").

Per block, every --build DIR (a meson build dir: serpens/serpensd, serpens/serpens-runtime, nfs/) gets a
serpensd of its own (the order alternating from block to block), and `--starts` times start_instance +
stop_instance of the SFC; one JSON line per start (startup_us and its steps), then per build the medians
of all starts, of each block's first (a pool process's first start for its tenant maps the tenant's state
region) and of the rest.

Run from the repository root, under the benchmark lock:
    flock /tmp/bench.lock env PYTHONPATH=. .venv/bin/python scripts/startcost.py --build A --build B
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

import builds_ab  # scripts/builds_ab.py, beside this one

from harness import runlock
from harness.rig import rig
from harness.serpens.sfc import SfcSpec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", action="append", default=[], help="meson build dir (serpens/, nfs/)")
    ap.add_argument("--blocks", type=int, default=4, help="serpensd runs per build")
    ap.add_argument("--starts", type=int, default=10, help="starts per block")
    ap.add_argument("--sfc", default="fw,mon,nat")
    ap.add_argument("--design", default="serpens")
    a = ap.parse_args()
    runlock.set_default_wait(120.0)
    builds = a.build or ["build/native"]
    if not builds_ab.check("startcost", builds):
        return 2
    if a.blocks < 1 or a.starts < 1:
        print("startcost: --blocks and --starts must be positive", file=sys.stderr)
        return 2
    rows: dict[str, list[dict[str, Any]]] = {b: [] for b in builds}
    for blk, b in builds_ab.interleaved(builds, a.blocks):
        with rig(builds_ab.config_for(b), a.design, sfc=SfcSpec.linear(a.sfc)) as r:
            name = next(iter(r.platform.sfc_ids))
            for i in range(a.starts):
                rep = r.platform.start_instance(name)
                r.platform.stop_instance(rep["instance"])
                row = {"build": b, "block": blk, "i": i, "startup_us": rep["startup_us"],
                       "steps": rep.get("steps")}
                rows[b].append(row)
                print(json.dumps(row), flush=True)
    for b in builds:
        x = rows[b]
        first = [r["startup_us"] for r in x if r["i"] == 0]
        rest = [r["startup_us"] for r in x if r["i"] > 0]
        print(json.dumps({"build": b, "n": len(x), "median_us": statistics.median(r["startup_us"] for r in x),
                          "median_first_us": statistics.median(first),
                          "median_rest_us": statistics.median(rest) if rest else None}), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError, ValueError) as e:  # a platform that fails, the run lock held
        print(f"startcost: {e}", file=sys.stderr)
        sys.exit(1)
