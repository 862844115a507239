"""The testbed inventory's schema (strict like the configuration), the pinned versions, the TRex
configuration written from an inventory, and what each role gets built and deployed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.config import REPO_ROOT, ConfigError
from testbed import inventory
from testbed.inventory import InventoryError
from testbed.tasks import build, daemons, harness_config, packages, trex_config

PAPER = REPO_ROOT / "testbed" / "inventory" / "paper.yaml"


def _base() -> dict[str, Any]:
    return {"hosts": {
        "gen": {"address": "198.18.0.10", "roles": ["generator", "trex"], "cores": [0, 1, 2, 3],
                "nics": [{"iface": "p0", "mac": "02:00:00:00:00:01", "pci": "0000:03:00.0", "peer": "gw:p0"},
                         {"iface": "p1", "mac": "02:00:00:00:00:02", "pci": "0000:03:00.1",
                          "peer": "gw:p1"}]},
        "gw": {"address": "198.18.0.11", "roles": ["gateway"], "cores": [2],
               "nics": [{"iface": "p0", "mac": "02:00:00:00:00:11"},
                        {"iface": "p1", "mac": "02:00:00:00:00:12"}]},
    }}


def _error(data: Any) -> str:
    with pytest.raises(InventoryError) as exc:
        inventory.parse(data, "inv.yaml")
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_the_papers_inventory_is_valid_and_has_its_four_servers() -> None:
    inv = inventory.load(PAPER)
    assert list(inv.hosts) == ["generator", "gateway", "worker1", "worker2"]
    assert inv.one("generator").name == "generator"
    assert [h.name for h in inv.with_role("worker")] == ["worker1", "worker2"]
    assert inv.hosts["gateway"].nics[0].pci == "0000:03:00.0"
    assert inv.hosts["worker1"].key_file == "~/.ssh/id_ed25519"   # from defaults


def test_an_unknown_host_key_names_file_host_and_key_with_a_hint() -> None:
    data = _base()
    data["hosts"]["gw"]["adress"] = "x"
    msg = _error(data)
    assert msg.startswith("inv.yaml: host 'gw': unknown key 'adress' (did you mean 'address'?)")


def test_a_wrong_type_says_what_was_expected() -> None:
    data = _base()
    data["hosts"]["gen"]["port"] = "22"
    assert _error(data) == "inv.yaml: host 'gen': key 'port' must be a TCP port 1..65535, got '22'"
    data = _base()
    data["hosts"]["gen"]["sudo"] = 1
    assert "key 'sudo' must be true or false" in _error(data)
    data = _base()
    data["hosts"]["gen"]["hugepages"] = True   # a bool is not a number of pages
    assert "key 'hugepages'" in _error(data)


@pytest.mark.parametrize("key,value,expect", [
    ("roles", ["generatr"], "unknown role 'generatr' (did you mean 'generator'?)"),
    ("roles", [], "key 'roles' must be a non-empty list"),
    ("cores", [-1], "key 'cores' must be a list of CPU numbers"),
    ("install_root", "opt/serpens", "key 'install_root' must be an absolute path"),
    ("install_root", "/", "not / itself"),
    ("port", 70000, "key 'port' must be a TCP port"),
    ("address", "not an address!", "key 'address' must be an IP address or host name"),
    ("packages", ["Bad Name"], "key 'packages' must be a list of Debian package names"),
    ("command_timeout_s", 0, "key 'command_timeout_s' must be a number of seconds"),
])
def test_values_out_of_range_are_one_line_naming_the_key(key: str, value: Any, expect: str) -> None:
    data = _base()
    data["hosts"]["gw"][key] = value
    msg = _error(data)
    assert msg.startswith("inv.yaml: host 'gw': ") and expect in msg


def test_a_missing_required_key_is_named() -> None:
    data = _base()
    del data["hosts"]["gw"]["address"]
    assert _error(data) == "inv.yaml: host 'gw': missing key 'address' (an IP address or host name)"


@pytest.mark.parametrize("nic,expect", [
    ({"iface": "p0", "mac": "zz"}, "nics[0]'.mac must be a MAC address"),
    ({"iface": "p0"}, "nics[0]': missing key 'mac'"),
    ({"iface": "p0", "mac": "02:00:00:00:00:01", "pci": "3:0.0"}, "nics[0]'.pci must be a PCI address"),
    ({"iface": "p0", "mac": "02:00:00:00:00:01", "speed": 10}, "nics[0]: unknown key 'speed'"),
    ({"iface": "an-interface-name-too-long", "mac": "02:00:00:00:00:01"}, "nics[0]'.iface must be"),
    ({"iface": "p0", "mac": "02:00:00:00:00:01", "peer": "gen:p7"}, "names no NIC of the inventory"),
])
def test_nics_are_checked(nic: dict[str, Any], expect: str) -> None:
    data = _base()
    data["hosts"]["gw"]["nics"] = [nic]
    data["hosts"]["gen"]["nics"] = [{k: v for k, v in n.items() if k != "peer"}
                                    for n in data["hosts"]["gen"]["nics"]]
    msg = _error(data)
    assert "host 'gw'" in msg and expect in msg, msg


def test_top_level_and_defaults_are_strict_too() -> None:
    assert "unknown key 'host' (did you mean 'hosts'?)" in _error({"host": {}})
    assert "key 'hosts' must be a non-empty mapping" in _error({"hosts": {}})
    assert "defaults: unknown key 'usr'" in _error({**_base(), "defaults": {"usr": "root"}})
    assert "an inventory is a mapping" in _error(["a", "list"])
    data = _base()
    data["hosts"]["gw"]["address"] = "198.18.0.10"
    assert "is host 'gen' already" in _error(data)


def test_a_file_that_is_not_yaml_is_one_line(tmp_path: Path) -> None:
    p = tmp_path / "inv.yaml"
    p.write_text("hosts: [unclosed")
    with pytest.raises(ConfigError) as exc:
        inventory.load(p)
    assert str(p) in str(exc.value) and "not valid YAML" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        inventory.load(tmp_path / "missing.yaml")
    assert "cannot read inventory" in str(exc.value)


def test_versions_are_pinned_once_and_docs_trex_names_the_same_release() -> None:
    v = inventory.versions()
    assert set(v) == {"dpdk", "trex", "redis"}
    text = (REPO_ROOT / "docs" / "trex.md").read_text()
    pinned = re.search(r"\*\*TRex (v[0-9.]+)\*\*", text)
    assert pinned is not None and pinned.group(1) == v["trex"]


def test_trex_cfg_follows_trex_platform_config_format() -> None:
    inv = inventory.parse(_base(), "inv.yaml")
    text = trex_config.render(inv, inv.hosts["gen"])
    cfg = yaml.safe_load(text)
    # TRex reads a list with one mapping (version 2): interfaces, port_info, platform (TRex's
    # trex_cfg.yaml as its manual and dpdk_setup_ports.py write it)
    assert isinstance(cfg, list) and len(cfg) == 1
    c = cfg[0]
    assert c["version"] == 2
    assert c["interfaces"] == ["03:00.0", "03:00.1"]
    assert c["port_info"] == [{"src_mac": "02:00:00:00:00:01", "dest_mac": "02:00:00:00:00:11"},
                              {"src_mac": "02:00:00:00:00:02", "dest_mac": "02:00:00:00:00:12"}]
    assert c["platform"] == {"master_thread_id": 0, "latency_thread_id": 1,
                             "dual_if": [{"socket": 0, "threads": [2, 3]}]}
    assert c["c"] == 2


def test_trex_cfg_pads_odd_ports_with_dummy_and_uses_vdev_for_a_nic_without_pci() -> None:
    data = _base()
    data["hosts"]["gen"]["nics"] = [{"iface": "dp0", "mac": "02:00:00:00:00:01", "peer": "gw:p0"}]
    inv = inventory.parse(data, "inv.yaml")
    c = yaml.safe_load(trex_config.render(inv, inv.hosts["gen"]))[0]
    assert c["interfaces"] == ["--vdev=net_af_packet0,iface=dp0", "dummy"]


def test_trex_cfg_refuses_what_trex_cannot_run_with() -> None:
    data = _base()
    data["hosts"]["gen"]["cores"] = [0, 1]
    inv = inventory.parse(data, "inv.yaml")
    with pytest.raises(InventoryError, match="at least 3 cores"):
        trex_config.config(inv, inv.hosts["gen"])
    data = _base()
    for n in data["hosts"]["gen"]["nics"]:
        n.pop("peer")
    inv = inventory.parse(data, "inv.yaml")
    with pytest.raises(InventoryError, match="NIC p0 has no peer"):
        trex_config.config(inv, inv.hosts["gen"])


def test_a_nic_pair_is_found_from_either_side() -> None:
    inv = inventory.parse(_base(), "inv.yaml")
    gen, gw = inv.hosts["gen"], inv.hosts["gw"]
    assert [(a.iface, b.iface) for a, b in inv.links(gen, gw)] == [("p0", "p0"), ("p1", "p1")]
    assert [(a.iface, b.iface) for a, b in inv.links(gw, gen)] == [("p0", "p0"), ("p1", "p1")]


def test_roles_decide_packages_targets_daemons_and_cores() -> None:
    inv = inventory.load(PAPER)
    gen, gw, w1 = inv.hosts["generator"], inv.hosts["gateway"], inv.hosts["worker1"]
    assert build.targets(gen) == ["generator/serpens-gen"]
    assert "wire/serpens-wire" in build.targets(gw) and "serpens/serpensd" in build.targets(gw)
    assert "redis-server" in packages.wanted(w1) and "redis-server" not in packages.wanted(gw)
    assert [d.name for d in daemons.daemons(w1)] == ["redis-server", "serpensd"]
    assert [d.name for d in daemons.daemons(gen)] == ["trex"]
    conf = yaml.safe_load(harness_config.content(gen))
    assert conf["cores"] == {"generator": 2} and conf["machine"]["runtime_dir"] == "/opt/serpens/run"
    assert yaml.safe_load(harness_config.content(gw))["cores"] == {"platform": 2}


def test_a_daemons_digest_changes_with_its_configuration() -> None:
    inv = inventory.load(PAPER)
    d = daemons._redis(inv.hosts["worker1"])
    other = daemons.Daemon(d.name, d.command, (d.config or "") + "maxmemory 1gb\n", d.cwd, d.ready)
    assert d.digest() == daemons._redis(inv.hosts["worker1"]).digest()
    assert d.digest() != other.digest()
