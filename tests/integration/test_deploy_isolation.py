"""Deploy-mode init outside serpensd (issue 13, docs/security.md "Deploy-mode init"), with real serpensd.

An NF's init runs once in deploy mode at deploy_nf. It used to run inside serpensd (root, every capability,
every tenant's state region mapped). Now it runs in a child of the tenant's deployer (native/serpens/
deployer.h): a DPDK secondary that maps its tenant's region only, the child confined (every file system
read-only in a mount namespace of its own, uid nobody with one capability, CAP_DAC_READ_SEARCH). Tenant
alice runs NAT with traffic; tenant mallory deploys the test NF native/serpens/testnfs/hostile_init.c,
whose deploy-mode init attacks serpensd and alice and reports each outcome into its own table. Every attack
must be blocked, alice's packets and state unchanged, serpensd alive, and the process that ran the init gone
and not serpensd. Both loaders (the image: serpens; dlopen:
load-startup).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness import config as cfg
from harness.rig import rig
from harness.serpens.controller import SerpensError
from harness.serpens.sfc import SfcSpec
from tests.integration.test_isolation import N_FLOWS, nat_mapping, nat_trial
from tests.integration.test_serpens import test_test_nf

pytestmark = pytest.mark.dpdk

ALICE = {"dst": "48.0.0.0/16"}      # the generator's load (profiles.udp_flows)
NOBODY = 65534                      # deployer.h DP_UID


def attacks_of(ctl: Any, table: str) -> dict[tuple[str, str], tuple[str, str]]:
    """hostile_init's report: (attack, what) -> (blocked|SUCCEEDED, detail), in the order tried."""
    rows = sorted(ctl.dump_table(table).items(), key=lambda kv: int.from_bytes(kv[0], "little"))
    out = {}
    for _, value in rows:
        attack, what, verdict, detail = (value.split(b"\0", 1)[0].decode() + " ").split(" ", 3)
        out[(attack, what)] = (verdict, detail.strip())
    assert ("done", "-") in out, f"the hostile init did not finish its attacks: {out}"
    return out


def maps_of(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def named(comm: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "comm").read_text().strip() == comm:
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


def deploy_children() -> list[int]:
    """Processes named as a deployer's child (deployer.c: PR_SET_NAME "serpens-deploy")."""
    return named("serpens-deploy")


@pytest.mark.parametrize("design", ["serpens", "load-startup"])
def test_a_hostile_deploy_mode_init_cannot_touch_serpensd_or_another_tenant(
        dpdk_ready: cfg.Config, tmp_path: Path, design: str) -> None:
    hostile = test_test_nf("hostile_init")
    capture = tmp_path / "rx.pcap"
    outside = tmp_path / "pwned"                    # root's directory, outside the run directory
    alice = SfcSpec("alice", ALICE, ["nat"], {"nat": ("nat", {})}, tenant="alice")
    with rig(dpdk_ready, design, sfc=alice, capture=capture, capture_count=64) as r:
        ctl = r.platform.controller
        serpensd = r.platform.proc.pid
        res0, ports0 = nat_trial(r, capture)
        before = nat_mapping(ctl, "alice:nat/nat_map")
        assert len(before) == N_FLOWS and res0.rx_packets == res0.tx_packets

        tables = ctl.deploy_nf("evil", str(hostile), {"victim": "nat", "victim_tenant": "alice",
                                                     "serpensd_pid": str(serpensd), "outside": str(outside)},
                               tenant="mallory")
        assert tables == ["mallory:evil/report"]
        attacks = attacks_of(ctl, "mallory:evil/report")
        serpensd_maps = maps_of(serpensd)
        alive = r.platform.proc.poll() is None
        children = deploy_children()
        persisting = named("hostile-persist")   # the init's own child, which must not outlive it

        # alice after the attacks: her running instance, then a new one
        res1, ports1 = nat_trial(r, capture)
        old = [i["instance"] for i in r.platform.stats()["instances"] if i["sfc_name"] == "alice"]
        r.platform.start_instance("alice")
        for slot in old:
            r.platform.stop_instance(slot)
        res2, ports2 = nat_trial(r, capture)
        after = nat_mapping(ctl, "alice:nat/nat_map")

    succeeded = {k: v for k, v in attacks.items() if v[0] == "SUCCEEDED"}
    assert not succeeded, f"attacks from deploy-mode init that succeeded: {succeeded}"
    # the init ran in another process, as nobody, which is gone; serpensd never loaded the NF
    # (its pid is 1: the first process of a PID namespace of its own)
    assert int(attacks[("whoami", "pid")][1]) == 1 and int(attacks[("whoami", "uid")][1]) == NOBODY
    assert not children, f"deploy children left running: {children}"
    assert ("persist", "fork") in attacks and attacks[("persist", "fork")][1].startswith("forked"), attacks
    assert not persisting, f"a process the hostile init forked outlived its deployment: {persisting}"
    assert "evil.so" not in serpensd_maps and "hostile_init" not in serpensd_maps
    assert alive, "serpensd died"
    # each attack was tried and said why it failed
    assert attacks[("region", "count")] == ("blocked", "1 state regions readable")
    assert sum(1 for (a, _), v in attacks.items() if a == "region" and v[1].startswith("mapped")) == 1
    for who in ("serpensd", "parent"):
        for attack in ("proc-mem", "proc-fd", "proc-map-files"):
            assert (attack, who) in attacks, attacks
    assert attacks[("signal", "serpensd")][0] == "blocked"
    assert attacks[("file", str(outside))][0] == "blocked" and not outside.exists()
    assert attacks[("file", "/tmp/serpens-hostile-init")][0] == "blocked"
    assert not Path("/tmp/serpens-hostile-init").exists()
    victim_copy = [k for k in attacks if k[0] == "file" and k[1].endswith("/nat.so")]
    assert len(victim_copy) == 1, attacks
    assert attacks[("file", "/pwned")][0] == attacks[victim_copy[0]][0] == "blocked"
    assert attacks[("privilege", "setuid0")][0] == attacks[("privilege", "chroot")][0] == "blocked"
    # alice: every packet, every flow still its one external port, her table unchanged
    assert res1.rx_packets == res1.tx_packets and res2.rx_packets == res2.tx_packets
    assert set(ports1) <= {p for _, p in before.values()} and set(ports2) <= {p for _, p in before.values()}
    assert after == before


def test_deploy_errors_still_name_the_cause(dpdk_ready: cfg.Config) -> None:
    """What fails in the deployer's child reaches the deploy_nf reply as before: an argument typo, an init
    that fails (with the State Manager's reason), an object that is not an NF; serpensd stays up and the
    next deploy of the same tenant works (its deployer survives its children's failures)."""
    baddelete, badflags = test_test_nf("baddelete"), test_test_nf("badflags")
    with rig(dpdk_ready, "load-startup", sfc=SfcSpec.linear("fw")) as r:
        ctl = r.platform.controller
        with pytest.raises(SerpensError, match="unknown argument 'blaklist'; the NF takes"):
            ctl.deploy_nf("fw2", str(test_test_nf("fw")), {"blaklist": "10.0.0.1"}, tenant="bob")
        with pytest.raises(SerpensError, match="init failed"):
            ctl.deploy_nf("bf", str(badflags), {}, tenant="bob")
        with pytest.raises(SerpensError, match="is not an NF"):
            ctl.deploy_nf("notnf", "/usr/lib/x86_64-linux-gnu/libm.so.6", {}, tenant="bob")
        assert ctl.deploy_nf("bd", str(baddelete), {}, tenant="bob")
        assert r.platform.proc.poll() is None
        assert not deploy_children()
