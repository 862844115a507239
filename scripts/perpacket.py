"""Per-packet cost of serpens' gateway and FW→MON→NAT instance (docs/serpens-dataplane.md, "Per-packet cost").

Fixed-rate trials of 64 B frames over the configured flows, each between two stats() snapshots; prints one
JSON line per trial with the gateway's and the instance's ns/packet (docs/stages.md) and the mean packets per
receive burst (from a build that counts port.rx_bursts), and the cache-line round trip between the
generator's and the platform's CPUs before and after its block (serpens-xcoreprobe: the host's placement of
the two vCPUs, near or far, which the gateway's cost follows). Builds are compared interleaved: every
--build DIR (holding serpensd, serpens-runtime and nfs/*.so) gets a rig of its own, and the rigs take turns,
one trial block each, so machine noise falls on all of them alike. With --perf OUT a `perf record -g`
(cpu-clock: this VM has no hardware counters) runs on serpensd and the runtimes during the last block of each
build, written to OUT.<build index> (--perf-every: every block, OUT.<build>.<block>).

Run from the repository root, under the benchmark lock:
    flock /tmp/bench.lock env PYTHONPATH=. .venv/bin/python scripts/perpacket.py --build DIR ...
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import config as cfg
from harness import runlock
from harness.rig import Rig, rig
from harness.serpens.sfc import SfcSpec
from harness.stages import stage_columns
from harness.traffic import profiles


def switches(pid: int) -> tuple[int, int]:
    """(voluntary, involuntary) context switches of every thread of pid."""
    v = n = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                v += int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches"):
                n += int(line.split()[1])
    return v, n


def trial(r: Rig, rate_pps: float, duration_s: float, flows: int) -> dict[str, Any]:
    before = r.platform.stats()
    ps = pids(r)
    cs0 = [switches(p) for p in ps]
    res = r.generator.run_trial(profiles.udp_flows(rate_pps, 64, flows), duration=duration_s)
    time.sleep(0.1)  # the last packets through (flush_us)
    cs1 = [switches(p) for p in ps]
    after = r.platform.stats()
    cols = stage_columns(before, after)
    gw_b, gw_a = before["stages"]["gateway"], after["stages"]["gateway"]
    pkts = gw_a["packets"] - gw_b["packets"]
    dp_b, dp_a = before["dataplane"], after["dataplane"]
    # port.rx_bursts: absent from builds before --rx-gap-ns
    bursts = after["port"].get("rx_bursts", 0) - before["port"].get("rx_bursts", 0)
    return {"gateway_ns": round(cols["gateway_ns_per_packet"], 1),
            "wake_ns": round((gw_a["wake_ns"] - gw_b["wake_ns"]) / pkts, 1) if pkts else None,
            "instance_ns": round(cols["instance_ns_per_packet"], 1),
            "sum_ns": round(cols["gateway_ns_per_packet"] + cols["instance_ns_per_packet"], 1),
            "pkts_per_burst": round(pkts / bursts, 2) if bursts else None,
            "tx": res.tx_packets, "rx": res.rx_packets, "loss": round(res.loss_ratio, 5),
            "handoffs": dp_a["handoffs"] - dp_b["handoffs"],
            "timeouts": dp_a["handoff_timeouts"] - dp_b["handoff_timeouts"],
            "ctxsw": [[a[0] - b[0], a[1] - b[1]] for a, b in zip(cs1, cs0, strict=True)]}


# the host places the two vCPUs near each other or far apart, and the gateway's receive and transmit over
# memif cost more in the far placement (docs/serpens-dataplane.md, "Per-packet cost"): a trial is read as
# near or far by the cache-line round trip between the generator's and the platform's CPUs around its block
XCORE_PROBE = Path("build/native/tools/serpens-xcoreprobe")
FAR_NS = 200  # ~100 ns near, ~340 ns far on this machine kind


def xcore_rtt(conf: dict[str, Any]) -> int | None:
    """The generator's and the platform's CPUs' cache-line round trip in ns; None without the probe."""
    if not XCORE_PROBE.exists():
        return None
    out = subprocess.run([str(XCORE_PROBE), str(conf["cores"]["platform"]), str(conf["cores"]["generator"])],
                         capture_output=True, text=True, timeout=30)
    return int(out.stdout) if out.returncode == 0 else None


def placement(row: dict[str, Any]) -> str | None:
    """near / far when both probes around the trial's block agree, else None."""
    rtt = row.get("xcore_rtt_ns") or []
    if len(rtt) != 2 or None in rtt:
        return None
    far = [x >= FAR_NS for x in rtt]
    return None if far[0] != far[1] else ("far" if far[0] else "near")


def pids(r: Rig) -> list[int]:
    st = r.platform.stats()
    out = [r.platform.proc.pid] if r.platform.proc else []
    return out + [i["pid"] for i in st.get("instances", []) if i.get("pid")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", action="append", default=[], help="dir with serpensd, serpens-runtime, nfs/")
    ap.add_argument("--rate", type=float, default=2.0e6, help="offered pps (default 2e6)")
    ap.add_argument("--duration", type=float, default=1.0)
    ap.add_argument("--blocks", type=int, default=5, help="turns per build")
    ap.add_argument("--per-block", type=int, default=1, help="trials per turn")
    ap.add_argument("--sfc", default="fw,mon,nat")
    ap.add_argument("--perf", help="perf.data prefix: record during each build's last block")
    ap.add_argument("--perf-every", action="store_true",
                    help="record during every block (OUT.<build>.<block>)")
    a = ap.parse_args()
    runlock.set_default_wait(120.0)  # another run on the cores: wait for it rather than fail
    builds = a.build or ["build/native"]
    for b in builds:
        p = Path(b)
        d = p / "serpens" if (p / "serpens").is_dir() else p
        missing = [x for x in (d / "serpensd", d / "serpens-runtime", p / "nfs") if not x.exists()]
        if missing:
            print(f"perpacket: --build {b}: {missing[0]} is missing", file=sys.stderr)
            return 2
    if a.blocks < 1 or a.per_block < 1 or a.rate <= 0 or a.duration <= 0:
        print("perpacket: --blocks, --per-block, --rate and --duration must be positive", file=sys.stderr)
        return 2
    conf = cfg.load()
    flows = conf["traffic"]["flows"]
    results: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(builds))}
    for blk in range(a.blocks):
        for bi, b in enumerate(builds):
            p = Path(b).resolve()
            c = cfg.load()
            s = c["platforms"]["serpens"]
            if (p / "serpens").is_dir():  # a meson build dir
                s["serpensd"], s["runtime"] = str(p / "serpens/serpensd"), str(p / "serpens/serpens-runtime")
            else:
                s["serpensd"], s["runtime"] = str(p / "serpensd"), str(p / "serpens-runtime")
            s["nfs_dir"] = str(p / "nfs")
            rtt0 = xcore_rtt(c)
            rows = []
            with rig(c, "serpens", sfc=SfcSpec.linear(a.sfc)) as r:
                trial(r, a.rate, 1.0, flows)  # warm-up: NAT allocates its mappings, caches fill
                perf = None
                if a.perf and (a.perf_every or blk == a.blocks - 1):
                    perf = subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-g", "-o",
                                             f"{a.perf}.{bi}" + (f".{blk}" if a.perf_every else ""),
                                             "-p", ",".join(map(str, pids(r)))],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(0.5)
                for _ in range(a.per_block):
                    row = trial(r, a.rate, a.duration, flows)
                    row.update(build=bi, block=blk)
                    rows.append(row)
                if perf:
                    perf.send_signal(2)
                    perf.wait(timeout=30)
            rtt1 = xcore_rtt(c)
            for row in rows:
                row["xcore_rtt_ns"] = [rtt0, rtt1]
                row["placement"] = placement(row)
                results[bi].append(row)
                print(json.dumps(row), flush=True)
    keys = ("gateway_ns", "wake_ns", "instance_ns", "sum_ns", "loss")
    for bi, b in enumerate(builds):
        rows = results[bi]
        # a trial whose generator fell short of the offered load shared its cores with someone else's work
        # (DESIGN.md section 10): its costs are reported apart
        clean = [x for x in rows if x["tx"] >= 0.95 * a.rate * a.duration]
        out: dict[str, Any] = {"build": b, "n": len(rows),
                               "median": {k: statistics.median(x[k] for x in rows) for k in keys},
                               "n_clean": len(clean)}
        if clean:
            out["median_clean"] = {k: statistics.median(x[k] for x in clean) for k in keys}
        for where in ("near", "far"):  # the clean trials by the vCPUs' placement (XCORE_PROBE)
            sel = [x for x in clean if x["placement"] == where]
            out[f"n_clean_{where}"] = len(sel)
            if sel:
                out[f"median_clean_{where}"] = {k: statistics.median(x[k] for x in sel) for k in keys}
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError, ValueError) as e:  # a platform that fails, the run lock held
        print(f"perpacket: {e}", file=sys.stderr)
        sys.exit(1)
