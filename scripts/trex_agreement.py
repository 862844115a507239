"""The TRex driver (real trex-stl-lib client, built-in TRex-compatible server) against LocalGenerator on the
same serpens-wire point (docs/trex.md, "The built-in TRex-compatible server").

One wire, both drivers on its memif link, trials interleaved (L T L T ...) after one warm-up trial each;
prints one JSON line per trial and a summary: median rx rate and loss per driver and their difference.

Run from the repository root, under the benchmark lock:
    flock /tmp/bench.lock env PYTHONPATH=. .venv/bin/python scripts/trex_agreement.py --rate-mpps 1 --reps 10
"""

from __future__ import annotations

import argparse
import json
import statistics

from harness import config as cfg
from harness.rig import rig
from harness.traffic import profiles
from harness.traffic.trex_server.builtin import BuiltinTRexGenerator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate-mpps", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=2.0, help="seconds per trial")
    ap.add_argument("--reps", type=int, default=10, help="trials per driver")
    ap.add_argument("--flows", type=int, default=1024)
    args = ap.parse_args()
    conf = cfg.load()
    streams = profiles.load_with_latency(args.rate_mpps * 1e6, 64, args.flows)
    rows: dict[str, list[dict[str, float]]] = {"local": [], "trex": []}
    with rig(conf, "wire") as r:
        trex = BuiltinTRexGenerator(conf, r.platform.generator_vdevs(), r.run_dir.path)
        with trex:
            gens = (("local", r.generator), ("trex", trex))
            for _, gen in gens:
                gen.run_trial(streams, duration=args.duration)
            for rep in range(args.reps):
                for name, gen in gens:
                    res = gen.run_trial(streams, duration=args.duration)
                    lat = res.latency.get(0)
                    row = {"driver": name, "rep": rep, "tx_pps": res.tx_pps, "rx_pps": res.rx_pps,
                           "loss_ratio": res.loss_ratio, "latency_p50_us": lat.p50_ns / 1e3 if lat else None,
                           "latency_p99_us": lat.p99_ns / 1e3 if lat else None}
                    rows[name].append(row)
                    print(json.dumps(row), flush=True)
    med = {k: {m: statistics.median(row[m] for row in v) for m in ("rx_pps", "loss_ratio", "tx_pps")}
           for k, v in rows.items()}
    rx_diff = 100.0 * (med["trex"]["rx_pps"] / med["local"]["rx_pps"] - 1.0)
    print(json.dumps({"summary": med, "rx_pps_difference_pct": rx_diff,
                      "loss_difference": med["trex"]["loss_ratio"] - med["local"]["loss_ratio"],
                      "rate_mpps": args.rate_mpps, "duration_s": args.duration, "reps": args.reps}))


if __name__ == "__main__":
    main()
