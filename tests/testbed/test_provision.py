"""Provisioning namespace hosts through real SSH: idempotence, one failing host among good ones, SFTP put/get,
bad input reported as one line per host, and repair after an interrupted provision."""

from __future__ import annotations

import hashlib
import re
import shlex
from pathlib import Path
from typing import Any

from testbed import inventory
from testbed.local.hosts import Hosts
from testbed.remote import Remote
from testbed.tasks import source
from tests.testbed.conftest import edited_inventory, harness

TASKS = ("ssh", "dirs", "packages", "hugepages", "source", "build", "python", "harness-config")


def _rows(output: str) -> list[tuple[str, str, str]]:
    """(host, task, status) of every task line."""
    out = []
    for line in output.splitlines():
        m = re.match(r"^(\S+)\s+(\S+)\s+(unchanged|changed|failed|skipped)\b", line)
        if m:
            out.append((m.group(1), m.group(2), m.group(3)))
    return out


def test_first_provision_applies_and_a_second_changes_nothing(ns_hosts: Hosts,
                                                             provisioned: dict[str, Any]) -> None:
    first = provisioned["first"]
    assert first.exit_code == 0, first.output
    rows = _rows(first.output)
    for host in ("h1", "h2", "h3"):
        done = {task: status for h, task, status in rows if h == host}
        assert set(TASKS) <= set(done), (host, done)
        assert done["dirs"] == "changed" and done["source"] == "changed", first.output
    assert {h for h, task, _ in rows if task == "nics"} == {"h1", "h2", "h3"}
    second = harness("testbed", "provision", "-i", str(ns_hosts.inventory))
    assert second.exit_code == 0, second.output
    rows = _rows(second.output)
    assert len(rows) == len(_rows(first.output))
    assert all(status == "unchanged" for _, _, status in rows), second.output
    assert "0 changed" in second.output and "0 failed" in second.output


def test_a_host_with_a_broken_package_step_is_named_and_the_others_finish(ns_hosts: Hosts,
                                                                         provisioned: dict[str, Any],
                                                                         tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        data["hosts"]["h3"]["packages"] = ["serpens-no-such-package"]

    inv = edited_inventory(ns_hosts.inventory, tmp_path / "broken.yaml", edit)
    result = harness("testbed", "provision", "-i", str(inv))
    assert result.exit_code == 1, result.output
    rows = _rows(result.output)
    failed = [(h, t) for h, t, s in rows if s == "failed"]
    assert failed == [("h3", "packages")], result.output
    line = next(ln for ln in result.output.splitlines() if ln.startswith("h3") and "failed" in ln)
    assert "serpens-no-such-package" in line
    assert all(s == "unchanged" for h, _, s in rows if h in ("h1", "h2")), result.output
    skipped = next(ln for ln in result.output.splitlines() if ln.startswith("h3") and "skipped" in ln)
    assert "source" in skipped and "build" in skipped   # after a failed task, one line lists the rest
    assert "FAILED hosts: h3" in result.output
    assert "Traceback" not in result.output


def test_put_and_get_go_through_sftp(ns_hosts: Hosts, provisioned: dict[str, Any]) -> None:
    inv = inventory.load(ns_hosts.inventory)
    host = inv.hosts["h2"]
    data = bytes(range(256)) * 1000
    path = host.path("run", "put-get.bin")
    with Remote(host) as r:
        r.put_bytes(data, path)
        assert r.get_bytes(path) == data
        # it is really on the host, at that path, and the command ran in the host's namespace
        assert r.out(f"sha256sum {shlex.quote(path)}").split()[0] == hashlib.sha256(data).hexdigest()
        assert host.address in r.out("ip -4 -o addr show dev eth0")
        r.run(f"rm -f {shlex.quote(path)}")


def test_bad_hosts_each_get_one_line_and_the_good_host_finishes(ns_hosts: Hosts, provisioned: dict[str, Any],
                                                                 tmp_path: Path) -> None:
    other_key = tmp_path / "other_key"
    import subprocess
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True)
    unused = ns_hosts.addresses["h3"].rsplit(".", 1)[0] + ".250"   # in the run's /24, nobody there

    def edit(data: dict[str, Any]) -> None:
        hosts = data["hosts"]
        data["defaults"]["connect_timeout_s"] = 2
        h3 = {k: v for k, v in hosts["h3"].items() if k != "nics"}   # its NIC is cabled to h2's dp1
        hosts["unreach"] = {**h3, "address": unused}
        hosts["wrongkey"] = {**h3, "port": 22, "key_file": str(other_key),
                             "address": ns_hosts.addresses["h3"]}
        hosts["nodns"] = {**h3, "address": "no-such-host.invalid"}
        hosts["h2"]["nics"] = hosts["h2"]["nics"][:1]
        hosts["h2"]["nics"][0]["iface"] = "dp9"
        hosts["h2"]["nics"][0].pop("peer")
        hosts["h1"]["nics"][0].pop("peer")
        del hosts["h3"]

    inv = edited_inventory(ns_hosts.inventory, tmp_path / "bad.yaml", edit)
    result = harness("testbed", "provision", "-i", str(inv))
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    failed = {ln.split()[0]: ln for ln in result.output.splitlines() if re.match(r"^\S+\s+\S+\s+failed", ln)}
    assert set(failed) == {"unreach", "wrongkey", "nodns", "h2"}, result.output
    assert "cannot connect" in failed["unreach"] and unused in failed["unreach"]
    assert "authentication" in failed["wrongkey"]
    assert "resolve" in failed["nodns"]
    assert "NIC dp9 does not exist" in failed["h2"]
    assert all(s == "unchanged" for h, _, s in _rows(result.output) if h == "h1"), result.output


def test_an_interrupted_source_copy_is_repaired_by_the_next_run(ns_hosts: Hosts,
                                                                provisioned: dict[str, Any]) -> None:
    inv = inventory.load(ns_hosts.inventory)
    host = inv.hosts["h3"]
    h = source.build_tree().hash
    src = host.path("src")
    with Remote(host) as r:
        # what a provision killed mid-way leaves: half a download, half an unpacked tree, no current
        r.run(f"cd {src} && head -c 1000 /dev/urandom > .incoming-{h}.tar.gz.part "
              f"&& mkdir -p .tmp-{h}/native && rm -f current")
    result = harness("testbed", "provision", "-i", str(ns_hosts.inventory), "--hosts", "h3")
    assert result.exit_code == 0, result.output
    assert ("h3", "source", "changed") in _rows(result.output)
    with Remote(host) as r:
        assert r.out(f"ls -A {src}").split() == sorted([h, "current"])
        assert r.out(f"cat {src}/current/{source.HASH_FILE}") == h


def test_preflight_runs_the_doctor_on_every_host_into_one_table(ns_hosts: Hosts,
                                                                provisioned: dict[str, Any]) -> None:
    result = harness("testbed", "preflight", "-i", str(ns_hosts.inventory))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["check", "h1", "h2", "h3"]
    hugepages = next(ln for ln in lines if ln.startswith("hugepages reserved"))
    assert hugepages.split()[-3:] == ["ok", "ok", "ok"]
    # each host's harness reads its own harness.yaml: its run directory is under its install root
    run_dir = next(ln for ln in lines[1:] if ln.startswith("runtime dir"))
    assert run_dir.split()[-3:] == ["ok", "ok", "ok"]
    assert "all ready" in lines[-1]


def test_an_interrupted_build_is_finished_by_the_next_run(ns_hosts: Hosts,
                                                          provisioned: dict[str, Any]) -> None:
    inv = inventory.load(ns_hosts.inventory)
    host = inv.hosts["h1"]
    t = source.build_tree()
    entry = f"{host.build_cache}/{t.build_hash}"
    with Remote(host) as r:
        # killed after ninja, before its stamp and the tree's link: neither may pass for done
        link = host.path("src", t.hash, "build", "native")
        r.run(f"rm -f {entry}/build/.stamp-generator_serpens-gen {link}")
    result = harness("testbed", "provision", "-i", str(ns_hosts.inventory), "--hosts", "h1")
    assert result.exit_code == 0, result.output
    assert ("h1", "build", "changed") in _rows(result.output)
    again = harness("testbed", "provision", "-i", str(ns_hosts.inventory), "--hosts", "h1")
    assert all(s == "unchanged" for _, _, s in _rows(again.output)), again.output
