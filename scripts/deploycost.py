"""deploy_nf's time, builds compared interleaved (docs/security.md, "What it costs": deploy-mode init moved
out of serpensd into a tenant's deployer, native/serpens/deployer.h).

Per block, every --build DIR (a meson build dir: serpens/serpensd, serpens/serpens-runtime, nfs/) gets a
serpensd of its own (the order alternating from block to block). In it, `--deploys` deploy_nf of FW for the
default tenant (whose deployer, if the build has one, exists already: the rig deployed the SFC's NF), then
`--tenants` deploy_nf of FW each for a new tenant (that tenant's first: its state region and, with
deployers, its deployer's start). Times are the client's, request to reply, in ms. One JSON line per
deploy, then per build the medians.

Run from the repository root, under the benchmark lock:
    flock /tmp/bench.lock env PYTHONPATH=. .venv/bin/python scripts/deploycost.py --build A --build B
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import builds_ab  # scripts/builds_ab.py, beside this one

from harness import runlock
from harness.rig import rig
from harness.serpens.sfc import SfcSpec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", action="append", default=[], help="meson build dir (serpens/, nfs/)")
    ap.add_argument("--blocks", type=int, default=2, help="serpensd runs per build")
    ap.add_argument("--deploys", type=int, default=20, help="deploys of FW per block (the default tenant)")
    ap.add_argument("--tenants", type=int, default=3, help="first deploys of new tenants per block (<= 6)")
    ap.add_argument("--design", default="serpens")
    a = ap.parse_args()
    runlock.set_default_wait(120.0)
    builds = a.build or ["build/native"]
    if not builds_ab.check("deploycost", builds, (*builds_ab.PARTS[:2], "nfs/fw.so")):
        return 2
    if a.blocks < 1 or a.deploys < 1 or not 0 <= a.tenants <= 6:
        print("deploycost: --blocks and --deploys must be positive, --tenants 0..6", file=sys.stderr)
        return 2
    rows: dict[str, list[dict[str, Any]]] = {b: [] for b in builds}
    for blk, b in builds_ab.interleaved(builds, a.blocks):
        fw = str(Path(b).resolve() / "nfs/fw.so")
        with rig(builds_ab.config_for(b), a.design, sfc=SfcSpec.linear("fw")) as r:
            ctl = r.platform.controller
            jobs = [("same", f"d{blk}x{i}", None) for i in range(a.deploys)]
            jobs += [("first", f"t{blk}x{i}", f"tn{i}") for i in range(a.tenants)]
            for kind, name, tenant in jobs:
                t0 = time.perf_counter()
                ctl.deploy_nf(name, fw, {}, tenant=tenant)
                row = {"build": b, "block": blk, "kind": kind, "ms": (time.perf_counter() - t0) * 1e3}
                rows[b].append(row)
                print(json.dumps(row), flush=True)
    for b in builds:
        same = [r["ms"] for r in rows[b] if r["kind"] == "same"]
        first = [r["ms"] for r in rows[b] if r["kind"] == "first"]
        print(json.dumps({"build": b, "n_same": len(same), "median_ms": statistics.median(same),
                          "n_first": len(first),
                          "median_first_ms": statistics.median(first) if first else None}), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError, ValueError) as e:  # a platform that fails, the run lock held
        print(f"deploycost: {e}", file=sys.stderr)
        sys.exit(1)
