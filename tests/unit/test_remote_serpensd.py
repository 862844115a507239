"""serpensd on a testbed host (testbed/remote_serpensd.py) without SSH: the remote controller's request and
error mapping over a stand-in for the SSH connection, and the command line moved to the host's tree. The
real thing over SSH: tests/testbed/test_run_figure15.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness import config as cfg
from harness.config import REPO_ROOT
from harness.native import RunDir
from harness.serpens.controller import SerpensConnectionError, SerpensError
from harness.serpens.sfc import SfcSpec
from testbed import inventory
from testbed.remote_serpensd import INLINE_MAX, RemoteController, RemoteServerd

HOST = inventory.parse({"hosts": {"gw": {"address": "198.18.0.10", "roles": ["gateway"],
                                         "install_root": "/opt/sp", "cores": [3]}}}, "inv.yaml").hosts["gw"]


class Link:
    """What RemoteController uses of testbed.remote.Remote: run (exit code, stdout, stderr) and put_bytes."""

    def __init__(self, code: int = 0, out: str = '{"ok":true}\n', err: str = "") -> None:
        self.host = HOST
        self.answer = (code, out, err)
        self.commands: list[str] = []
        self.files: dict[str, bytes] = {}

    def run(self, cmd: str, **kw: Any) -> tuple[int, str, str]:
        self.commands.append(cmd)
        return self.answer

    def put_bytes(self, data: bytes, path: str) -> None:
        self.files[path] = data


def test_a_request_is_one_forwarder_run_and_its_reply_is_parsed() -> None:
    link = Link(out='{"ok":true,"sfc":7}\n')
    ctl = RemoteController(link, "/opt/sp/run/s.sock", "/opt/sp/src/current")  # type: ignore[arg-type]
    assert ctl.deploy_sfc("web", {}, ["fw"]) == 7
    (cmd,) = link.commands
    assert "/opt/sp/run/s.sock" in cmd and '"cmd":"deploy_sfc"' in cmd


def test_deploy_nf_names_the_object_in_the_hosts_tree() -> None:
    link = Link(out='{"ok":true,"tables":["fw/rules"]}\n')
    ctl = RemoteController(link, "/s.sock", "/opt/sp/src/current")  # type: ignore[arg-type]
    ctl.deploy_nf("fw", f"{REPO_ROOT}/build/native/nfs/fw.so")
    assert "/opt/sp/src/current/build/native/nfs/fw.so" in link.commands[0]
    assert str(REPO_ROOT) not in link.commands[0]


def test_a_long_request_goes_as_a_file() -> None:
    link = Link(out='{"ok":true,"nfree":5}\n')
    ctl = RemoteController(link, "/s.sock", "/t")  # type: ignore[arg-type]
    ctl.share_import("nat/nat_pool", "00000000", list(range(INLINE_MAX // 4)), replace=True)
    (path, data), = link.files.items()
    assert json.loads(data)["cmd"] == "share_import"
    assert f"@{path}" in link.commands[0] and len(link.commands[0]) < 2000


@pytest.mark.parametrize(("code", "says"), [(2, "serpensd is not running"), (3, "closed its control socket"),
                                            (4, "did not answer"), (1, "forwarder on gw failed")])
def test_forwarder_failures_are_connection_errors(code: int, says: str) -> None:
    ctl = RemoteController(Link(code=code, out="", err="No such file"), "/s.sock", "/t")  # type: ignore[arg-type]
    with pytest.raises(SerpensConnectionError, match=says):
        ctl.stats()


def test_a_refusal_is_serpensds_own_message() -> None:
    ctl = RemoteController(Link(out='{"ok":false,"error":"no such SFC"}\n'), "/s.sock", "/t")  # type: ignore[arg-type]
    with pytest.raises(SerpensError, match="no such SFC") as err:
        ctl.start_instance("web")
    assert not isinstance(err.value, SerpensConnectionError)


def test_the_command_line_moves_to_the_hosts_tree_ports_and_files() -> None:
    conf = cfg.load(quick=True)
    run_dir = RunDir(conf, "unit-remote")
    try:
        s = RemoteServerd(conf, run_dir, Link(), 0, 3, ["net_af_packet0,iface=eth1"],  # type: ignore[arg-type]
                          ["--link", "gateway"], "serpens", [SfcSpec.linear("fw")], pool=1)
        cmd = s.command()
    finally:
        run_dir.remove()
    assert cmd[0] == "/opt/sp/src/current/build/native/serpens/serpensd"
    assert cmd[cmd.index("-l") + 1] == "3" and cmd[cmd.index("--vdev") + 1] == "net_af_packet0,iface=eth1"
    assert cmd.count("--vdev") == 1 and cmd[cmd.index("--file-prefix") + 1] == s.prefix
    assert cmd[cmd.index("--control") + 1].startswith("/opt/sp/run/")
    assert cmd[cmd.index("--nf-dir") + 1].startswith("/opt/sp/run/")
    assert "--tsc-hz" not in cmd and cmd[-2:] == ["--link", "gateway"]
    assert cmd[cmd.index("--pool") + 1] == "1"
    assert not any(str(REPO_ROOT) in a for a in cmd)


def _uncabled_worker() -> inventory.Inventory:
    nic = {"iface": "dp0", "mac": "02:00:00:00:00:01"}
    hosts: dict[str, Any] = {
        "g": {"address": "198.18.0.11", "roles": ["generator"], "nics": [{**nic, "peer": "gw:dp0"}]},
        "gw": {"address": "198.18.0.12", "roles": ["gateway"],
               "nics": [nic, {"iface": "dp1", "mac": "02:00:00:00:00:02"}]},
        "w": {"address": "198.18.0.13", "roles": ["worker"], "nics": [nic]}}   # no peer: not cabled
    return inventory.parse({"hosts": hosts}, "inv.yaml")


def test_figure_15_without_a_cable_to_the_worker_says_which_before_any_ssh(tmp_path: Any) -> None:
    from testbed.run import RunError
    from testbed.run_sfc import run_figure_15
    with pytest.raises(RunError, match="no NIC of gw is cabled to w "):
        run_figure_15(_uncabled_worker(), cfg.load(quick=True), tmp_path, echo=lambda s: None)
