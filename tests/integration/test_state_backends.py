"""The state axis (paper Section III-B, Fig. 12): the same NF binaries on the three state backends —
serpens (the State Manager in shared memory), fission (every table in a real redis-server) and snf
(per-flow local, global in Redis) — with real traffic (docs/state-backends.md).

Behaviour, not speed: identical packets out of every backend; NAT never gives one external port to two
flows across instances and a starved instance gets ports back through trigger; MON's merged host totals
equal what was sent, also after scale-in; a Redis that dies makes fission/snf fail fast and clearly, while
serpens never needs Redis at all.
"""

from __future__ import annotations

import copy
import ipaddress
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from harness import config as cfg
from harness.platforms.base import PlatformError
from harness.rig import rig
from harness.serpens.sfc import SfcSpec
from harness.traffic import profiles
from tests.integration.packets import (
    FRAME_BYTES,
    LOAD_DPORT,
    LOAD_DST,
    LOAD_SPORT,
    load_src,
    per_flow,
    read_pcap,
)

pytestmark = pytest.mark.dpdk

# the state variants of the design registry and serpensd's name of their state backend
BACKENDS = {"serpens": "serpens", "fission-state": "fission", "snf-state": "snf"}
EXTERNAL_IP = "198.18.1.1"


def remote_stats(stats: dict[str, Any]) -> dict[str, float]:
    """Remote access of every instance together (0 on serpens)."""
    keys = ("batches", "round_trips", "ops", "misses", "us")
    total = {k: float(sum(i["remote"][k] for i in stats["instances"])) for k in keys}
    total["us_per_batch"] = total["us"] / total["batches"] if total["batches"] else 0.0
    return total


def hosts_of(ctl: Any, n: int, skip: tuple[int, ...] = ()) -> dict[int, tuple[int, int]]:
    return {i: struct.unpack("<QQ", ctl.read_state("mon/mon_hosts",
                                                   ipaddress.IPv4Address(load_src(i)).packed)[:16])
            for i in range(n) if i not in skip}


# --- the same NF binaries give the same packets on every backend ----------------------------------------

def test_every_backend_gives_the_same_packets_for_the_same_input(dpdk_ready: cfg.Config,
                                                                 tmp_path: Path) -> None:
    n_flows, count = 16, 160
    rules = f"17,{load_src(3)},{LOAD_SPORT},{LOAD_DST},{LOAD_DPORT}"
    out: dict[str, list[bytes]] = {}
    counts: dict[str, Any] = {}
    for backend in BACKENDS:
        capture = tmp_path / f"{backend}.pcap"
        spec = SfcSpec("same", {}, ["fw", "ids", "mon", "nat"], {"fw": ("fw", {"blacklist": rules})})
        with rig(dpdk_ready, backend, sfc=spec, capture=capture, capture_count=count) as r:
            res = r.generator.run_trial(profiles.udp_flows(8_000, 64, n_flows, udp_checksum="hw"),
                                        duration=0.5)
            stats = r.platform.stats()
            ctl = r.platform.controller
            mapping = ctl.dump_table("nat/nat_map")
            hosts = hosts_of(ctl, n_flows, skip=(3,))
            out[backend] = read_pcap(capture)
        sent = per_flow(res.tx_packets, n_flows)
        assert res.dut_rx_full == 0
        assert res.rx_packets == res.tx_packets - sent[3], backend   # FW dropped exactly flow 3
        assert len(mapping) == n_flows - 1, backend                   # ... before NAT mapped it
        assert hosts == {i: (sent[i], sent[i] * FRAME_BYTES) for i in range(n_flows) if i != 3}, backend
        assert stats["state"]["backend"] == BACKENDS[backend]
        counts[backend] = remote_stats(stats)
        print(f"{backend}: remote access {counts[backend]}")
    assert len(out["serpens"]) == count
    assert {Ether(p)[IP].src for p in out["serpens"]} == {EXTERNAL_IP}
    assert out["fission-state"] == out["serpens"]
    assert out["snf-state"] == out["serpens"]
    assert counts["serpens"]["ops"] == 0                          # serpens never talks to Redis
    for backend in ("fission-state", "snf-state"):
        c = counts[backend]
        assert c["batches"] > 0 and c["round_trips"] > 0
        # learned: after the first batches, every packet's keys come with the prefetch
        assert c["misses"] < 0.1 * c["batches"] * 4 + 64, (backend, c)


# --- several instances ----------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["serpens", "fission-state"])
def test_two_nat_instances_never_share_a_port_and_scale_in_loses_nothing(dpdk_ready: cfg.Config,
                                                                         tmp_path: Path,
                                                                         backend: str) -> None:
    # The Router's hash sends 6 of these 9 flows to one instance and 3 to the other (fixed flow set, fixed
    # hash). 10 ports split 5/5: the busier instance runs dry at its 6th flow and only gets a port through
    # trigger (half of what the other has left), so every flow being mapped proves trigger worked.
    ports, n_flows = 10, 9
    conf = copy.deepcopy(dpdk_ready)
    conf["platforms"]["serpens"]["instances"] = 2
    spec = SfcSpec("monnat", {}, ["mon", "nat"], {"nat": ("nat", {"ports": f"1024-{1024 + ports - 1}"})})
    capture = tmp_path / "rx.pcap"
    with rig(conf, backend, sfc=spec, capture=capture, capture_count=4 * n_flows) as r:
        p, ctl = r.platform, r.platform.controller
        assert len(p.instances) == 2
        first = r.generator.run_trial(profiles.udp_flows(6_000, 64, n_flows), duration=0.5)
        stats = p.stats()
        mapping = {k: struct.unpack("!4sH", v[:6]) for k, v in ctl.dump_table("nat/nat_map").items()}
        free = struct.unpack("<II", ctl.read_state("nat/nat_pool", b"\0\0\0\0")[:8])[0]
        per_instance = sorted(i["pkts_in"] for i in stats["instances"])
        # scale in: stop one instance; its sub-pool and host replicas merge back
        p.stop_instance(sorted(p.instances)[0])
        free_after = struct.unpack("<II", ctl.read_state("nat/nat_pool", b"\0\0\0\0")[:8])[0]
        mid_hosts = hosts_of(ctl, n_flows)
        second = r.generator.run_trial(profiles.udp_flows(6_000, 64, n_flows), duration=0.5)
        after = {k: struct.unpack("!4sH", v[:6]) for k, v in ctl.dump_table("nat/nat_map").items()}
        hosts = hosts_of(ctl, n_flows)
        packets = [Ether(x) for x in read_pcap(capture)]
    assert first.rx_packets == first.tx_packets and second.rx_packets == second.tx_packets
    assert len(mapping) == n_flows
    assert len(set(mapping.values())) == n_flows, "two flows got the same external address and port"
    assert free == ports - n_flows
    busiest = round(per_instance[-1] / sum(per_instance) * n_flows)
    assert busiest > ports // 2, f"flows split {per_instance}: no instance outgrew its half, pick another set"
    assert free_after == free                     # nothing lost when the instance left
    assert after == mapping                       # and every flow keeps its port
    sent1, sent2 = per_flow(first.tx_packets, n_flows), per_flow(second.tx_packets, n_flows)
    assert mid_hosts == {i: (sent1[i], sent1[i] * FRAME_BYTES) for i in range(n_flows)}
    total = {i: sent1[i] + sent2[i] for i in range(n_flows)}
    assert hosts == {i: (total[i], total[i] * FRAME_BYTES) for i in range(n_flows)}
    assert {(x[IP].src, x[UDP].sport) for x in packets} <= {(str(ipaddress.IPv4Address(ip)), port)
                                                             for ip, port in mapping.values()}


# --- failures ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["fission-state", "snf-state"])
def test_a_dead_redis_fails_the_remote_backends_fast_and_clearly(dpdk_ready: cfg.Config,
                                                                backend: str) -> None:
    with rig(dpdk_ready, backend, sfc=SfcSpec.linear("mon")) as r:
        ok = r.generator.run_trial(profiles.udp_flows(8_000, 64, 8), duration=0.3)
        assert ok.rx_packets == ok.tx_packets
        assert r.platform.redis is not None
        r.platform.redis.kill()
        t0 = time.monotonic()
        r.generator.run_trial(profiles.udp_flows(8_000, 64, 8), duration=0.3)
        with pytest.raises(PlatformError, match=r"(?s)remote state store \(Redis at 127\.0\.0\.1:\d+\).*"
                                                r"(died \(killed by signal 9\)|failed)") as err:
            while time.monotonic() - t0 < 10:
                r.platform.stats()
                time.sleep(0.1)
        assert time.monotonic() - t0 < 5, "noticed too late"
        print(err.value)


def test_serpens_never_needs_redis(dpdk_ready: cfg.Config) -> None:
    conf = copy.deepcopy(dpdk_ready)
    conf["redis"]["binary"] = "/nonexistent/redis-server"
    with rig(conf, "serpens", sfc=SfcSpec.linear("fw,mon,nat")) as r:
        assert r.platform.redis is None
        res = r.generator.run_trial(profiles.udp_flows(8_000, 64, 8), duration=0.3)
        stats = r.platform.stats()
    assert res.rx_packets == res.tx_packets
    assert stats["state"]["backend"] == "serpens" and remote_stats(stats)["ops"] == 0


def test_a_missing_redis_server_is_a_clear_platform_error(dpdk_ready: cfg.Config) -> None:
    conf = copy.deepcopy(dpdk_ready)
    conf["redis"]["binary"] = "/nonexistent/redis-server"
    with pytest.raises(PlatformError, match="redis-server not found"):
        with rig(conf, "fission-state", sfc=SfcSpec.linear("fw")):
            pass


# --- the pause of a state split ----------------------------------------------------------------------------

def test_stats_report_how_long_splits_and_merges_paused_processing(dpdk_ready: cfg.Config) -> None:
    with rig(dpdk_ready, "serpens", sfc=SfcSpec.linear("nat")) as r:
        p = r.platform
        started = p.start_instance("nat")
        p.stop_instance(int(started["instance"]))
        pauses = p.stats()["state"]["pauses"]
    assert pauses["split"]["count"] >= 2 and pauses["merge"]["count"] >= 1
    for kind in ("split", "merge"):
        assert 0 < pauses[kind]["last_us"] <= pauses[kind]["max_us"] < 1_000_000
    print(f"split pause: last {pauses['split']['last_us']:.1f} us, max {pauses['split']['max_us']:.1f} us")
