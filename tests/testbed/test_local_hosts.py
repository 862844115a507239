"""The namespace test hosts themselves: addresses only from 198.18.0.0/15, each sshd listening only on its own
address, `local down` removing everything, and a crashed owner's hosts reclaimed by name."""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

from testbed.local import hosts as local_hosts
from testbed.local.hosts import Hosts
from tests.testbed.conftest import harness


def _ours(run_id: str) -> list[str]:
    ns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return [w for w in (ns + links).split() if w.startswith(f"sptb{run_id}")]


def test_each_host_has_a_benchmarking_address_and_its_sshd_listens_only_there(ns_hosts: Hosts) -> None:
    bench = ipaddress.ip_network("198.18.0.0/15")
    for name, addr in ns_hosts.addresses.items():
        assert ipaddress.ip_address(addr) in bench
        listening = subprocess.run(ns_hosts.ns_exec(name, "ss", "-Hltn"), capture_output=True, text=True,
                                   check=True).stdout.split("\n")
        local = sorted(line.split()[3] for line in listening if line.strip())
        assert local == [f"{addr}:22"], (name, local)
        v4 = subprocess.run(ns_hosts.ns_exec(name, "ip", "-4", "-o", "addr", "show"), capture_output=True,
                            text=True, check=True).stdout
        for word in v4.split():
            if "/" in word and word[0].isdigit():
                ip = ipaddress.ip_interface(word).ip
                assert ip.is_loopback or ip in bench, (name, word)


def test_local_up_and_down_leave_nothing_behind(tmp_path: Path) -> None:
    d = tmp_path / "hosts"
    up = harness("testbed", "local", "up", "-n", "2", "--dir", str(d))
    assert up.exit_code == 0, up.output
    inv = (d / "inventory.yaml").read_text()
    run_id = next(w for w in up.output.split() if w.startswith("sptb"))[4:10]
    assert _ours(run_id) and "198.18." in inv
    down = harness("testbed", "local", "down", "--dir", str(d))
    assert down.exit_code == 0 and "removed" in down.output
    assert _ours(run_id) == []
    assert not (d / "id_ed25519").exists() and not (d / "hosts").exists()
    again = harness("testbed", "local", "down", "--dir", str(d))
    assert again.exit_code == 0 and "nothing to remove" in again.output


def test_hosts_whose_owner_died_are_reclaimed(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    made = local_hosts.create(tmp_path / "crashed", local_hosts.default_spec(1), owner_pid=gone.pid)
    assert _ours(made.id)
    assert made.id in local_hosts.reclaim()
    assert _ours(made.id) == []
    assert not (local_hosts.REGISTRY / f"{made.id}.json").exists()
