"""serpensd's startup axis (`--startup`, docs/startup.md): every method serpensd runs starts instances that
forward every packet through the real FW and NAT, a stopped instance is replaced by the same method, and the
`start_instance` reply says how long the start took and how it was made. Behaviour only: the numbers are
`make figure-11`'s."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness import config as cfg
from harness.config import repo_path
from harness.platforms.designs import SERPENS
from harness.rig import Rig, rig
from harness.serpens.platform import PlatformError
from harness.serpens.sfc import SfcSpec
from harness.traffic import profiles
from tests.integration.packets import LOAD_DST
from tests.integration.test_serpens import instances_of
from tests.integration.test_startup import declared_loaders

pytestmark = pytest.mark.dpdk

SERPENSD_METHODS = ["exec", "fork", "load", "snapshot", "serpens"]


def forwards_everything(r: Rig) -> None:
    """Every packet sent comes back (what was sent is whatever the shared CPUs let the generator send)."""
    res = r.generator.run_trial(profiles.udp_flows(20_000, 64, 8, dst=LOAD_DST), duration=0.3)
    assert res.tx_packets > 1000
    assert res.rx_packets == res.tx_packets, f"tx {res.tx_packets}, rx {res.rx_packets}"


@pytest.mark.parametrize("method", SERPENSD_METHODS)
def test_every_startup_method_starts_instances_that_forward(dpdk_ready: cfg.Config, method: str) -> None:
    # Serpens with only the startup axis changed (the design decides the method; docs/baselines.md)
    conf = copy.deepcopy(dpdk_ready)
    conf["platforms"]["serpens"]["pool"] = 1
    with rig(conf, SERPENS.replace(startup=method), sfc=SfcSpec.linear("fw,nat")) as r:
        p = r.platform
        (first,) = p.instances.values()
        forwards_everything(r)
        p.stop_instance(first["instance"])
        # two at once: with a pool of one, the second of a pooled method is a cold start of the same loader
        again = [p.start_instance("fw-nat"), p.start_instance("fw-nat")]
        forwards_everything(r)
        alive = [i for i in instances_of(p.stats(), "fw-nat") if i["alive"]]
    for reply in [first, *again]:
        assert reply["startup"] == method
        assert reply["startup_us"] > 0
        # loaded by the loader of the starter table serpensd and serpens-startbench share
        assert reply["loader"] == declared_loaders(conf["platforms"]["serpens"]["serpensd"])[method]
    assert first["pooled"] is (method in ("load", "serpens"))
    assert again[0]["pooled"] is (method in ("load", "serpens")) and again[1]["pooled"] is False
    assert sorted(i["instance"] for i in alive) == sorted(r["instance"] for r in again)
    assert len({i["pid"] for i in alive}) == 2 and all(i["pid"] > 0 for i in alive)
    if method == "fork":   # children of the SFC's zygote, not of serpensd
        assert all(i["startup_us"] > 0 for i in alive)


@pytest.mark.parametrize("method", ["exec", "fork", "serpens"])
def test_a_crashed_instance_is_reported_and_replaced(dpdk_ready: cfg.Config, method: str) -> None:
    # serpensd's own child (exec), its zygote's child (fork: the zygote reaps and reports it), a pooled
    # runtime (serpens: the pool is refilled). The replacement must keep serving: nothing retires it.
    with rig(dpdk_ready, SERPENS.replace(startup=method), sfc=SfcSpec.linear("fw,nat")) as r:
        p = r.platform
        (first,) = p.instances.values()
        os.kill(first["pid"], signal.SIGKILL)
        deadline_stats = None
        for _ in range(50):
            deadline_stats = p.stats()
            alive = [i for i in instances_of(deadline_stats, "fw-nat") if i["alive"]]
            if alive and alive[0]["pid"] != first["pid"]:
                break
            time.sleep(0.1)
        forwards_everything(r)
    assert deadline_stats is not None
    (sfc,) = [s for s in deadline_stats["sfcs"] if s["name"] == "fw-nat"]
    assert sfc["crashes"] == 1 and "killed by signal 9" in sfc["last_crash"]
    assert alive and alive[0]["pid"] != first["pid"]


def zygotes_of(serpensd_pid: int) -> list[int]:
    """serpensd's children that run `serpens-runtime ... -z SFC` (--startup fork)."""
    found = []
    for task in Path(f"/proc/{serpensd_pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if b"-z" in argv:
                found.append(int(child))
    return found


def test_a_dead_zygote_takes_its_instance_along_and_the_replacement_brings_a_new_zygote(
        dpdk_ready: cfg.Config) -> None:
    with rig(dpdk_ready, "fork-startup", sfc=SfcSpec.linear("fw,nat")) as r:
        p = r.platform
        assert p.proc is not None
        (first,) = p.instances.values()
        (zygote,) = zygotes_of(p.proc.pid)
        os.kill(zygote, signal.SIGKILL)
        for _ in range(50):
            alive = [i for i in instances_of(p.stats(), "fw-nat") if i["alive"]]
            if alive and alive[0]["pid"] != first["pid"]:
                break
            time.sleep(0.1)
        forwards_everything(r)
        new_zygotes = zygotes_of(p.proc.pid)
    assert alive and alive[0]["pid"] != first["pid"]
    assert len(new_zygotes) == 1 and new_zygotes[0] != zygote


def test_thread_and_unknown_methods_are_refused_clearly(dpdk_ready: cfg.Config) -> None:
    # thread is a design value (Photons) that serpensd itself refuses, naming why; an unknown method is
    # refused by the design before anything starts
    with pytest.raises(PlatformError, match="process"), \
            rig(dpdk_ready, SERPENS.replace(startup="thread"), sfc=SfcSpec.linear("fw")):
        pass
    with pytest.raises(PlatformError, match="unknown startup value 'vfork'.*exec, fork, load"):
        SERPENS.replace(startup="vfork")


def test_serpensd_and_startbench_run_one_table_of_starters(dpdk_ready: cfg.Config) -> None:
    # Both list the startup methods from the one ops table they link (native/serpens/startup); the loader
    # each one's instances report comes from that table's loaders (above, and test_startup.py).
    binaries = [repo_path(dpdk_ready["platforms"]["serpens"]["serpensd"]),
                repo_path(dpdk_ready["startup"]["startbench"])]
    lists = [subprocess.run([str(b), "--starters"], capture_output=True, text=True, check=True).stdout
             for b in binaries]
    assert lists[0] == lists[1]
    names = [line.split()[0] for line in lists[0].splitlines()]
    assert names == ["exec", "fork", "load", "thread", "snapshot", "serpens"]
    assert "serpens resident=pool image=1 snapshot=0 loader=image" in lists[0]


def parent_of(pid: int) -> int:
    """/proc/<pid>/stat: pid (comm) state ppid ...; comm may contain spaces and parentheses."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def redis_sockets(pid: int, port: int) -> set[int]:
    """Inodes of the process's TCP sockets connected to the Redis at `port` (/proc/net/tcp*)."""
    own = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            own.add(int(target[8:-1]))
    to_redis = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if int(f[2].rsplit(":", 1)[1], 16) == port and f[3] == "01":   # remote port, ESTABLISHED
                to_redis.add(int(f[9]))
    return own & to_redis


def test_sand_forks_one_process_per_nf_from_the_sfcs_zygote_each_with_its_own_redis_connection(
        dpdk_ready: cfg.Config) -> None:
    # SAND: fork startup, remote state, local-proxy chaining. One zygote per SFC has every NF loaded; each
    # NF instance is a child of it running one position. A forked child must never share the zygote's
    # Redis connection (two processes on one socket read each other's replies): the zygote holds none,
    # every instance its own, and every instance's remote state works (NAT maps, MON counts).
    n_flows = 8
    with rig(dpdk_ready, "sand", sfc=SfcSpec.linear("fw,mon,nat")) as r:
        p = r.platform
        assert p.proc is not None and p.redis is not None
        port = int(p.redis.address.rsplit(":", 1)[1])
        res = r.generator.run_trial(profiles.udp_flows(20_000, 64, n_flows, dst=LOAD_DST), duration=0.4)
        insts = sorted(instances_of(p.stats(), "fw-mon-nat"), key=lambda i: i["position"])
        (zygote,) = zygotes_of(p.proc.pid)
        zygote_conns = redis_sockets(zygote, port)
        conns = [redis_sockets(i["pid"], port) for i in insts]
        parents = [parent_of(i["pid"]) for i in insts]
        mon = next(i for i in insts if i["position"] == 1)
        os.kill(mon["pid"], signal.SIGKILL)   # a crashed NF instance: replaced at its position, by a fork
        for _ in range(50):
            # serpensd's own stats: the platform's would (rightly, in a measurement) call a crash with a
            # remote store a failed store
            raw = p.controller.stats()
            again = [i for i in instances_of(raw, "fw-mon-nat") if i["position"] == 1 and i["alive"]]
            if again and again[0]["pid"] != mon["pid"]:
                break
            time.sleep(0.1)
        replaced_parent = parent_of(again[0]["pid"])
        nat_map = p.controller.dump_table("nat/nat_map")
        after = r.generator.run_trial(profiles.udp_flows(20_000, 64, n_flows, dst=LOAD_DST), duration=0.3)
    assert res.tx_packets > 1000 and res.rx_packets == res.tx_packets
    assert after.rx_packets == after.tx_packets
    assert [i["position"] for i in insts] == [0, 1, 2]
    assert parents == [zygote] * 3 and replaced_parent == zygote
    assert zygote_conns == set()
    assert all(len(c) == 1 for c in conns) and len(set.union(*conns)) == 3
    assert all(i["remote"]["round_trips"] > 0 for i in insts)
    assert len(nat_map) >= n_flows   # NAT's mappings of the flows, read back from Redis


def wait_for_pool(r: Rig, waiting: int, gone: int | None = None) -> dict:
    """serpensd's `pool` stats once `waiting` pool processes wait (and pid `gone` is no longer one)."""
    for _ in range(100):
        pool = r.platform.stats()["pool"]
        if pool["waiting"] == waiting and gone not in pool["pids"]:
            return pool
        time.sleep(0.1)
    return pool


def test_the_pool_is_apart_from_the_instance_slots(dpdk_ready: cfg.Config) -> None:
    # A pool larger than the 16 instance slots (ctl.h, sp_pool_proc): a start hands a free slot to a
    # waiting pool process, a stopped instance's process waits again, and a pool process that dies while it
    # waits is replaced, so the pool stays full.
    conf = copy.deepcopy(dpdk_ready)
    conf["platforms"]["serpens"]["pool"] = 20
    with rig(conf, SERPENS, sfc=SfcSpec.linear("fw,nat")) as r:
        p = r.platform
        (first,) = p.instances.values()
        pool = p.stats()["pool"]
        assert pool["size"] == 20 and len(pool["pids"]) == 20 and pool["waiting"] == 19
        assert first["pooled"] and first["pid"] in pool["pids"]
        victim = next(pid for pid in pool["pids"] if pid != first["pid"])
        os.kill(victim, signal.SIGKILL)
        refilled = wait_for_pool(r, 19, gone=victim)
        p.stop_instance(first["instance"])
        back = wait_for_pool(r, 20)
        again = p.start_instance("fw-nat")
        forwards_everything(r)
    assert len(refilled["pids"]) == 20 and victim not in refilled["pids"]
    assert first["pid"] in back["pids"] and back["waiting"] == 20
    assert again["pooled"] and again["pid"] in back["pids"]


STEPS = ["parse_us", "choose_us", "state_us", "wake_us", "map_us", "init_us", "ready_us", "seen_us",
         "set_routes_us"]


def assert_steps_tile(reply: dict, loads: bool) -> None:
    """start_instance's steps: each >= 0, and together startup_us (from the request's receipt to the
    control thread seeing the instance ready), within 5 % (they are rounded to ns); routes_us follows."""
    steps = reply["steps"]
    assert sorted(steps) == sorted(STEPS), steps
    assert all(v >= 0 for v in steps.values()), steps
    assert reply["routes_us"] >= 0
    assert sum(steps.values()) == pytest.approx(reply["startup_us"], rel=0.05), (steps, reply["startup_us"])
    # the NFs were loaded by this start (a forked instance's zygote loaded them before)
    assert (steps["map_us"] > 0 and steps["init_us"] > 0) is loads, steps


@pytest.mark.parametrize("method", ["serpens", "load"])
def test_the_start_steps_add_up_to_startup_us(dpdk_ready: cfg.Config, method: str) -> None:
    # FW -> MON -> NAT through the pool (shm image and dlopen), and one start beyond the pool (a cold runtime
    # that loads the same way)
    conf = copy.deepcopy(dpdk_ready)
    conf["platforms"]["serpens"]["pool"] = 1
    with rig(conf, SERPENS.replace(startup=method), sfc=SfcSpec.linear("fw,mon,nat")) as r:
        p = r.platform
        (first,) = p.instances.values()
        p.stop_instance(first["instance"])
        replies = []
        for _ in range(3):
            replies.append(p.start_instance("fw-mon-nat"))
            p.stop_instance(replies[-1]["instance"])
        pooled = p.start_instance("fw-mon-nat")
        cold = p.start_instance("fw-mon-nat")
        forwards_everything(r)
    assert all(x["pooled"] for x in [*replies, pooled]) and not cold["pooled"]
    for reply in [*replies, pooled, cold]:
        assert_steps_tile(reply, loads=True)
        assert reply["steps"]["set_routes_us"] == 0   # one instance: its routes are the tail
    # a cold runtime "wakes" after its fork, exec and EAL init: far beyond a futex wake
    assert cold["steps"]["wake_us"] > max(x["steps"]["wake_us"] for x in replies)


def test_the_steps_of_an_instance_set_and_of_a_fork_add_up_too(dpdk_ready: cfg.Config) -> None:
    # per-NF chaining: one instance per position, its steps summed, the routes published between them a
    # step of their own; fork: the zygote loaded the NFs, so map and init are 0
    with rig(dpdk_ready, "sand-chaining", sfc=SfcSpec.linear("fw,mon,nat")) as r:
        p = r.platform
        first = next(iter(p.instances.values()))
        for slot in first["instances"]:
            p.stop_instance(slot)
        again = p.start_instance("fw-mon-nat")
        forwards_everything(r)
    assert len(again["instances"]) == 3
    assert_steps_tile(again, loads=True)
    assert again["steps"]["set_routes_us"] > 0
    with rig(dpdk_ready, "fork-startup", sfc=SfcSpec.linear("fw,mon,nat")) as r:
        p = r.platform
        (first,) = p.instances.values()
        p.stop_instance(first["instance"])
        forked = p.start_instance("fw-mon-nat")
        forwards_everything(r)
    assert forked["startup"] == "fork"
    assert_steps_tile(forked, loads=False)


def cpus_allowed(pid: int, tid: int | None = None) -> str:
    status = Path(f"/proc/{pid}/task/{tid or pid}/status").read_text()
    return next(line.split(":", 1)[1].strip() for line in status.splitlines()
                if line.startswith("Cpus_allowed_list"))


def test_start_placement_same_starts_on_the_control_threads_cpu_and_serves_on_the_instance_cpu(
        dpdk_ready: cfg.Config) -> None:
    # platforms.serpens.start_placement same (serpensd --start-placement same): the pool waits on the
    # control thread's vCPU (the requester's, pinned to one), and a started instance serves on the instance
    # CPU (serpensd's lcore), where every instance serves
    conf = copy.deepcopy(dpdk_ready)
    conf["platforms"]["serpens"]["start_placement"] = "same"
    with rig(conf, SERPENS, sfc=SfcSpec.linear("fw")) as r:
        p = r.platform
        assert p.proc is not None
        (ctl,) = [int(t.name) for t in Path(f"/proc/{p.proc.pid}/task").iterdir()
                  if (t / "comm").read_text().strip() == "serpens-ctl"]
        ctl_cpus = cpus_allowed(p.proc.pid, ctl)
        (first,) = p.instances.values()
        children = [int(c) for c in
                    Path(f"/proc/{p.proc.pid}/task/{p.proc.pid}/children").read_text().split()]
        waiting = [c for c in children if c != first["pid"]]
        waiting_cpus = {cpus_allowed(c) for c in waiting}
        started = p.start_instance("fw")
        forwards_everything(r)
        serving = [cpus_allowed(first["pid"]), cpus_allowed(started["pid"])]
    assert "-" not in ctl_cpus and "," not in ctl_cpus    # one CPU
    assert len(waiting) == conf["platforms"]["serpens"]["pool"] - 1 and waiting_cpus == {ctl_cpus}
    assert started["pooled"] and started["pid"] in waiting
    assert serving == [str(conf["cores"]["platform"])] * 2
