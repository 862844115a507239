"""Where a serpensd pool process's memory goes: PSS per mapping class of one pool process, and the totals of
serpensd and its pool (docs/startup.md, "Memory"). Not timing: no lock needed beyond the run lock.

    .venv/bin/python scripts/pool_pss.py [--pool N] [--design serpens] [--nfs K] [--json]

Starts serpensd (the design's startup method, ``--pool N``, no SFC), deploys K FW NFs (each its own
deployment, as Fig. 11(b) does), prints the table for pool process 0 and the sums, and stops it.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import config as cfg  # noqa: E402
from harness import runlock  # noqa: E402
from harness.native import RunDir  # noqa: E402
from harness.serpens import memory  # noqa: E402
from harness.serpens.platform import DesignPlatform  # noqa: E402
from harness.serpens.sfc import nf_path  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pool", type=int, default=4)
    ap.add_argument("--design", default="serpens")
    ap.add_argument("--nfs", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--set", action="append", default=[], help="a config override, KEY=VALUE (as the CLI's)")
    ap.add_argument("--serpensd-eal", default="", help="extra EAL arguments for serpensd (experiments: "
                    "e.g. '--legacy-mem -m 1024')")
    a = ap.parse_args()
    conf = copy.deepcopy(cfg.load(overrides=a.set))
    conf["platforms"]["serpens"]["pool"] = a.pool
    conf["platforms"]["serpens"]["ready_timeout_s"] = max(30.0, 0.5 * a.pool)
    fw = nf_path("fw", conf["platforms"]["serpens"]["nfs_dir"])
    with runlock.hold(conf, wait_s=900.0):   # another session's run: queue behind it
        run_dir = RunDir(conf, "pool-pss")
        try:
            p = DesignPlatform(conf, run_dir, a.design)
            if a.serpensd_eal:
                plain = p.command

                def command() -> list[str]:
                    cmd = plain()
                    cut = cmd.index("--")
                    return cmd[:cut] + a.serpensd_eal.split() + cmd[cut:]
                p.command = command  # type: ignore[method-assign]
            with p:
                ctl = p._running()
                for i in range(a.nfs):
                    ctl.deploy_nf(f"fw{i}", str(fw), {})
                st = ctl.stats()
                pids = st["pool"]["pids"]
                assert p.proc is not None
                table = memory.pss_by_mapping(pids[0]) if pids else {}
                total = memory.deployment_kb(p.proc.pid)
                per = [memory.pss_kb(x) for x in pids]
        finally:
            run_dir.remove()
    if a.json:
        print(json.dumps({"mappings": table, "total": total, "pool_pss_kb": per}))
        return 0
    print(f"pool process 0 (pid {pids[0] if pids else '-'}): PSS by mapping (KiB)")
    print(f"{'mapping':40s} {'n':>4s} {'size':>9s} {'rss':>7s} {'pss':>7s}")
    for k, v in sorted(table.items(), key=lambda kv: -kv[1]["pss_kb"]):
        print(f"{k[:40]:40s} {v['n']:4d} {v['size_kb']:9d} {v['rss_kb']:7d} {v['pss_kb']:7d}")
    print(f"{'total':40s} {'':4s} {'':9s} {'':7s} {sum(v['pss_kb'] for v in table.values()):7d}")
    if per:
        print(f"pool: {len(per)} processes, PSS each median {sorted(per)[len(per) // 2]} KiB, "
              f"sum {sum(per)} KiB")
    print("serpensd + pool + images: " + ", ".join(f"{k} {v:.0f}" for k, v in total.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
