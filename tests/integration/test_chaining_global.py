"""Fission's global-proxy chaining on serpensd with real packets (docs/chaining-global-proxy.md): an instance
per NF, and every delivery — gateway to the first NF, NF to NF — through serpens-gproxy over a memif link.

Behaviour, not speed: the same SFC gives byte-identical packets and equal NF state as Serpens' consolidated
chaining; every packet that entered the SFC leaves it or is counted as a drop at one hop, and the proxy saw
each hop of each packet; packets for an NF without an instance wait in the proxy until serpensd has started
one and are then delivered, not dropped (counted); Table II's delivery time is measured between two NFs; the
sidecar says where the proxy ran; a proxy that dies is replaced; a missing proxy binary is one clear error.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import time

import pytest

from harness import config as cfg
from harness.config import repo_path
from harness.rig import rig
from harness.serpens.sfc import SfcSpec
from harness.traffic import profiles
from tests.integration.packets import per_flow
from tests.integration.test_chaining import (
    assert_every_packet_accounted_for,
    chained,
    delivery_of,
    fw_mon_nat,
    sfc_of,
)

pytestmark = pytest.mark.dpdk


def global_proxy(conf: cfg.Config, hold: int | None = None) -> cfg.Config:
    """The configuration with the global proxy's hold budget (the design is chained("global-proxy"))."""
    out = copy.deepcopy(conf)
    if hold is not None:
        out["platforms"]["serpens"]["gproxy_hold"] = hold
    return out


def test_every_hop_crosses_the_proxy_and_every_packet_is_accounted_for(dpdk_ready: cfg.Config) -> None:
    n_flows, blocked = 8, 5
    with rig(global_proxy(dpdk_ready), chained("global-proxy"), sfc=fw_mon_nat(blocked)) as r:
        res = r.generator.run_trial(profiles.udp_flows(20_000, 64, n_flows), duration=0.5)
        stats = r.platform.stats()
    dropped = per_flow(res.tx_packets, n_flows)[blocked]
    assert res.rx_packets == res.tx_packets - dropped
    assert_every_packet_accounted_for(stats, "chain")
    hops = delivery_of(stats, "chain")["hops"]
    proxy, link = stats["delivery"]["proxy"], stats["delivery"]["link"]
    # the proxy saw every packet once per hop: FW (all), MON and NAT (all but the FW's drops)
    assert [h["routed"] for h in hops[:-1]] == [res.tx_packets, res.tx_packets - dropped,
                                                res.tx_packets - dropped]
    assert proxy["rx"] == proxy["tx"] == link["to_proxy"] == link["from_proxy"] == \
        sum(h["in"] for h in hops[:-1])
    assert proxy["held"] == 0 and proxy["hold_dropped"] == 0 and link["returned"] == 0
    assert stats["stages"]["proxy"]["packets"] == res.tx_packets   # per SFC packet, as every stage
    assert stats["stages"]["proxy"]["busy_ns"] > 0
    assert link["round_trip_mean_us"] > 0


def test_proxy_holds_packets_while_the_next_nf_has_no_instance_then_delivers_them(
        dpdk_ready: cfg.Config) -> None:
    n_flows = 8
    with rig(global_proxy(dpdk_ready, hold=16384), chained("global-proxy"),
             sfc=SfcSpec.linear("fw,mon")) as r:
        before = r.platform.stats()
        (mon_slot,) = [i["instance"] for i in before["instances"] if i["position"] == 1]
        r.platform.stop_instance(mon_slot)   # MON has no instance now; FW's output has nowhere to go
        res = r.generator.run_trial(profiles.udp_flows(10_000, 64, n_flows), duration=0.5)
        after = r.platform.stats()
    hops = delivery_of(after, "fw-mon")["hops"]
    proxy = after["delivery"]["proxy"]
    # the proxy held MON's packets, asked for an instance (serpensd started one) and delivered them all
    assert any(i["position"] == 1 and i["state"] == "ready" for i in after["instances"])
    assert proxy["held"] > 0
    assert proxy["delivered_after_hold"] == proxy["held"] and proxy["held_now"] == 0
    assert proxy["hold_dropped"] == 0 and hops[1]["no_instance"] == 0
    assert hops[1]["delivered_after_hold"] == proxy["held"]
    assert res.rx_packets == res.tx_packets                     # nothing lost: held, not dropped
    assert_every_packet_accounted_for(after, "fw-mon")


def test_a_full_hold_buffer_drops_at_the_hop_and_counts(dpdk_ready: cfg.Config) -> None:
    with rig(global_proxy(dpdk_ready, hold=16), chained("global-proxy"), sfc=SfcSpec.linear("fw,mon")) as r:
        before = r.platform.stats()
        (mon_slot,) = [i["instance"] for i in before["instances"] if i["position"] == 1]
        r.platform.stop_instance(mon_slot)
        res = r.generator.run_trial(profiles.udp_flows(20_000, 64, 8), duration=0.5)
        after = r.platform.stats()
    proxy, hops = after["delivery"]["proxy"], delivery_of(after, "fw-mon")["hops"]
    assert proxy["hold_dropped"] > 0 and hops[1]["no_instance"] == proxy["hold_dropped"], (hops, proxy)
    assert res.rx_packets == res.tx_packets - proxy["hold_dropped"]
    assert_every_packet_accounted_for(after, "fw-mon")


def test_delivery_time_is_measured_between_two_nfs_and_the_sidecar_says_where_the_proxy_ran(
        dpdk_ready: cfg.Config) -> None:
    spec = SfcSpec("two-fw", {}, ["fw1", "fw2"], {"fw1": ("fw", {}), "fw2": ("fw", {})})
    with rig(global_proxy(dpdk_ready), chained("global-proxy"), sfc=spec) as r:
        res = r.generator.run_trial(profiles.udp_flows(20_000, 64, 8), duration=0.5)
        stats = r.platform.stats()
        described = r.platform.describe()
        serpensd_pid = r.platform.proc.pid if r.platform.proc else None
        proxy_pid = stats["delivery"]["proxy"]["pid"]
        with open(f"/proc/{proxy_pid}/stat") as f:
            proxy_ppid = int(f.read().rsplit(")", 1)[1].split()[1])
    assert res.rx_packets == res.tx_packets
    by_pos = {i["position"]: i for i in stats["instances"]}
    assert by_pos[0]["delivery_batches"] == 0                                     # from the gateway
    assert by_pos[1]["delivery_batches"] > 0 and by_pos[1]["delivery_us"] > 0     # FW1 → proxy → FW2
    assert stats["delivery"]["delivery_us"] > 0
    print(f"global-proxy delivery FW1 -> FW2: {by_pos[1]['delivery_us']:.1f} us per batch")
    gp = described["gproxy"]
    assert gp["pid"] == proxy_pid and proxy_ppid == serpensd_pid   # serpensd's child, in its group
    assert gp["lcore"] == dpdk_ready["cores"]["platform"] and gp["link"].endswith("gproxy.sock")
    assert gp["polls"] is False and "sleeping" in gp["runs_on"]    # --colocate: it sleeps between hand-offs


def test_a_proxy_that_dies_is_replaced(dpdk_ready: cfg.Config) -> None:
    with rig(global_proxy(dpdk_ready), chained("global-proxy"), sfc=SfcSpec.linear("fw,mon")) as r:
        before = r.platform.stats()
        old = before["delivery"]["proxy"]["pid"]
        os.kill(old, signal.SIGKILL)
        deadline, after = time.monotonic() + 10, before
        while time.monotonic() < deadline:
            after = r.platform.stats()
            p = after["delivery"]["proxy"]
            if p["restarts"] == 1 and p["alive"] and p["pid"] not in (0, old):
                break
            time.sleep(0.1)
        res = r.generator.run_trial(profiles.udp_flows(20_000, 64, 8), duration=0.5)
        final = r.platform.stats()
    p = after["delivery"]["proxy"]
    assert p["restarts"] == 1 and p["alive"] and p["pid"] != old
    assert res.rx_packets == res.tx_packets                         # the chain works again through it
    assert sfc_of(final, "fw-mon")["rx_packets"] == res.tx_packets


def test_global_proxy_without_its_proxy_binary_is_one_clear_error(dpdk_ready: cfg.Config) -> None:
    serpensd = repo_path(dpdk_ready["platforms"]["serpens"]["serpensd"])
    proc = subprocess.run([str(serpensd), "--no-huge", "-m", "64", "--no-pci", "--no-telemetry",
                           "--file-prefix", "h2-no-gproxy", "--log-level=*:error", "--",
                           "--control", "/nonexistent.sock", "--runtime", "/bin/true", "--chaining",
                           "global-proxy"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[0] == \
        "serpensd: --chaining global-proxy needs --gproxy PATH (serpens-gproxy)"
    assert "Traceback" not in proc.stderr


def test_from_zero_instances_the_proxy_holds_each_hop_until_its_nf_is_started(dpdk_ready: cfg.Config) -> None:
    """Scale to zero, then traffic: the packets wait in the proxy at FW's hop until serpensd started FW, then
    at MON's, then at NAT's — and all of them arrive (local-proxy drops them: test_chaining.py)."""
    n_flows = 4
    with rig(global_proxy(dpdk_ready, hold=8192), chained("global-proxy"),
             sfc=SfcSpec.linear("fw,mon,nat")) as r:
        ctl = r.platform.controller
        ctl.set(keep_warm_s=0.3)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and r.platform.stats()["instances"]:
            time.sleep(0.1)
        idle = r.platform.stats()
        ctl.set(keep_warm_s=30)
        res = r.generator.run_trial(profiles.udp_flows(2_000, 64, n_flows), duration=0.8)
        after = r.platform.stats()
    assert idle["instances"] == []
    assert sorted(i["position"] for i in after["instances"]) == [0, 1, 2]
    hops = delivery_of(after, "fw-mon-nat")["hops"]
    assert all(h["delivered_after_hold"] > 0 and h["no_instance"] == 0 for h in hops[:3]), hops
    assert res.rx_packets == res.tx_packets, hops                    # held, not dropped
    proxy = after["delivery"]["proxy"]
    assert proxy["held"] == proxy["delivered_after_hold"] and proxy["held_now"] == 0
    assert_every_packet_accounted_for(after, "fw-mon-nat")
