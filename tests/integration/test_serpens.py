"""serpensd and the real NFs, driven through the control protocol (docs/serpens-control.md), with the real
generator on a DPDK memif link.

Behaviour, not speed (rates ≤ 0.5 Mpps, short trials): the NAT rewrites and translates back with correct
checksums, the FW drops exactly the blacklisted flows, the MON's counters equal what was sent, NAT mappings
survive replacing every instance mid-traffic (state lives in the State Manager, not in instances), bad
deployments are refused clearly without disturbing a running SFC, and `harness run --platform serpens`
writes its row.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import struct
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from harness import config as cfg
from harness.cli import main
from harness.config import repo_path
from harness.rig import Rig, rig
from harness.serpens.controller import SerpensError
from harness.serpens.sfc import SfcSpec
from harness.traffic import profiles
from tests.integration.packets import (
    FRAME_BYTES,
    LOAD_DPORT,
    LOAD_DST,
    LOAD_SPORT,
    flow_key,
    load_src,
    per_flow,
    read_pcap,
)

pytestmark = pytest.mark.dpdk

EXTERNAL_IP = "198.18.1.1"           # platforms.serpens.nfs.nat.external_ip


def checksums_ok(pkt: Any) -> tuple[bool, bool]:
    """(IPv4 checksum right, UDP checksum right or 0), recomputed by scapy."""
    ip_ck, udp_ck = pkt[IP].chksum, pkt[UDP].chksum
    clone = Ether(bytes(pkt))
    del clone[IP].chksum
    del clone[UDP].chksum
    rebuilt = Ether(bytes(clone))
    return ip_ck == rebuilt[IP].chksum, udp_ck in (0, rebuilt[UDP].chksum)


def sfc_stats(stats: dict[str, Any], name: str) -> dict[str, Any]:
    (s,) = [s for s in stats["sfcs"] if s["name"] == name]
    return s


def instances_of(stats: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [i for i in stats["instances"] if i["sfc_name"] == name]


def test_test_nf(name: str) -> Path:
    """The lead's test NF objects (native/serpens/testnfs), wherever the build puts them."""
    for p in (repo_path(f"build/native/serpens/testnfs/{name}.so"), repo_path(f"build/native/nfs/{name}.so")):
        if p.is_file():
            return p
    pytest.skip(f"{name}.so is not built (native/serpens/testnfs)")


test_test_nf.__test__ = False  # a helper, not a test


def forwards_everything(r: Rig, dst: str = LOAD_DST, n_flows: int = 8) -> None:
    res = r.generator.run_trial(profiles.udp_flows(20_000, 64, n_flows, dst=dst), duration=0.3)
    assert res.tx_packets > 5000
    assert res.rx_packets == res.tx_packets, f"to {dst}: tx {res.tx_packets}, rx {res.rx_packets}"


# --- the SFC end to end ---------------------------------------------------------------------------------

def test_fw_mon_nat_forwards_every_packet_and_accounts_for_it(dpdk_ready: cfg.Config) -> None:
    spec = SfcSpec.linear("fw,mon,nat")
    with rig(dpdk_ready, "serpens", sfc=spec) as r:
        assert r.platform.workload == "fw,mon,nat"
        before = r.platform.stats()
        res = r.generator.run_trial(profiles.load_with_latency(200_000, frame_size=64, n_flows=64),
                                    duration=1.0)
        after = r.platform.stats()
    sfc_rx = sfc_stats(after, spec.name)["rx_packets"] - sfc_stats(before, spec.name)["rx_packets"]
    sfc_tx = sfc_stats(after, spec.name)["tx_packets"] - sfc_stats(before, spec.name)["tx_packets"]
    port_rx = after["port"]["rx_packets"] - before["port"]["rx_packets"]
    assert res.tx_packets > 150_000
    assert port_rx == res.tx_packets - res.dut_rx_full
    assert after["gateway"]["miss"] == before["gateway"]["miss"]   # no match = every packet is the SFC's
    assert sfc_rx == port_rx
    assert res.rx_packets == sfc_tx
    lost = res.tx_packets - res.rx_packets
    assert res.rx_packets >= 0.999 * res.tx_packets, f"lost {lost} of {res.tx_packets}"
    lat = res.latency[0]
    assert lat.rx_packets > 0 and 0 < lat.p50_ns <= lat.p99_ns


@pytest.mark.parametrize("nf_type", ["fw", "mon", "nat", "ids", "vpn", "synthetic"])
def test_every_nf_type_deploys_with_its_default_arguments_and_forwards(dpdk_ready: cfg.Config,
                                                                         nf_type: str) -> None:
    if not repo_path(f"{dpdk_ready['platforms']['serpens']['nfs_dir']}/{nf_type}.so").is_file():
        pytest.skip(f"{nf_type}.so is not built")
    with rig(dpdk_ready, "serpens", sfc=SfcSpec.linear(nf_type)) as r:
        tables = r.platform.deployed_nfs[nf_type]["tables"]
        assert tables and all(t.startswith(f"{nf_type}/") for t in tables)
        forwards_everything(r)


# --- NAT -------------------------------------------------------------------------------------------------

def nat_mapping(ctl: Any) -> dict[bytes, tuple[str, int]]:
    """nat/nat_map: inside flow -> (external ip, external port)."""
    out = {}
    for key, value in ctl.dump_table("nat/nat_map").items():
        ip, port = struct.unpack("!4sH", value[:6])
        out[key] = (str(ipaddress.IPv4Address(ip)), port)
    return out


def test_nat_rewrites_source_address_and_port_and_fixes_checksums(dpdk_ready: cfg.Config,
                                                                   tmp_path: Path) -> None:
    capture, n_flows = tmp_path / "rx.pcap", 16
    with rig(dpdk_ready, "serpens", sfc=SfcSpec.linear("nat"), capture=capture, capture_count=64) as r:
        res = r.generator.run_trial(profiles.udp_flows(10_000, 64, n_flows, udp_checksum="hw"), duration=0.5)
        packets = [Ether(p) for p in read_pcap(capture)]
        mapping = nat_mapping(r.platform.controller)
        # a UDP checksum of 0 ("none") stays 0
        res0 = r.generator.run_trial(profiles.udp_flows(10_000, 64, n_flows), duration=0.3)
        zero = [Ether(p) for p in read_pcap(capture)]
    assert res.rx_packets == res.tx_packets and res0.rx_packets == res0.tx_packets
    assert len(packets) == 64
    ports: dict[int, int] = {}
    for k, pkt in enumerate(packets):
        flow = k % n_flows   # one instance keeps the generator's order
        assert pkt[IP].src == EXTERNAL_IP, f"packet {k}: src {pkt[IP].src}"
        assert (pkt[IP].dst, pkt[UDP].dport) == (LOAD_DST, LOAD_DPORT)
        assert 1024 <= pkt[UDP].sport <= 65535
        assert ports.setdefault(flow, pkt[UDP].sport) == pkt[UDP].sport, f"flow {flow} changed its port"
        assert mapping[flow_key(load_src(flow))] == (EXTERNAL_IP, pkt[UDP].sport)
        ip_ok, udp_ok = checksums_ok(pkt)
        assert ip_ok, f"packet {k}: bad IPv4 checksum"
        assert pkt[UDP].chksum != 0 and udp_ok, f"packet {k}: bad UDP checksum {pkt[UDP].chksum:#x}"
    assert len(set(ports.values())) == n_flows   # every flow its own external port
    assert len(mapping) == n_flows
    assert all(p[IP].src == EXTERNAL_IP and p[UDP].chksum == 0 and checksums_ok(p)[0] for p in zero)


def test_nat_translates_the_reverse_direction_back(dpdk_ready: cfg.Config, tmp_path: Path) -> None:
    capture, n_flows = tmp_path / "rx.pcap", 4
    with rig(dpdk_ready, "serpens", sfc=SfcSpec.linear("nat"), capture=capture, capture_count=200) as r:
        r.generator.run_trial(profiles.udp_flows(4_000, 64, n_flows, udp_checksum="hw"), duration=0.3)
        mapping = nat_mapping(r.platform.controller)
        ext_port = {i: mapping[flow_key(load_src(i))][1] for i in range(n_flows)}
        # replies: from the remote end (48.0.0.1:12) to each external port, plus one port nobody was given
        replies = [s for i in range(n_flows)
                   for s in profiles.udp_flows(1_000, 64, 1, src=LOAD_DST, dst=EXTERNAL_IP, sport=LOAD_DPORT,
                                               dport=ext_port[i], udp_checksum="hw")]
        unknown = profiles.udp_flows(1_000, 64, 1, src=LOAD_DST, dst=EXTERNAL_IP, sport=LOAD_DPORT,
                                     dport=65000, udp_checksum="hw")
        assert 65000 not in ext_port.values()
        res = r.generator.run_trial(replies + unknown, duration=0.5)
        packets = [Ether(p) for p in read_pcap(capture)]
    # every reply to a mapped port came back, translated; the one to a port nobody was given was dropped
    unknown_sent = int(res.raw["streams"][-1]["tx_packets"])
    assert unknown_sent > 0 and res.dut_rx_full == 0
    assert res.rx_packets == res.tx_packets - unknown_sent
    inside = {ext_port[i]: load_src(i) for i in range(n_flows)}
    seen = set()
    assert packets
    for pkt in packets:
        assert (pkt[IP].src, pkt[UDP].sport) == (LOAD_DST, LOAD_DPORT)
        assert pkt[UDP].dport == LOAD_SPORT, f"dport {pkt[UDP].dport}: not translated back"
        assert pkt[IP].dst in inside.values(), f"dst {pkt[IP].dst}: not an inside host"
        seen.add(pkt[IP].dst)
        ip_ok, udp_ok = checksums_ok(pkt)
        assert ip_ok and udp_ok and pkt[UDP].chksum != 0
    assert seen == set(inside.values())


# --- FW --------------------------------------------------------------------------------------------------

def test_fw_drops_exactly_the_blacklisted_flows(dpdk_ready: cfg.Config, tmp_path: Path) -> None:
    capture, n_flows = tmp_path / "rx.pcap", 16
    black = {2, 6}  # flows 16.0.0.3 and 16.0.0.7: one exact rule by number, one with proto by name
    rules = (f"17,{load_src(2)},{LOAD_SPORT},{LOAD_DST},{LOAD_DPORT};"
             f"udp,{load_src(6)},{LOAD_SPORT},{LOAD_DST},{LOAD_DPORT}")
    spec = SfcSpec("fw-only", {}, ["fw"], {"fw": ("fw", {"blacklist": rules})})
    with rig(dpdk_ready, "serpens", sfc=spec, capture=capture, capture_count=300) as r:
        before = r.platform.stats()
        res = r.generator.run_trial(profiles.udp_flows(16_000, 64, n_flows), duration=1.0)
        after = r.platform.stats()
        packets = [Ether(p) for p in read_pcap(capture)]
    assert res.dut_rx_full == 0
    sent = per_flow(res.tx_packets, n_flows)
    blacklisted = sum(sent[i] for i in black)
    assert res.rx_packets == res.tx_packets - blacklisted
    drops = sum(i["nf_drops"] for i in instances_of(after, "fw-only")) - \
        sum(i["nf_drops"] for i in instances_of(before, "fw-only"))
    assert drops == blacklisted
    s0, s1 = sfc_stats(before, "fw-only"), sfc_stats(after, "fw-only")
    assert s1["rx_packets"] - s0["rx_packets"] == res.tx_packets
    assert s1["tx_packets"] - s0["tx_packets"] == res.tx_packets - blacklisted
    srcs = {p[IP].src for p in packets}
    assert srcs == {load_src(i) for i in range(n_flows) if i not in black}


# --- MON -------------------------------------------------------------------------------------------------

def test_mon_flow_and_host_counters_equal_what_was_sent(dpdk_ready: cfg.Config) -> None:
    n_flows = 8
    with rig(dpdk_ready, "serpens", sfc=SfcSpec.linear("mon")) as r:
        res = r.generator.run_trial(profiles.udp_flows(8_000, 64, n_flows), duration=1.0)
        ctl = r.platform.controller
        flows = {k: struct.unpack("<QQ", v[:16]) for k, v in ctl.dump_table("mon/mon_flows").items()}
        hosts = {i: struct.unpack("<QQ", ctl.read_state("mon/mon_hosts",
                                                        ipaddress.IPv4Address(load_src(i)).packed)[:16])
                 for i in range(n_flows)}
    assert res.dut_rx_full == 0 and res.rx_packets == res.tx_packets
    sent = per_flow(res.tx_packets, n_flows)
    assert flows == {flow_key(load_src(i)): (sent[i], sent[i] * FRAME_BYTES) for i in range(n_flows)}
    assert hosts == {i: (sent[i], sent[i] * FRAME_BYTES) for i in range(n_flows)}


# --- state outlives instances ----------------------------------------------------------------------------

def test_nat_keeps_every_mapping_when_all_instances_are_replaced_mid_traffic(dpdk_ready: cfg.Config,
                                                                             tmp_path: Path) -> None:
    capture, n_flows = tmp_path / "rx.pcap", 64
    spec = SfcSpec.linear("fw,mon,nat")
    # Cold starts, no process pool: every instance is a new process, so nothing of the old ones can survive
    # in memory.
    conf = copy.deepcopy(dpdk_ready)
    conf["platforms"]["serpens"]["startup"] = "exec"
    with rig(conf, "serpens", sfc=spec, capture=capture, capture_count=10 * n_flows) as r:
        p, gen = r.platform, r.generator
        first = gen.run_trial(profiles.udp_flows(64_000, 64, n_flows), duration=0.5)
        assert first.rx_packets == first.tx_packets
        before = nat_mapping(p.controller)
        assert len(before) == n_flows
        first_stats = p.stats()

        gen.reset()
        gen.add_streams(profiles.udp_flows(50_000, 64, n_flows))
        gen.start(duration=2.0)
        time.sleep(0.6)
        old = sorted(p.instances)
        for slot in old:
            p.stop_instance(slot)
        time.sleep(0.2)
        started = p.start_instance(spec.name)
        gen.wait_on_traffic(timeout=30)
        during = gen.get_stats()
        after = nat_mapping(p.controller)
        stats = p.stats()

        last = gen.run_trial(profiles.udp_flows(64_000, 64, n_flows), duration=0.5)
        packets = [Ether(x) for x in read_pcap(capture)]
    assert old
    alive = [i for i in instances_of(stats, spec.name) if i["alive"]]
    assert started["instance"] in [i["instance"] for i in alive]
    assert not {i["pid"] for i in alive} & {i["pid"] for i in instances_of(first_stats, spec.name)}
    assert during.rx_packets > 0
    assert after == before, "mappings changed when the instances were replaced"
    assert last.rx_packets == last.tx_packets
    # every flow still leaves with the address and port it got before the replacement
    assert len(packets) == 10 * n_flows
    assert {(x[IP].src, x[UDP].sport) for x in packets} == set(before.values())


# --- bad input: a clear error, and the running SFC keeps forwarding ------------------------------------

MAIN = {"dst": "48.0.0.0/16"}   # the running SFC; the other tests' SFCs use 48.1.0.0/16 and 48.2.0.0/16


@pytest.fixture
def main_sfc(dpdk_ready: cfg.Config):  # noqa: ANN201
    with rig(dpdk_ready, "serpens", sfc=SfcSpec.linear("fw,mon,nat", name="main", match=MAIN)) as r:
        forwards_everything(r)
        yield r
        forwards_everything(r)   # still, after the bad request
        assert all(i["alive"] for i in instances_of(r.platform.stats(), "main"))


def test_unknown_nf_path_is_refused_clearly(main_sfc: Rig) -> None:
    with pytest.raises(SerpensError, match=r"ghost.*(/nonexistent/ghost\.so|No such file)") as err:
        main_sfc.platform.controller.deploy_nf("ghost", "/nonexistent/ghost.so", {})
    assert "ghost" in str(err.value)
    with pytest.raises(SerpensError, match="not an NF|serpens_nf|symbol|dlopen|dlsym|invalid ELF|cannot"):
        main_sfc.platform.controller.deploy_nf("notnf", str(repo_path("README.md")), {})


def test_sfc_naming_a_missing_nf_is_refused_clearly(main_sfc: Rig) -> None:
    ctl = main_sfc.platform.controller
    with pytest.raises(SerpensError, match="missing1"):
        ctl.deploy_sfc("broken", {"dst": "48.2.0.0/16"}, ["fw", "missing1"])
    with pytest.raises(SerpensError, match="selector"):
        ctl.deploy_sfc("broken2", {"dst": "48.2.0.0/16"},
                       ["mon", {"distribute": ["fw", "nat"], "selector": "mon.suspicious"}])
    with pytest.raises(SerpensError, match="main"):
        ctl.deploy_sfc("main", {}, ["fw"])   # name taken
    assert [s["name"] for s in ctl.stats()["sfcs"]] == ["main"]


def test_forbidden_table_flags_are_refused_clearly(main_sfc: Rig) -> None:
    path = test_test_nf("badflags")
    with pytest.raises(SerpensError, match=r"(?i)bad.*(flag|global\|write|release|eventual|EINVAL|init)"):
        main_sfc.platform.controller.deploy_nf("badflags", str(path), {})


def test_delete_state_on_a_global_table_is_an_error_and_nothing_crashes(main_sfc: Rig) -> None:
    path = test_test_nf("baddelete")
    ctl = main_sfc.platform.controller
    try:
        ctl.deploy_nf("baddel", str(path), {})
    except SerpensError as exc:   # a platform may refuse it at deployment already
        assert "delete" in str(exc).lower()
        return
    ctl.deploy_sfc("baddel", {"dst": "48.1.0.0/16"}, ["baddel"])
    ctl.start_instance("baddel")
    before = ctl.stats()
    res = main_sfc.generator.run_trial(profiles.udp_flows(10_000, 64, 4, dst="48.1.0.1"), duration=0.3)
    after = ctl.stats()
    assert res.rx_packets == res.tx_packets   # the packet still passes
    assert after["state"]["api_errors"] - before["state"]["api_errors"] >= res.tx_packets
    assert "delete" in after["state"]["last_error"].lower()
    assert all(i["alive"] for i in instances_of(after, "baddel"))


# --- the CLI ---------------------------------------------------------------------------------------------

def test_cli_run_serpens_writes_a_row_with_the_sfc_as_workload(dpdk_ready: cfg.Config,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "runs"
    res = CliRunner().invoke(main, ["--quick", "run", "--platform", "serpens", "--sfc", "fw,mon,nat",
                                    "--rate-mpps", "0.2", "--duration", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "running fw,mon,nat" in res.output and "p99" in res.output
    (csv_path,) = out.glob("*.csv")
    row = pd.read_csv(csv_path).iloc[0]
    assert row["platform"] == "serpens" and row["workload"] == "fw,mon,nat"
    assert row["rx_packets"] > 0.99 * row["tx_packets"] and row["latency_p50_us"] > 0
    meta = json.loads(csv_path.with_suffix(".json").read_text())
    assert meta["status"] == "complete"
    assert meta["rig"]["platform"]["sfcs"][0]["graph"] == ["fw", "mon", "nat"]


def test_cli_run_serpens_with_an_nf_that_is_not_built_says_so(dpdk_ready: cfg.Config) -> None:
    res = CliRunner().invoke(main, ["--quick", "run", "--platform", "serpens", "--sfc", "fw,nosuchnf",
                                    "--rate-mpps", "0.1", "--duration", "0.5"])
    assert res.exit_code == 1
    assert "nosuchnf" in res.output and "does not exist" in res.output



def test_pooled_runtime_serves_a_new_instance_after_the_last_one_stopped(dpdk_ready: cfg.Config) -> None:
    # The pool (platforms.serpens.pool) keeps runtimes with their EAL initialised: a stopped instance's
    # process goes back to the pool and the next start only loads the SFC's NFs (dlopen: --startup load).
    conf = copy.deepcopy(dpdk_ready)
    conf["platforms"]["serpens"]["pool"] = 2
    conf["platforms"]["serpens"]["startup"] = "load"
    with rig(conf, "serpens", sfc=SfcSpec.linear("fw,mon,nat")) as r:
        p = r.platform
        (slot,) = p.instances
        p.stop_instance(slot)
        started = p.start_instance("fw-mon-nat")
        forwards_everything(r)
    assert started["pooled"] is True   # the pool's process served it: no exec, no EAL init


def test_nfs_mapped_from_shared_memory_images_behave_like_dlopen_ones(dpdk_ready: cfg.Config,
                                                                     tmp_path: Path) -> None:
    # --startup serpens: serpensd builds each NF's image once, pooled runtimes map it (native/serpens/loader).
    conf = copy.deepcopy(dpdk_ready)
    conf["platforms"]["serpens"]["startup"] = "serpens"
    capture, n_flows = tmp_path / "rx.pcap", 16
    rules = f"17,{load_src(3)},*,*,*"
    spec = SfcSpec("shm", {}, ["fw", "nat"], {"fw": ("fw", {"blacklist": rules}), "nat": ("nat", {})})
    with rig(conf, "serpens", sfc=spec, capture=capture, capture_count=100) as r:
        res = r.generator.run_trial(profiles.udp_flows(16_000, 64, n_flows), duration=0.5)
        packets = [Ether(x) for x in read_pcap(capture)]
    sent = per_flow(res.tx_packets, n_flows)
    assert res.rx_packets == res.tx_packets - sent[3]          # FW dropped exactly the blacklisted flow
    assert {p[IP].src for p in packets} == {EXTERNAL_IP}        # NAT rewrote every source
    assert all(checksums_ok(p) == (True, True) for p in packets)
