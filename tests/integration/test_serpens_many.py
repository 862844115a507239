"""Many instances at once on serpensd (docs/startup.md, "Many instances at once"; issue 15): with
``--max-instances`` above the default 16, ``start_instances`` starts N FW instances together, each in a slot
of its own and ready; packets of many flows then reach every one of them and all come back; stopping them
frees every slot. Out-of-range requests get one clear error. And the same-code check of issue 15: an
instance started together with others is made by the same starter and loader, and reports the same steps,
as one ``start_instance`` makes (both go through launch_one / await / finish_one in instance_manager.c).
Behaviour only: the numbers are Fig. 11(a)'s (experiments/startup.py)."""

from __future__ import annotations

import copy

import pytest

from harness import config as cfg
from harness.platforms.designs import SERPENS
from harness.rig import rig
from harness.serpens.controller import SerpensError
from harness.serpens.sfc import SfcSpec
from harness.traffic import profiles
from tests.integration.packets import LOAD_DST
from tests.integration.test_serpens import instances_of
from tests.integration.test_startup import declared_loaders

pytestmark = pytest.mark.dpdk

N = 20


def _many(conf: cfg.Config, pool: int, max_instances: int) -> cfg.Config:
    c = copy.deepcopy(conf)
    s = c["platforms"]["serpens"]
    s["instances"] = 0
    s["pool"] = pool
    s["max_instances"] = max_instances
    s["ready_timeout_s"] = max(float(s["ready_timeout_s"]), 1.0 * pool)
    return c


def test_twenty_instances_started_together_each_serve_and_stop(dpdk_ready: cfg.Config) -> None:
    conf = _many(dpdk_ready, pool=N, max_instances=N + 4)
    with rig(conf, SERPENS, sfc=SfcSpec.linear("fw")) as r:
        p = r.platform
        reply = p.start_instances("fw", N, pooled=True)
        slots = sorted(int(i["instance"]) for i in reply["instances"])
        st = p.stats()
        ready = {i["instance"]: i for i in instances_of(st, "fw")}
        assert st["max_instances"] == N + 4 and st["slots_hi"] == N
        # flows spread over the router's buckets: every instance gets some, and every packet comes back
        res = r.generator.run_trial(profiles.udp_flows(20_000, 64, 2048, dst=LOAD_DST), duration=0.5)
        after = {i["instance"]: i for i in instances_of(p.stats(), "fw")}
        for slot in slots:
            p.stop_instance(slot)
        gone = p.stats()
    assert reply["n"] == N and reply["startup"] == "serpens" and reply["pooled"] is True
    # each ready, in a slot of its own, a process of its own
    assert slots == list(range(N)), slots
    assert len({i["pid"] for i in reply["instances"]}) == N
    assert sorted(ready) == slots and all(i["alive"] and i["state"] == "ready" for i in ready.values())
    assert 0 < min(i["startup_us"] for i in reply["instances"])
    assert max(i["startup_us"] for i in reply["instances"]) <= reply["all_ready_us"]
    assert res.tx_packets > 1000 and res.rx_packets == res.tx_packets, res
    assert all(after[s]["pkts_in"] > 0 for s in slots), {s: after[s]["pkts_in"] for s in slots}
    assert sum(after[s]["pkts_in"] for s in slots) == res.tx_packets
    # stopped: no instance left, every slot free again
    assert instances_of(gone, "fw") == [] and gone["slots_hi"] == 0


def test_out_of_range_counts_are_one_clear_error(dpdk_ready: cfg.Config) -> None:
    conf = _many(dpdk_ready, pool=2, max_instances=24)
    with rig(conf, SERPENS, sfc=SfcSpec.linear("fw")) as r:
        ctl = r.platform.controller
        assert ctl is not None
        errors = []
        for fields in ({"n": 0}, {"n": 25}, {"n": "3"}, {}, {"n": 3, "pooled": True}, {"n": 2, "pooled": 1}):
            with pytest.raises(SerpensError) as exc:
                ctl.request("start_instances", sfc="fw", **fields)
            errors.append(str(exc.value))
        with pytest.raises(SerpensError) as nosfc:
            ctl.request("start_instances", sfc="nope", n=1)
        assert instances_of(r.platform.stats(), "fw") == []   # nothing was started by any of them
    assert "'n' must be an integer in 1..24, got 0" in errors[0], errors[0]
    assert "'n' must be an integer in 1..24, got 25" in errors[1], errors[1]
    assert "'n' must be an integer in 1..24" in errors[2], errors[2]
    assert "'n' (instances to start together, 1..24) is required" in errors[3], errors[3]
    assert "3 instances: more than the pool's 2 waiting processes" in errors[4], errors[4]
    assert "'pooled' is true or false" in errors[5], errors[5]
    assert "no SFC named 'nope'" in str(nosfc.value)
    assert all("\n" not in e for e in errors)


@pytest.mark.parametrize("method", ["serpens", "exec"])
def test_started_together_is_the_start_instance_path(dpdk_ready: cfg.Config, method: str) -> None:
    # issue 15's "same code": Fig. 11(a)'s starts (start_instances) and start_instance's run the same
    # launch / await / finish, so they report the same starter, loader, pooling and steps
    conf = _many(dpdk_ready, pool=3, max_instances=20)
    with rig(conf, SERPENS.replace(startup=method), sfc=SfcSpec.linear("fw")) as r:
        p = r.platform
        one = p.start_instance("fw")
        together = p.start_instances("fw", 3)
        p.stop_instance(int(one["instance"]))
        for i in together["instances"]:
            p.stop_instance(int(i["instance"]))
    loader = declared_loaders(conf["platforms"]["serpens"]["serpensd"])[method]
    assert one["startup"] == together["startup"] == method
    assert one["loader"] == loader and all(i["loader"] == loader for i in together["instances"])
    assert set(one["steps"]) == set(together["instances"][0]["steps"])
    pooled = method == "serpens"
    # the pool of 3 had 2 left after the single start: the third of the together starts is a cold one
    assert one["pooled"] is pooled
    assert [i["pooled"] for i in together["instances"]] == ([True, True, False] if pooled else [False] * 3)
