"""The chaining axis (docs/chaining.md) on serpensd with real packets: Serpens' consolidated chaining (the
whole SFC in one instance) and SAND's local proxy (an instance per NF, a proxy process between them).

Behaviour, not speed: the same SFC gives byte-identical packets and equal NF state under both; in
local-proxy every packet that entered the SFC leaves it or is counted as a drop at one hop, also while an
NF has no instance; a dynamic SFC's label travels through the proxy; Table II's delivery time is measured
between two NFs and only there; a dead proxy or NF instance is replaced; idle NF instances scale to zero
and come back on demand one hop at a time; a bad mode is one clear error.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from harness import config as cfg
from harness.config import repo_path
from harness.platforms.base import PlatformError
from harness.platforms.designs import SERPENS, Design
from harness.rig import rig
from harness.serpens.sfc import SfcSpec
from harness.traffic import profiles
from tests.integration.packets import LOAD_DPORT, LOAD_DST, LOAD_SPORT, load_src, per_flow, read_pcap
from tests.integration.test_serpens_chains import dynamic_sfc

pytestmark = pytest.mark.dpdk


def chained(mode: str) -> Design:
    """Serpens with only the chaining axis changed (the design registry's sand-chaining/fission-chaining
    are these; a Design keeps the tests independent of the registry's names)."""
    return SERPENS.replace(chaining=mode)


def fw_mon_nat(blocked: int) -> SfcSpec:
    """FW → MON → NAT (Fig. 15's SFC), the FW dropping one flow."""
    rule = f"17,{load_src(blocked)},{LOAD_SPORT},{LOAD_DST},{LOAD_DPORT}"
    return SfcSpec("chain", {}, ["fw", "mon", "nat"], {"fw": ("fw", {"blacklist": rule})})


def sfc_of(stats: dict[str, Any], name: str) -> dict[str, Any]:
    (s,) = [s for s in stats["sfcs"] if s["name"] == name]
    return s


def delivery_of(stats: dict[str, Any], name: str) -> dict[str, Any]:
    (s,) = [s for s in stats["delivery"]["sfcs"] if s["name"] == name]
    return s


def assert_every_packet_accounted_for(stats: dict[str, Any], name: str) -> None:
    """rx = tx + drops, every drop counted at the gateway or at one hop (delivery.h's contract)."""
    sfc, hops = sfc_of(stats, name), delivery_of(stats, name)["hops"]
    nf_hops, end = hops[:-1], hops[-1]
    assert end["position"] == "end"
    for h in nf_hops:   # what an NF's instances got either came back or was dropped there
        assert h["in"] == h["out"] + h["nf_drops"] + h["stranded"], h
    for prev, nxt in zip(nf_hops, nf_hops[1:], strict=False):   # a linear chain: out of one, into the next
        assert prev["out"] == nxt["in"] + nxt["no_instance"] + nxt["ring_full"], (prev, nxt)
    assert nf_hops[0]["in"] + nf_hops[0]["no_instance"] + nf_hops[0]["ring_full"] == \
        sfc["rx_packets"] - sfc["no_instance"] - sfc["ring_full"]
    assert nf_hops[-1]["out"] == end["in"] + end["ring_full"]
    drops = sum(h["nf_drops"] + h["no_instance"] + h["ring_full"] + h["stranded"] for h in nf_hops)
    assert delivery_of(stats, name)["drops"] == drops + end["ring_full"]
    assert sfc["tx_packets"] == sfc["rx_packets"] - sfc["no_instance"] - sfc["ring_full"] - \
        delivery_of(stats, name)["drops"] - stats["port"]["tx_dropped"]


MODES = ("consolidated", "local-proxy", "global-proxy")


def test_every_chaining_mode_gives_identical_packets_and_nf_state(dpdk_ready: cfg.Config,
                                                                   tmp_path: Path) -> None:
    """The same SFC (FW → MON → NAT, the FW dropping one flow) under the three chaining modes: byte-identical
    packets out, the same NAT mappings, MON's per-flow counts equal to what each run sent."""
    n_flows, count, blocked = 16, 160, 3
    out: dict[str, list[bytes]] = {}
    state: dict[str, tuple[Any, ...]] = {}
    for mode in MODES:
        capture = tmp_path / f"{mode}.pcap"
        with rig(dpdk_ready, chained(mode), sfc=fw_mon_nat(blocked), capture=capture,
                 capture_count=count) as r:
            res = r.generator.run_trial(profiles.udp_flows(8_000, 64, n_flows, udp_checksum="hw"),
                                        duration=0.5)
            ctl = r.platform.controller
            stats = r.platform.stats()
            state[mode] = (res.tx_packets, ctl.dump_table("mon/mon_flows"), ctl.dump_table("nat/nat_map"))
            out[mode] = read_pcap(capture)
        sent = per_flow(res.tx_packets, n_flows)
        assert res.dut_rx_full == 0
        assert res.rx_packets == res.tx_packets - sent[blocked], mode   # FW dropped exactly one flow
        assert stats["chaining"] == mode
        if mode == "consolidated":
            assert [i["position"] for i in stats["instances"]] == [-1] and "delivery" not in stats
        else:
            assert sorted(i["position"] for i in stats["instances"]) == [0, 1, 2]   # one instance per NF
            assert delivery_of(stats, "chain")["hops"][0]["nf_drops"] == sent[blocked]
            assert_every_packet_accounted_for(stats, "chain")
    assert len(out["consolidated"]) == count
    sent_c, mon_c, nat_c = state["consolidated"]
    assert len(nat_c) == n_flows - 1
    for mode in MODES[1:]:
        # byte for byte (the global proxy's link header left no trace); the same external address and port
        # per flow; MON's per-flow counts equal what each run sent (the runs' lengths differ by pacing)
        assert out[mode] == out["consolidated"], mode
        sent_m, mon_m, nat_m = state[mode]
        assert nat_m == nat_c, mode
        assert set(mon_m) == set(mon_c), mode
    for sent_total, mon, _ in state.values():
        assert sorted(int.from_bytes(v[:8], "little") for v in mon.values()) == \
            sorted(n for i, n in enumerate(per_flow(sent_total, n_flows)) if i != blocked)


def test_local_proxy_accounts_for_every_packet_at_some_hop(dpdk_ready: cfg.Config) -> None:
    n_flows, blocked = 8, 5
    with rig(dpdk_ready, chained("local-proxy"), sfc=fw_mon_nat(blocked)) as r:
        first = r.generator.run_trial(profiles.udp_flows(8_000, 64, n_flows), duration=0.5)
        before = r.platform.stats()
        assert_every_packet_accounted_for(before, "chain")
        # take MON's instance away: its packets find no instance at hop 1 until serpensd starts one again
        (mon_slot,) = [i["instance"] for i in before["instances"] if i["position"] == 1]
        r.platform.stop_instance(mon_slot)
        second = r.generator.run_trial(profiles.udp_flows(8_000, 64, n_flows), duration=0.5)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            after = r.platform.stats()
            if any(i["position"] == 1 and i["state"] == "ready" for i in after["instances"]):
                break
            time.sleep(0.1)
        third = r.generator.run_trial(profiles.udp_flows(8_000, 64, n_flows), duration=0.5)
        after = r.platform.stats()
    hops = delivery_of(after, "chain")["hops"]
    assert first.rx_packets == first.tx_packets - per_flow(first.tx_packets, n_flows)[blocked]
    assert hops[1]["no_instance"] > 0                      # dropped at MON's hop, and counted there
    assert second.rx_packets < second.tx_packets
    assert any(i["position"] == 1 and i["state"] == "ready" for i in after["instances"]), \
        "no MON instance was started again for the packets that found none"
    assert third.rx_packets == third.tx_packets - per_flow(third.tx_packets, n_flows)[blocked]
    assert_every_packet_accounted_for(after, "chain")
    sent = first.tx_packets + second.tx_packets + third.tx_packets
    assert sfc_of(after, "chain")["rx_packets"] == sent
    assert sfc_of(after, "chain")["tx_packets"] == first.rx_packets + second.rx_packets + third.rx_packets
    assert after["delivery"]["proxy"]["alive"] and after["stages"]["proxy"]["packets"] == sent


def test_delivery_time_is_measured_between_two_nfs_only_with_a_proxy(dpdk_ready: cfg.Config) -> None:
    spec = SfcSpec("two-fw", {}, ["fw1", "fw2"], {"fw1": ("fw", {}), "fw2": ("fw", {})})
    seen: dict[str, dict[str, Any]] = {}
    for mode in ("local-proxy", "consolidated"):
        with rig(dpdk_ready, chained(mode), sfc=spec) as r:
            res = r.generator.run_trial(profiles.udp_flows(8_000, 64, 8), duration=0.5)
            seen[mode] = r.platform.stats()
        assert res.rx_packets == res.tx_packets, mode
    by_pos = {i["position"]: i for i in seen["local-proxy"]["instances"]}
    assert by_pos[0]["delivery_batches"] == 0 and by_pos[0]["delivery_us"] == 0   # from the gateway
    assert by_pos[1]["delivery_batches"] > 0 and by_pos[1]["delivery_us"] > 0     # FW1 → FW2
    assert seen["local-proxy"]["delivery"]["delivery_us"] > 0
    hops = delivery_of(seen["local-proxy"], "two-fw")["hops"]
    assert hops[1]["delivery_batches"] == by_pos[1]["delivery_batches"]
    print(f"local-proxy delivery FW1 -> FW2: {by_pos[1]['delivery_us']:.1f} us per batch")
    (only,) = seen["consolidated"]["instances"]
    assert only["delivery_us"] == 0 and only["delivery_batches"] == 0
    assert "delivery" not in seen["consolidated"] and "proxy" not in seen["consolidated"]["stages"]


def test_a_bad_chaining_mode_is_one_clear_error(dpdk_ready: cfg.Config) -> None:
    with pytest.raises(PlatformError, match=r"chaining.*'sand'.*consolidated.*local-proxy.*global-proxy"):
        with rig(dpdk_ready, chained("sand"), sfc=SfcSpec.linear("fw")):
            pass
    serpensd = repo_path(dpdk_ready["platforms"]["serpens"]["serpensd"])
    proc = subprocess.run([str(serpensd), "--no-huge", "-m", "64", "--no-pci", "--no-telemetry",
                           "--file-prefix", "h1-bad-chaining", "--log-level=*:error", "--",
                           "--control", "/nonexistent.sock", "--runtime", "/bin/true", "--chaining", "sand"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    first = proc.stderr.splitlines()[0]
    assert first == "serpensd: --chaining 'sand' is not one of: consolidated, local-proxy, global-proxy"
    assert "Traceback" not in proc.stderr


def test_local_proxy_and_nf_instances_that_die_are_replaced(dpdk_ready: cfg.Config) -> None:
    n_flows = 8
    with rig(dpdk_ready, chained("local-proxy"), sfc=SfcSpec.linear("fw,mon")) as r:
        before = r.platform.stats()
        (mon,) = [i for i in before["instances"] if i["position"] == 1]
        proxy_pid = before["delivery"]["proxy"]["pid"]
        os.kill(mon["pid"], signal.SIGKILL)
        os.kill(proxy_pid, signal.SIGKILL)
        deadline, after = time.monotonic() + 10, before
        while time.monotonic() < deadline:
            after = r.platform.stats()
            ready = {i["position"] for i in after["instances"] if i["state"] == "ready" and i["alive"]}
            if after["delivery"]["proxy"]["restarts"] == 1 and after["delivery"]["proxy"]["alive"] and \
                    ready == {0, 1}:
                break
            time.sleep(0.1)
        res = r.generator.run_trial(profiles.udp_flows(8_000, 64, n_flows), duration=0.5)
        final = r.platform.stats()
    proxy = after["delivery"]["proxy"]
    assert proxy["restarts"] == 1 and proxy["alive"] and proxy["pid"] != proxy_pid
    assert sfc_of(after, "fw-mon")["crashes"] == 1
    (new_mon,) = [i for i in after["instances"] if i["position"] == 1]
    assert new_mon["state"] == "ready" and new_mon["alive"] and new_mon["pid"] != mon["pid"]
    assert res.rx_packets == res.tx_packets                   # the chain works again, through both
    assert_every_packet_accounted_for(final, "fw-mon")


@pytest.mark.parametrize("mode", ["local-proxy", "global-proxy"])
def test_a_proxy_sends_each_packet_down_the_branch_its_label_says(dpdk_ready: cfg.Config, mode: str) -> None:
    """Fig. 6b's dynamic SFC with an instance per NF: the FW's selector picks the next position, which the
    packet carries through the proxy (the local proxy: the mbuf's tag; the global one: the link header);
    both branches rejoin at the last MON."""
    n_flows, suspicious = 8, {1, 4, 6}
    with rig(dpdk_ready, chained(mode), sfc=dynamic_sfc(suspicious)) as r:
        res = r.generator.run_trial(profiles.udp_flows(8_000, 64, n_flows), duration=0.5)
        stats = r.platform.stats()
        counts = {m: {k: int.from_bytes(v[:8], "little")
                      for k, v in r.platform.controller.dump_table(f"{m}/mon_flows").items()}
                  for m in ("mon_sus", "mon_ok", "mon_all")}
    sent = per_flow(res.tx_packets, n_flows)
    assert res.rx_packets == res.tx_packets
    assert sorted(counts["mon_sus"].values()) == sorted(sent[i] for i in suspicious)
    assert sorted(counts["mon_ok"].values()) == sorted(sent[i] for i in range(n_flows) if i not in suspicious)
    assert sorted(counts["mon_all"].values()) == sorted(sent)
    fw, sus, ok, joined, end = delivery_of(stats, "dyn")["hops"]
    assert sus["in"] == sum(sent[i] for i in suspicious) and ok["in"] == res.tx_packets - sus["in"]
    assert fw["out"] == sus["in"] + ok["in"] and joined["in"] == sus["out"] + ok["out"] == end["in"]
    if mode == "global-proxy":
        assert sus["routed"] == sus["in"]          # the proxy chose an instance for every one of them
    else:
        assert sorted(i["position"] for i in stats["instances"]) == [0, 1, 2, 3]


def test_idle_nf_instances_scale_to_zero_and_come_back_one_hop_at_a_time(dpdk_ready: cfg.Config) -> None:
    n_flows = 4
    with rig(dpdk_ready, chained("local-proxy"), sfc=SfcSpec.linear("fw,mon,nat")) as r:
        ctl = r.platform.controller
        ctl.set(keep_warm_s=0.3)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and r.platform.stats()["instances"]:
            time.sleep(0.1)
        idle = r.platform.stats()
        ctl.set(keep_warm_s=30)
        # the first packets find no FW instance; once FW runs they find no MON, then no NAT: each NF is
        # started on demand when its own hop has packets for it
        for _ in range(3):
            r.generator.run_trial(profiles.udp_flows(2_000, 64, n_flows), duration=0.3)
            time.sleep(0.3)
        res = r.generator.run_trial(profiles.udp_flows(8_000, 64, n_flows), duration=0.5)
        after = r.platform.stats()
    assert idle["instances"] == []                                   # every NF's instance retired
    assert sorted(i["position"] for i in after["instances"]) == [0, 1, 2]
    hops = delivery_of(after, "fw-mon-nat")["hops"]
    assert all(h["no_instance"] > 0 for h in hops[:3]), hops        # every hop dropped while it had none
    assert res.rx_packets == res.tx_packets                          # and the chain is whole again
    assert_every_packet_accounted_for(after, "fw-mon-nat")
