"""Per-hop accounting of an SFC across servers (docs/multiserver.md, "Counters"): a gateway and worker
serpensds on a veth bridge (af_packet, VXLAN-GBP), the built-in generator on the gateway's memif, one
fixed-rate trial per repetition; prints packets sent, received, dropped and unaccounted per hop, summed over
the repetitions (counters since start), and exits 1 if any packet is unaccounted for.

    flock /tmp/bench.lock .venv/bin/python scripts/multiserver_hops.py --servers 2 --sfc fw,mon,nat \\
        --rate-pps 20000 --duration 1 --repetitions 5 [--json out.json]

Correctness, not speed: af_packet on veth is not the paper's NIC, and three DPDK processes share this
machine's two vCPUs, so the rate is kept low.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from harness import config as cfg
from harness import runlock
from harness.native import RunDir
from harness.rig import make_generator
from harness.serpens.multiserver import MultiServerPlatform, per_hop
from harness.serpens.sfc import SfcSpec
from harness.traffic import profiles


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", type=int, default=2)
    ap.add_argument("--sfc", default="fw,mon,nat")
    ap.add_argument("--rate-pps", type=float, default=20_000)
    ap.add_argument("--flows", type=int, default=1024)
    ap.add_argument("--duration", type=float, default=1.0)
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    conf = cfg.load(quick=True)
    runlock.acquire(conf)
    run_dir = RunDir(conf, "multihops")
    trials = []
    try:
        with MultiServerPlatform(conf, run_dir, sfc=SfcSpec.linear(a.sfc), servers=a.servers) as p:
            with make_generator(conf, p, run_dir) as gen:
                for _ in range(a.repetitions):
                    res = gen.run_trial(profiles.udp_flows(a.rate_pps, 64, a.flows), duration=a.duration)
                    trials.append({"tx": res.tx_packets, "rx": res.rx_packets,
                                   "dut_rx_full": res.dut_rx_full})
                stats = p.stats()
    finally:
        run_dir.remove()
        runlock.release(conf)
    gen_tx, gen_rx = sum(t["tx"] for t in trials), sum(t["rx"] for t in trials)
    hops = per_hop(stats, gen_tx, gen_rx, sum(t["dut_rx_full"] for t in trials))
    print(f"{a.sfc} across {a.servers} servers, {a.repetitions} x {a.duration} s at {a.rate_pps:.0f} pps, "
          f"{a.flows} flows; generator sent {gen_tx}, received {gen_rx}, "
          f"refused by the gateway's memif ring {sum(t['dut_rx_full'] for t in trials)}")
    print(f"{'hop':28} {'sent':>10} {'received':>10} {'dropped':>8} {'unaccounted':>11}")
    for h in hops:
        print(f"{h['hop']:28} {h['sent']:>10} {h['received']:>10} {h['dropped']:>8} {h['unaccounted']:>11}")
    if a.json:
        a.json.write_text(json.dumps({"trials": trials, "hops": hops, "link": stats["link"],
                                      "workers": [w["link"] for w in stats["servers"]]}, indent=1))
        print(f"wrote {a.json}")
    return 1 if any(h["unaccounted"] for h in hops) else 0


if __name__ == "__main__":
    sys.exit(main())
