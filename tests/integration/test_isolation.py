"""Tenant isolation (issue 13 item 1, docs/security.md), with real serpensd processes.

Tenant alice runs NAT with traffic; tenant mallory deploys the hostile test NF (native/serpens/testnfs/
hostile.c), whose init, in mallory's runtime, tries every attack of docs/security.md and reports each
outcome to a file. Every attack must be blocked (or, for writes to its own private code, stay inside its
own process), and alice's packets (NAT rewrites, one external port per flow) and state (dump_table of her
NAT table) must be what they were before — also in an instance of alice's started after the attacks, which
maps or dlopens alice's NF afresh. Both loaders: the shared-memory image (serpens) and dlopen (load-startup).
"""

from __future__ import annotations

import copy
import ipaddress
import os
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from harness import config as cfg
from harness.config import repo_path
from harness.rig import rig
from harness.serpens.controller import SerpensError
from harness.serpens.sfc import SfcSpec, nf_path
from harness.traffic import profiles
from tests.integration.packets import read_pcap
from tests.integration.test_serpens import EXTERNAL_IP, instances_of, test_test_nf

pytestmark = pytest.mark.dpdk

ALICE = {"dst": "48.0.0.0/16"}      # the generator's load (profiles.udp_flows)
MALLORY = {"dst": "10.99.0.0/16"}   # no traffic: mallory's attacks run in her instance's init
N_FLOWS = 16

# The symbols a runtime may export: the NF API (native/serpens/nf_api.sym), munmap (dp_guard.sym) and data
# the linker copies into the executable for its shared libraries (copy relocations).
NF_API = {"sp_arg", "sp_create_table", "sp_delete_state", "sp_deploying", "sp_get_state", "sp_log",
          "sp_merge", "sp_pkt_resize", "sp_put_state", "sp_split", "sp_timer", "sp_trigger", "sp_update"}
INTERNAL_PREFIXES = ("sm_", "ldr_", "st_", "rs_", "sc_", "chainer_", "nfm_", "onf_", "sp_starter",
                     "sp_futex", "sp_hop", "sp_chain", "sp_state_set", "sp_batch", "local_proxy", "remote_")


def exported(binary: Path) -> set[str]:
    out = subprocess.run(["nm", "-D", "--defined-only", str(binary)], check=True, capture_output=True,
                         text=True).stdout
    return {line.split()[-1].split("@")[0] for line in out.splitlines() if line.strip()}


@pytest.mark.parametrize("exe", ["serpens/serpens-runtime", "serpens/serpensd"])
def test_runtime_and_serpensd_export_only_the_nf_api(exe: str) -> None:
    binary = repo_path(f"build/native/{exe}")
    if not binary.is_file():
        pytest.skip(f"{binary} is not built")
    names = exported(binary)
    internal = sorted(n for n in names if n.startswith(INTERNAL_PREFIXES))
    assert not internal, f"{exe} exports internals: {internal}"
    assert NF_API <= names, f"{exe} does not export the NF API: missing {sorted(NF_API - names)}"
    own = sorted(n for n in names if n.startswith("sp_") and n not in NF_API)
    assert not own, f"{exe} exports sp_* names that are not in nf.h: {own}"


def nat_mapping(ctl: Any, table: str) -> dict[bytes, tuple[str, int]]:
    out = {}
    for key, value in ctl.dump_table(table).items():
        ip, port = struct.unpack("!4sH", value[:6])
        out[key] = (str(ipaddress.IPv4Address(ip)), port)
    return out


def nat_trial(r: Any, capture: Path) -> tuple[Any, dict[int, int]]:
    """Alice's traffic through NAT: the trial, and each flow's external source port (all rewritten)."""
    res = r.generator.run_trial(profiles.udp_flows(10_000, 64, N_FLOWS), duration=0.4)
    ports: dict[int, int] = {}
    packets = [Ether(p) for p in read_pcap(capture)]
    assert packets
    for pkt in packets:
        assert pkt[IP].src == EXTERNAL_IP, f"a packet of alice left with source {pkt[IP].src}"
        ports.setdefault(pkt[UDP].sport, 0)
        ports[pkt[UDP].sport] += 1
    return res, ports


def runtime_creds(pid: int) -> dict[str, int]:
    """The capability sets and NoNewPrivs of process pid (/proc/<pid>/status), as integers."""
    fields = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs")
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in fields:
            out[key] = int(value.strip(), 16 if key.startswith("Cap") else 10)
    assert set(out) == set(fields), f"/proc/{pid}/status lacks some of {fields}: {out}"
    return out


def read_report(path: Path, timeout_s: float = 20.0) -> list[list[str]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.is_file() and path.read_text().rstrip().endswith("done"):
            break
        time.sleep(0.1)
    text = path.read_text() if path.is_file() else ""
    assert text.rstrip().endswith("done"), f"the hostile NF did not finish its attacks: {text!r}"
    return [line.split(" ", 3) for line in text.splitlines() if line not in ("done",)
            and not line.startswith("start ")]


@pytest.mark.parametrize("design", ["serpens", "load-startup"])
def test_a_hostile_tenant_cannot_touch_another_tenants_state_or_code(dpdk_ready: cfg.Config, tmp_path: Path,
                                                                     design: str) -> None:
    hostile = test_test_nf("hostile")
    capture, report = tmp_path / "rx.pcap", tmp_path / "attacks.txt"
    alice = SfcSpec("alice", ALICE, ["nat"], {"nat": ("nat", {})}, tenant="alice")
    with rig(dpdk_ready, design, sfc=alice, capture=capture, capture_count=64) as r:
        ctl = r.platform.controller
        res0, ports0 = nat_trial(r, capture)
        before = nat_mapping(ctl, "alice:nat/nat_map")
        assert len(before) == N_FLOWS and res0.rx_packets == res0.tx_packets
        errors0 = r.platform.stats()["state"]["api_errors"]

        # mallory cannot put alice's NF in her own chain (its runtimes would attach to alice's tables)
        with pytest.raises(SerpensError, match="names NF 'nat', which belongs to tenant alice: refused"):
            ctl.deploy_sfc("steal", MALLORY, ["nat"], tenant="mallory")
        with pytest.raises(SerpensError, match="'tenant' must be 1..31 characters of .*got \"alice:x\""):
            ctl.deploy_nf("badtenant", str(hostile), {}, tenant="alice:x")
        # her own NF: its init attacks from her runtime
        r.platform.deploy(SfcSpec("mallory", MALLORY, ["hostile"],
                                  {"hostile": (str(hostile), {"report": str(report), "victim": "nat",
                                                              "victim_tenant": "alice"})},
                                  tenant="mallory"))
        attacks = read_report(report)
        stats = r.platform.stats()
        assert all(i["alive"] for i in instances_of(stats, "mallory")), "the hostile NF's instance died"
        # every running runtime (alice's and mallory's): no capability, no new privileges (privs.c)
        creds = {i["pid"]: runtime_creds(i["pid"]) for i in stats["instances"] if i["alive"]}

        # alice after the attacks: her instance, then a new one that loads her NF afresh
        res1, ports1 = nat_trial(r, capture)
        old = [i["instance"] for i in instances_of(stats, "alice")]
        r.platform.start_instance("alice")
        for slot in old:
            r.platform.stop_instance(slot)
        res2, ports2 = nat_trial(r, capture)
        after = nat_mapping(ctl, "alice:nat/nat_map")
        stats = r.platform.stats()

    outcome = {(a[0], a[1]): a[2] for a in attacks}
    assert len(creds) >= 2, creds
    for pid, st in creds.items():
        assert st["CapEff"] == st["CapPrm"] == st["CapInh"] == st["CapBnd"] == st["CapAmb"] == 0, (pid, st)
        assert st["NoNewPrivs"] == 1, (pid, st)
    succeeded = [a for a in attacks if a[2] == "SUCCEEDED"]
    # writes to its own private (dlopen'd, copy-on-write) code stay in its own process: allowed, confined
    confined = {("text", "mprotect-write"), ("text", "proc-self-mem")} if design == "load-startup" else set()
    assert all((a[0], a[1]) in confined for a in succeeded), f"attacks that succeeded: {succeeded}"
    # every attack was tried
    assert outcome[("internal", "sm_set_tenant")] == "blocked"
    assert outcome[("table", "../nat/nat_map")] == "blocked"
    assert ("text", "mprotect-write") in outcome and ("text", "proc-self-mem") in outcome
    # alice's code is not open in mallory's process (a pool process prewarms every deployed SFC's images
    # while it waits; chainer_keep_only closes the other SFCs' before any NF of the start runs)
    assert outcome[("code", "own-fds")] == "blocked" and ("code", "own-fd") not in outcome, attacks
    # alice's state region (tenant_region.h): not in the EAL memory mallory's runtime maps, not mapped in it,
    # no descriptor of it in serpensd, serpensd's mapping not reopenable by her, serpensd's memory (where
    # every region is mapped) neither readable nor traceable: the runtime has no ptrace rights over it
    for attack in ("memzone", "scan", "maps", "fd", "map-files", "proc-mem", "ptrace"):
        assert outcome[("region", attack)] == "blocked", attacks
    scanned = next(a[3] for a in attacks if a[:2] == ["region", "scan"])
    assert int(scanned.split(" MiB")[0].split()[-1]) > 0, f"the scan read nothing: {scanned}"
    # serpensd's descriptors (alice's image memfd among them) cannot even be listed (handover.h: images come
    # by descriptor), and no other runtime (alice's instance, pool processes) can be traced or read
    assert outcome[("memfd", "proc-fd")] == "blocked" and ("memfd", "write") not in outcome, attacks
    for attack in ("ptrace", "proc-mem", "proc-fd"):
        assert outcome[("peer", attack)] == "blocked", attacks
    peers = next(a[3] for a in attacks if a[:2] == ["peer", "ptrace"])
    assert int(peers.split(" of ")[1].split()[0]) >= 1, f"the hostile NF found no other runtime: {peers}"
    if design == "serpens":
        # her own image, handed to her runtime read-only: sealed, whatever descriptor she reopens
        found = int(next(a[3] for a in attacks if a[:2] == ["memfd-own", "found"]))
        assert found >= 1, "the hostile NF holds no descriptor of its own image to attack"
        for attack in ("write", "ftruncate", "mmap-shared-write"):
            assert outcome[("memfd-own", attack)] == "blocked", attacks
        assert outcome[("text", "mprotect-write")] == "blocked"
        assert "not dlopen'd" in next(a[3] for a in attacks if a[:2] == ["file", "self"])   # the image loader
    else:
        assert outcome[("file", "victim")] == outcome[("file", "self")] == "blocked"
        assert outcome[("file", "clear-immutable")] == outcome[("file", "unlink")] == "blocked"
    # the State Manager counted the table attempt and said why; each tenant has its own region
    assert stats["state"]["api_errors"] > errors0
    assert {"alice", "mallory"} <= set(stats["state"]["tenants"])
    # alice: every packet, every flow still its one external port, her table unchanged
    assert res1.rx_packets == res1.tx_packets and res2.rx_packets == res2.tx_packets
    assert set(ports1) <= {p for _, p in before.values()} and set(ports2) <= {p for _, p in before.values()}
    assert after == before


def test_each_tenant_gets_a_region_of_its_own_up_to_the_limit(dpdk_ready: cfg.Config) -> None:
    """A tenant's first NF creates its state region (tenant_region.h): one per tenant, outside the EAL memory,
    each with its own table directory; the tenant beyond SP_MAX_TENANTS (8, the default tenant's among them)
    is refused with the reason, and the tenants before it keep working."""
    conf = copy.deepcopy(dpdk_ready)
    conf["platforms"]["serpens"]["state_region_mb"] = 4   # 8 regions of 4 MiB: little of the hugepages
    hostile = test_test_nf("hostile")
    with rig(conf, "serpens", sfc=SfcSpec.linear("fw")) as r:
        ctl = r.platform.controller
        for i in range(1, 8):
            assert ctl.deploy_nf(f"h{i}", str(hostile), {}, tenant=f"t{i}") == [f"t{i}:h{i}/own"]
        with pytest.raises(SerpensError, match="tenant t8: serpensd holds the state regions of 8 tenants"):
            ctl.deploy_nf("h8", str(hostile), {}, tenant="t8")
        # an existing tenant's next NF goes into its region; the default tenant's SFC still forwards
        assert ctl.deploy_nf("h1b", str(hostile), {}, tenant="t1") == ["t1:h1b/own"]
        res = r.generator.run_trial(profiles.udp_flows(10_000, 64, N_FLOWS), duration=0.3)
        tenants = r.platform.stats()["state"]["tenants"]
    assert res.rx_packets == res.tx_packets > 0
    assert set(tenants) == {"default", *(f"t{i}" for i in range(1, 8))}
    assert all(t["backing"] in ("hugetlb", "memfd") for t in tenants.values())
    # t1's region holds two tables' worth more than t2's (its directory is its own)
    assert tenants["t1"]["used_bytes"] > tenants["t2"]["used_bytes"] > 0


def image_names(pid: int) -> set[str]:
    """The NF images (memfds other than state regions: "memfd:<deployment>") process pid holds open. The
    harness reads them as root with every capability (runtimes are not dumpable: only such a reader can)."""
    names = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = os.readlink(fd)
        except OSError:
            continue   # closed meanwhile
        if link.startswith("/memfd:") and not link.startswith("/memfd:serpens-state-"):
            names.add(link[len("/memfd:"):].split(" ")[0])
    return names


def test_pool_processes_hold_only_their_own_tenants_images(dpdk_ready: cfg.Config) -> None:
    """Images come by descriptor from serpensd (native/serpens/handover.h): a pool process holds only the
    images of its own tenant's SFCs — with its first start, or sent ahead (and prewarmed) when its tenant
    deploys another SFC while it waits — and a process that has served no tenant holds none."""
    conf = copy.deepcopy(dpdk_ready)
    conf["platforms"]["serpens"]["pool"] = 4
    alice = SfcSpec("alice", ALICE, ["nat"], {"nat": ("nat", {})}, tenant="alice")
    with rig(conf, "serpens", sfc=alice) as r:
        p = r.platform
        (first,) = p.instances.values()
        alice_pid = first["pid"]
        p.stop_instance(first["instance"])            # waits again, bound to alice
        p.deploy(SfcSpec("mallory", MALLORY, ["mfw"], {"mfw": ("fw", {})}, tenant="mallory"))
        mallory_pid = next(i["pid"] for i in instances_of(p.stats(), "mallory") if i["alive"])
        # alice's second SFC, deployed without an instance while her process waits: its image is sent to her
        # process only (p.deploy would start an instance, in her process)
        ctl = p.controller
        ctl.deploy_nf("amon", str(nf_path("mon", p.settings["nfs_dir"])), {}, tenant="alice")
        ctl.deploy_sfc("alice2", {"dst": "48.1.0.0/16"}, ["amon"], tenant="alice")
        deadline = time.monotonic() + 5.0             # the waiting process takes it on its doorbell
        while "amon" not in image_names(alice_pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        pool = p.stats()["pool"]["pids"]
        held = {pid: image_names(pid) for pid in pool}
        alice2 = ctl.start_instance("alice2")         # in alice's process: it served her before
    assert alice_pid in pool and mallory_pid in pool and alice_pid != mallory_pid
    assert held[alice_pid] == {"nat", "amon"}, held
    assert held[mallory_pid] == {"mfw"}, held
    fresh = [pid for pid in pool if pid not in (alice_pid, mallory_pid)]
    assert fresh and all(held[pid] == set() for pid in fresh), held
    assert alice2["pooled"] and alice2["pid"] == alice_pid
