"""`make bench`: serpensd's instance start, step by step (docs/startup.md, "serpensd's start path, step by
step"), against issue 15's targets.

Per case (startup method × SFC × start placement) one serpensd with the default pool
(``platforms.serpens.pool``) and no traffic; ``REPS`` start/stop cycles of one instance through its
control socket, as Figs. 12 and 15 start them (``start_instance``, then ``stop_instance``, with 1 ms
between a stop and the next start so that the pool process is asleep again). The table at the end of
`make bench` shows the medians of ``startup_us`` (from the request's receipt to the control thread
seeing the instance ready), of each of its steps, and of ``routes_us`` (the routes and flow moves after
it).

- ``serpens`` maps each NF's shared-memory image, ``load`` dlopens it (the paper's Load, SOCK);
- placement (``platforms.serpens.start_placement``, serpensd ``--start-placement``): ``same`` wakes the
  pool process on the control thread's vCPU (the requester's), ``any`` lets the kernel place it
  (unpinned), ``instance`` on the instance CPU (serpensd's default).

Targets (issue 15): Serpens FW ≤ 34 µs on the requester's vCPU and ≤ 60 µs unpinned, FW→MON→NAT ≤ 60 µs
(unpinned), and Serpens ≤ 25 % of Load measured the same way (same SFC and placement; checked when both ran
in one session, load first). ``SERPENS_BENCH_START_REPS`` changes the number of cycles (default 100);
select cases with ``-k``, e.g. ``-k 'fw-same'``.
"""

from __future__ import annotations

import copy
import json
import os
import statistics
import subprocess
import time
from typing import Any

import pytest

from harness import config as cfg
from harness.native import binary
from harness.platforms.designs import SERPENS
from harness.rig import rig
from harness.serpens.sfc import SfcSpec

pytestmark = pytest.mark.dpdk

REPS = int(os.environ.get("SERPENS_BENCH_START_REPS", "100"))
STEPS = ["parse_us", "choose_us", "state_us", "wake_us", "map_us", "init_us", "ready_us", "seen_us",
         "set_routes_us"]
# (method, SFC, placement) -> the most the median startup_us may be
TARGET_US = {("serpens", "fw", "same"): 34.0, ("serpens", "fw", "any"): 60.0,
             ("serpens", "fw,mon,nat", "any"): 60.0}
SERPENS_OF_LOAD = 0.25
MEASURED: dict[tuple[str, str, str], float] = {}   # medians of this session, for the ratio

CASES = [(m, c, p) for c in ("fw", "fw,mon,nat") for p in ("same", "any", "instance")
         for m in ("load", "serpens")]


def cycles(conf: cfg.Config, method: str, chain: str, placement: str, reps: int) -> list[dict[str, Any]]:
    """``reps`` start/stop cycles; the start_instance replies."""
    conf = copy.deepcopy(conf)
    conf["platforms"]["serpens"]["start_placement"] = placement
    name = chain.replace(",", "-")
    replies = []
    with rig(conf, SERPENS.replace(startup=method), sfc=SfcSpec.linear(chain)) as r:
        p = r.platform
        for slot in list(p.instances):   # the instance the platform started: the pool serves the cycles
            p.stop_instance(slot)
        for _ in range(reps):
            time.sleep(0.001)
            reply = p.start_instance(name)
            p.stop_instance(int(reply["instance"]))
            replies.append(reply)
    return replies


def test_start_floor(benchmark: Any, record: Any, dpdk_ready: cfg.Config) -> None:
    """The machine's floor under a start (native/tools/startprobe.c): a futex wake on the same and on the
    other vCPU (of a thread and of another process), an image's two mmaps after 1 ms asleep and warm, and a
    page fault, in a minimal process. A pooled start of one NF on the requester's vCPU cannot be faster than
    two wakes of another process plus the two mmaps here (``floor_fw_same_us``); the start cases below are
    read against it."""
    probe = binary("build/native/tools/serpens-startprobe")
    cores = dpdk_ready["cores"]
    cpus = f"{cores['platform']},{cores['generator']}"
    out = benchmark.pedantic(subprocess.run, args=([str(probe), "--reps", "200", "--cpus", cpus],),
                             kwargs={"capture_output": True, "text": True, "timeout": 120}, rounds=1,
                             iterations=1)
    assert out.returncode == 0, out.stderr
    floor = json.loads(out.stdout)
    medians = {k: v["p50"] for k, v in floor.items() if isinstance(v, dict)}
    # one NF's pooled start on the requester's vCPU, at its least: the wake of the pool process, its
    # image's two mappings, and the wake back of the control thread (READY), each a switch of process
    medians["floor_fw_same_us"] = (2 * medians["wake_same_proc_us"] + medians["map_shared_us"]
                                   + medians["map_private_us"])
    row = {"kind": "floor", "name": "start floor", **medians}
    benchmark.extra_info.update(row)
    record(row)


@pytest.mark.parametrize(("method", "chain", "placement"), CASES,
                         ids=[f"{m}-{c.replace(',', '-')}-{p}" for m, c, p in CASES])
def test_start_steps(benchmark: Any, record: Any, dpdk_ready: cfg.Config, method: str, chain: str,
                     placement: str) -> None:
    replies = benchmark.pedantic(cycles, args=(dpdk_ready, method, chain, placement, REPS), rounds=1,
                                 iterations=1)
    assert all(x["pooled"] for x in replies), "a start beyond the pool: the pool is too small for the cycles"
    med = {k: statistics.median(x["steps"][k] for x in replies) for k in STEPS}
    row = {"kind": "start", "name": f"{method} {chain} {placement}", "reps": len(replies),
           "startup_us": statistics.median(x["startup_us"] for x in replies),
           "startup_min_us": min(x["startup_us"] for x in replies),
           "routes_us": statistics.median(x["routes_us"] for x in replies), "steps": med}
    benchmark.extra_info.update(row)
    record(row)
    MEASURED[(method, chain, placement)] = row["startup_us"]
    target = TARGET_US.get((method, chain, placement))
    if target is not None:
        assert row["startup_us"] <= target, (
            f"{row['name']}: median {row['startup_us']:.1f} µs > {target} µs: {med}")
    load = MEASURED.get(("load", chain, placement))
    if method == "serpens" and load is not None:
        assert row["startup_us"] <= SERPENS_OF_LOAD * load, (
            f"{row['name']}: {row['startup_us']:.1f} µs is more than {SERPENS_OF_LOAD:.0%} of load's "
            f"{load:.1f} µs")
