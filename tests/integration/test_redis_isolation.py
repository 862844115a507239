"""One tenant's runtimes cannot reach another tenant's state in Redis (issue 13, docs/security.md "State in
a remote store"), with real serpensd processes and a real redis-server.

Tenant alice runs NAT on a remote-state design (every table in Redis) with traffic; tenant mallory deploys
the hostile test NF (native/serpens/testnfs/hostile_redis.c), whose init, in mallory's runtime, learns
where Redis is, looks for the admin credential, and tries to read and write alice's keys, list every key and
widen its own ACL user: with no credential, as Redis's default user, as alice's user with a guessed
password, and on its runtime's own connection (authenticated as mallory). Every attempt must be refused,
its controls (PING, a key of mallory's own) must work, and alice's keys, table and packets must be what
they were.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from harness import config as cfg
from harness.redis_server import ADMIN_USER
from harness.rig import rig
from harness.serpens.controller import SerpensError
from harness.serpens.sfc import SfcSpec
from tests.integration.test_isolation import ALICE, MALLORY, N_FLOWS, nat_mapping, nat_trial, read_report
from tests.integration.test_serpens import instances_of, test_test_nf

pytestmark = pytest.mark.dpdk

ATTACKS = ("get-meta", "set-meta", "set-new", "keys", "scan", "acl-setuser")


def admin_client(platform: object) -> redis.Redis:
    store = platform.redis   # type: ignore[attr-defined]
    assert store is not None and store.admin is not None, "the remote-state design's Redis has no ACL"
    user, _, password = store.admin.partition(":")
    host, _, port = store.address.rpartition(":")
    return redis.Redis(host=host, port=int(port), username=user, password=password, socket_timeout=5)


@pytest.mark.parametrize("design", ["fission-state", "fission"])
def test_a_hostile_tenant_cannot_reach_another_tenants_state_in_redis(dpdk_ready: cfg.Config, tmp_path: Path,
                                                                      design: str) -> None:
    hostile = test_test_nf("hostile_redis")
    capture, report = tmp_path / "rx.pcap", tmp_path / "attacks.txt"
    alice = SfcSpec("alice", ALICE, ["nat"], {"nat": ("nat", {})}, tenant="alice")
    meta = b"alice:nat/nat_map#meta"
    with rig(dpdk_ready, design, sfc=alice, capture=capture, capture_count=64) as r:
        ctl = r.platform.controller
        admin = admin_client(r.platform)
        res0, _ = nat_trial(r, capture)
        before = nat_mapping(ctl, "alice:nat/nat_map")
        assert len(before) == N_FLOWS and res0.rx_packets == res0.tx_packets
        alice_keys = sorted(admin.scan_iter(match="alice:*"))
        alice_values = {k: admin.dump(k) for k in alice_keys}
        assert meta in alice_keys, alice_keys
        # nobody gets in without a credential: the default user may only PING
        anon = redis.Redis(host=admin.connection_pool.connection_kwargs["host"],
                           port=admin.connection_pool.connection_kwargs["port"], socket_timeout=5)
        assert anon.ping()
        with pytest.raises(redis.exceptions.NoPermissionError):
            anon.get(meta)

        r.platform.deploy(SfcSpec("mallory", MALLORY, ["hostile_redis"],
                                  {"hostile_redis": (str(hostile), {
                                      "report": str(report), "victim": "nat", "victim_tenant": "alice",
                                      "table": "nat_map", "own_key": "mallory:hostile_redis/own#meta",
                                      "own_user": "tenant-mallory"})},
                                  tenant="mallory"))
        attacks = read_report(report)
        stats = r.platform.stats()
        assert all(i["alive"] for i in instances_of(stats, "mallory")), "the hostile NF's instance died"

        res1, ports1 = nat_trial(r, capture)
        after = nat_mapping(ctl, "alice:nat/nat_map")
        alice_after = {k: admin.dump(k) for k in sorted(admin.scan_iter(match="alice:*"))}
        every_key = list(admin.scan_iter(match="*"))
        users = {u: admin.acl_getuser(u) for u in admin.acl_users()}

    outcome = {(a[0], a[1]): (a[2], a[3] if len(a) > 3 else "") for a in attacks}
    # it found Redis, reached it, and its runtime's own connection works as mallory: a refusal below is the
    # ACL's
    assert outcome[("learn", "cmdline")][0] == "SUCCEEDED", attacks
    assert outcome[("control", "ping")][0] == "SUCCEEDED", attacks
    assert outcome[("control", "own-key")][0] == "SUCCEEDED", attacks
    # the admin credential is nowhere it can read
    for where in ("cmdline", "environ-serpensd", "environ-self"):
        assert outcome[("admin", where)][0] == "blocked", attacks
    # no credential, the default user, a guessed password of alice's user, its own tenant's user: all refused
    assert outcome[("auth", "victim-guess")][0] == "blocked", attacks
    assert "WRONGPASS" in outcome[("auth", "victim-guess")][1], attacks
    for who in ("nocred", "default", "guess", "own"):
        for what in ATTACKS:
            got, reply = outcome[(who, what)]
            assert got == "blocked" and reply.startswith("-NOPERM"), (who, what, reply, attacks)
    # alice's keys, table and packets are what they were; no key of hers was made — not even by serpensd
    # (admin), whose split of global|write tables for mallory's instance slot deals out only mallory's
    # tables (remote_manager.c: a slot's sub-states "<table>@<slot>:" are of its own tenant's tables)
    assert {k: alice_after.get(k) for k in alice_values} == alice_values
    assert set(alice_after) == set(alice_values), set(alice_after) - set(alice_values)
    assert b"alice:stolen" not in every_key
    assert after == before
    assert res1.rx_packets == res1.tx_packets
    assert set(ports1) <= {p for _, p in before.values()}
    # every key carries its tenant's prefix, and each tenant's user reaches only that prefix
    assert all(k.split(b":", 1)[0] in (b"alice", b"mallory") for k in every_key), every_key
    for tenant in ("alice", "mallory"):
        u = users[f"tenant-{tenant}"]
        assert u["keys"] == [f"~{tenant}:*"] or u["keys"] == f"~{tenant}:*", u
    assert set(users) == {"default", ADMIN_USER, "tenant-alice", "tenant-mallory"}, users


def test_a_runtime_whose_redis_user_is_gone_fails_its_start_with_the_reason(dpdk_ready: cfg.Config) -> None:
    """Runtimes AUTH as their tenant before anything else (remote_conn.c): with the tenant's user removed
    from Redis (which also drops its connections) the next start fails, and says why."""
    alice = SfcSpec("alice", ALICE, ["fw"], {"fw": ("fw", {})}, tenant="alice")
    with rig(dpdk_ready, "fission-state", sfc=alice) as r:
        admin = admin_client(r.platform)
        assert admin.acl_getuser("tenant-alice") is not None
        assert admin.acl_deluser("tenant-alice") == 1
        with pytest.raises(SerpensError, match=r"NF fw: init failed .*cannot authenticate as tenant-alice: "
                                               r"WRONGPASS"):
            r.platform.start_instance("alice")
