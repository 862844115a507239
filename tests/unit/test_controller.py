"""The serpensd controller against a fake serpensd: one JSON line per request, replies parsed, errors clear.

The fake is a thread serving a Unix socket in tmp_path with the protocol of docs/serpens-control.md; the real
daemon is exercised by tests/integration/test_serpens.py.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.platforms.base import PlatformError
from harness.serpens.controller import Controller, SerpensConnectionError, SerpensError

Handler = Callable[[dict[str, Any]], dict[str, Any] | None | str]


class FakeSerpensd:
    """Answers each request line with ``handler(request)``: a dict (sent as JSON), a str (sent raw), or
    None (close the connection without answering). Every request is recorded, raw and parsed."""

    def __init__(self, path: Path, handler: Handler, delay_s: float = 0.0) -> None:
        self.path = str(path)
        self.handler = handler
        self.requests: list[dict[str, Any]] = []
        self.lines: list[bytes] = []
        self.delay_s = delay_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        if self.delay_s:
            time.sleep(self.delay_s)  # serpensd still starting: nobody listens yet
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(self.path)
        srv.listen(4)
        srv.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            with conn, conn.makefile("rb") as rfile:
                for line in rfile:
                    self.lines.append(line)
                    req = json.loads(line)
                    self.requests.append(req)
                    reply = self.handler(req)
                    if reply is None:
                        break
                    data = reply if isinstance(reply, str) else json.dumps(reply)
                    try:
                        conn.sendall(data.encode() + b"\n")
                    except OSError:  # the client gave up on this request (timeout test)
                        break
        srv.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


@pytest.fixture
def serve(tmp_path: Path):  # noqa: ANN201
    servers: list[FakeSerpensd] = []

    def start(handler: Handler, delay_s: float = 0.0) -> FakeSerpensd:
        s = FakeSerpensd(tmp_path / f"serpensd{len(servers)}.sock", handler, delay_s)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def protocol(req: dict[str, Any]) -> dict[str, Any] | None:
    """A well-behaved serpensd, with the replies of docs/serpens-control.md."""
    cmd = req["cmd"]
    if cmd == "deploy_nf":
        if not req["path"].endswith(".so"):
            return {"ok": False, "error": f"deploy_nf {req['name']}: {req['path']}: not an NF object"}
        return {"ok": True, "tables": [f"{req['name']}/map", f"{req['name']}/pool"]}
    if cmd == "deploy_sfc":
        return {"ok": True, "sfc": 3}
    if cmd == "start_instance":
        return {"ok": True, "instance": 2, "pid": 4242, "startup_us": 37.5}
    if cmd == "stop_instance":
        return {"ok": True, "drained": 17}
    if cmd == "stats":
        return {"ok": True, "port": {"rx": 10, "tx": 9}, "gateway": {"misses": 0}, "sfcs": [],
                "instances": [], "state": {"used_bytes": 1}}
    if cmd == "read_state":
        return {"ok": True, "value": "0100000000000000" + req["key"]}
    if cmd == "dump_table":
        return {"ok": True, "entries": [["0a", "ff00"], ["0b", "0100"]][: req["limit"]]}
    if cmd == "set":
        return {"ok": True}
    if cmd == "shutdown":
        return None  # serpensd may exit without answering
    return {"ok": False, "error": f"unknown command {cmd!r}"}


def test_every_request_is_one_json_line_and_replies_are_parsed(serve) -> None:  # noqa: ANN001
    fake = serve(protocol)
    with Controller(fake.path) as ctl:
        tables = ctl.deploy_nf("nat1", "/abs/nat.so", {"external_ip": "198.18.1.1", "capacity": 1024,
                                                        "strict": True})
        sfc = ctl.deploy_sfc("web", {"dst": "48.0.0.0/8"},
                             ["fw1", {"distribute": ["ids1", "mon1"], "selector": "fw1.suspicious"}, "nat1"])
        inst = ctl.start_instance("web")
        drained = ctl.stop_instance(inst["instance"])
        stats = ctl.stats()
        value = ctl.read_state("mon1/mon_hosts", b"\x10\x00\x00\x01")
        table = ctl.dump_table("nat1/nat_map", limit=10)
        ctl.set(keep_warm_s=30, wake_batch=64, flush_us=20)
        ctl.shutdown()
    assert tables == ["nat1/map", "nat1/pool"]
    assert sfc == 3
    assert inst == {"instance": 2, "pid": 4242, "startup_us": 37.5}
    assert drained == 17
    assert stats["port"] == {"rx": 10, "tx": 9} and "ok" not in stats
    assert value == b"\x01" + b"\x00" * 7 + b"\x10\x00\x00\x01"
    assert table == {b"\x0a": b"\xff\x00", b"\x0b": b"\x01\x00"}
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in fake.lines)
    assert fake.requests == [
        # NF arguments reach the NF as text (sp_arg)
        {"cmd": "deploy_nf", "name": "nat1", "path": "/abs/nat.so",
         "args": {"external_ip": "198.18.1.1", "capacity": "1024", "strict": "true"}},
        {"cmd": "deploy_sfc", "name": "web", "match": {"dst": "48.0.0.0/8"},
         "graph": ["fw1", {"distribute": ["ids1", "mon1"], "selector": "fw1.suspicious"}, "nat1"]},
        {"cmd": "start_instance", "sfc": "web"},
        {"cmd": "stop_instance", "instance": 2},
        {"cmd": "stats"},
        {"cmd": "read_state", "table": "mon1/mon_hosts", "key": "10000001"},
        {"cmd": "dump_table", "table": "nat1/nat_map", "limit": 10},
        {"cmd": "set", "keep_warm_s": 30, "wake_batch": 64, "flush_us": 20},
        {"cmd": "shutdown"},
    ]
    assert not ctl.connected


def test_a_refused_request_raises_serpensds_error_and_the_connection_stays_usable(serve) -> None:  # noqa: ANN001
    fake = serve(protocol)
    with Controller(fake.path) as ctl:
        with pytest.raises(SerpensError, match=r"deploy_nf ghost: /nowhere/ghost: not an NF object") as err:
            ctl.deploy_nf("ghost", "/nowhere/ghost", {})
        assert not isinstance(err.value, SerpensConnectionError)
        assert isinstance(err.value, PlatformError)  # CLI and experiments report it as any platform error
        assert err.value.error == "deploy_nf ghost: /nowhere/ghost: not an NF object"
        assert err.value.request["name"] == "ghost"
        with pytest.raises(SerpensError, match="unknown command 'frobnicate'"):
            ctl.request("frobnicate")
        assert ctl.deploy_sfc("a", None, ["x"]) == 3  # the next request still works, in order


def test_ok_false_without_a_message_still_says_what_was_refused(serve) -> None:  # noqa: ANN001
    fake = serve(lambda req: {"ok": False})
    with Controller(fake.path) as ctl, pytest.raises(SerpensError, match="refused 'stats'"):
        ctl.stats()


def test_connect_retries_while_serpensd_comes_up(serve) -> None:  # noqa: ANN001
    fake = serve(protocol, delay_s=0.3)
    t0 = time.monotonic()
    with Controller(fake.path, connect_timeout_s=5) as ctl:
        assert ctl.stats()["port"]["rx"] == 10
    assert time.monotonic() - t0 >= 0.25


def test_nobody_listening_names_the_socket_and_says_serpensd_is_not_running(tmp_path: Path) -> None:
    path = tmp_path / "gone.sock"
    t0 = time.monotonic()
    with pytest.raises(SerpensConnectionError) as err:
        Controller(str(path)).connect(timeout_s=0.2)
    assert time.monotonic() - t0 < 2
    assert str(path) in str(err.value) and "serpensd is not running" in str(err.value)


def test_a_daemon_that_dies_under_a_request_is_reported_as_not_running(serve) -> None:  # noqa: ANN001
    fake = serve(lambda req: None)  # closes the connection instead of answering
    ctl = Controller(fake.path).connect()
    with pytest.raises(SerpensConnectionError) as err:
        ctl.start_instance("web")
    assert fake.path in str(err.value) and "serpensd is not running" in str(err.value)
    assert "'start_instance'" in str(err.value)
    assert not ctl.connected


def test_a_daemon_that_does_not_answer_times_out(serve) -> None:  # noqa: ANN001
    release = threading.Event()

    def stuck(req: dict[str, Any]) -> dict[str, Any]:
        release.wait(5)
        return {"ok": True}

    fake = serve(stuck)
    ctl = Controller(fake.path, request_timeout_s=0.2).connect()
    with pytest.raises(SerpensConnectionError, match="did not answer 'stats'.*within 0.2 s"):
        ctl.stats()
    release.set()
    assert not ctl.connected  # the stream is out of step: the next request reconnects


def test_replies_that_are_not_the_protocol_are_errors(serve) -> None:  # noqa: ANN001
    answers = iter(["this is not json", json.dumps({"sfc": 1}), json.dumps([1, 2])])
    fake = serve(lambda req: next(answers))
    with Controller(fake.path) as ctl:
        with pytest.raises(SerpensError, match="not JSON"):
            ctl.stats()
        with pytest.raises(SerpensError, match="without an 'ok' field"):
            ctl.stats()
        with pytest.raises(SerpensError, match="without an 'ok' field"):
            ctl.stats()


def test_shutdown_tolerates_a_daemon_that_answers_before_exiting(serve) -> None:  # noqa: ANN001
    fake = serve(lambda req: {"ok": True})
    ctl = Controller(fake.path).connect()
    ctl.shutdown()
    assert fake.requests == [{"cmd": "shutdown"}] and not ctl.connected


def test_bad_arguments_are_refused_before_anything_is_sent(serve) -> None:  # noqa: ANN001
    fake = serve(protocol)
    with Controller(fake.path) as ctl:
        with pytest.raises(TypeError, match="string or a number"):
            ctl.deploy_nf("x", "/x.so", {"list": [1, 2]})
        with pytest.raises(ValueError, match="at least one knob"):
            ctl.set()
    assert fake.requests == []


# --- the serpens platform drives serpensd through the controller (a fake serpensd executable) ------------

FAKE_SERPENSD = r'''#!{python}
"""A stand-in for serpensd: records its argv and every request, speaks the control protocol."""
import json, os, signal, socket, sys
argv = sys.argv[1:]
control = argv[argv.index("--control") + 1]
log = open(os.environ["FAKE_LOG"], "a")
log.write(json.dumps({{"argv": argv}}) + "\n"); log.flush()
mode = os.environ.get("FAKE_MODE", "")
if mode == "die":
    print("EAL: cannot reserve hugepages", file=sys.stderr)
    sys.exit(3)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(control); srv.listen(1)
print("EAL: some noise"); print("READY", flush=True)
nfs, sfcs, slots = set(), {{}}, 0
conn, _ = srv.accept()
for line in conn.makefile("rb"):
    req = json.loads(line)
    log.write(json.dumps({{"request": req}}) + "\n"); log.flush()
    cmd, reply = req["cmd"], {{"ok": True}}
    if cmd == "deploy_nf":
        if mode == "refuse" and req["name"] == "mon":
            reply = {{"ok": False,
                      "error": "deploy_nf mon: init failed: mon_hosts: no room in the state region"}}
        else:
            nfs.add(req["name"]); reply["tables"] = [req["name"] + "/t"]
    elif cmd == "deploy_sfc":
        missing = [n for n in req["graph"] if isinstance(n, str) and n not in nfs]
        if missing:
            reply = {{"ok": False, "error": "deploy_sfc %s: unknown NF %s" % (req["name"], missing[0])}}
        else:
            sfcs[req["name"]] = len(sfcs); reply["sfc"] = sfcs[req["name"]]
    elif cmd == "start_instance":
        reply.update(instance=slots, pid=1000 + slots, startup_us=40.0); slots += 1
    elif cmd == "stats":
        reply.update(port={{"rx": 0, "tx": 0}}, sfcs=[{{"name": n}} for n in sfcs], instances=[])
    conn.sendall((json.dumps(reply) + "\n").encode())
    if cmd == "shutdown":
        sys.exit(0)
# what the harness reads as serpensd's options (harness.serpens.design_options.usage_options):
# {usage}
'''
# serpensd's usage with every design axis' option (the fake's default) and, for the older binary, without
FULL_USAGE = ("usage: serpensd [EAL args] -- --control PATH --runtime PATH [--pool N] [--startup METHOD] "
              "[--state-backend B] [--chaining MODE] [--scaling PROTOCOL] [--redis HOST:PORT] "
              "[--redis-timeout-ms N]")
OLD_USAGE = ("usage: serpensd [EAL args] -- --control PATH --runtime PATH [--pool N] "
             "[--nf-loader dlopen|shm] [--state-backend serpens|fission|snf] [--redis HOST:PORT] "
             "[--redis-timeout-ms N]")


@pytest.fixture
def fake_serpens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    import sys

    from harness import config as cfg

    exe = tmp_path / "serpensd"
    exe.write_text(FAKE_SERPENSD.format(python=sys.executable, usage=FULL_USAGE))
    exe.chmod(0o755)
    runtime = tmp_path / "serpens-runtime"
    runtime.write_text("#!/bin/sh\nexit 0\n")
    runtime.chmod(0o755)
    nfs = tmp_path / "nfs"
    nfs.mkdir()
    for t in ("fw", "mon", "nat"):
        (nfs / f"{t}.so").write_bytes(b"")
    log = tmp_path / "fake.jsonl"
    monkeypatch.setenv("FAKE_LOG", str(log))
    conf = cfg.load(quick=True, overrides=[f"machine.runtime_dir={tmp_path / 'run'}",
                                           f"platforms.serpens.serpensd={exe}",
                                           f"platforms.serpens.runtime={runtime}",
                                           f"platforms.serpens.nfs_dir={nfs}",
                                           "platforms.serpens.ready_timeout_s=5"])

    def records(kind: str) -> list[Any]:
        return [r[kind] for r in map(json.loads, log.read_text().splitlines()) if kind in r]

    return conf, records, nfs, runtime


def test_platform_starts_serpensd_and_deploys_the_sfc(fake_serpens) -> None:  # noqa: ANN001
    from harness.native import RunDir
    from harness.serpens.platform import DesignPlatform

    conf, records, nfs, runtime = fake_serpens
    run_dir = RunDir(conf, "serpens")
    p = DesignPlatform(conf, run_dir, sfc="fw,mon,nat")
    assert p.workload == "fw,mon,nat"
    p.start()
    try:
        (argv,) = records("argv")
        eal, own = argv[:argv.index("--")], argv[argv.index("--") + 1:]
        assert eal[:2] == ["-l", str(conf["cores"]["platform"])]
        assert eal[eal.index("--file-prefix") + 1] == f"serpens-{run_dir.tag}" and "--no-pci" in eal
        vdev = eal[eal.index("--vdev") + 1]
        assert vdev.startswith("net_memif0,role=server,") and f"socket={run_dir / 'memif.sock'}" in vdev
        assert own == ["--control", str(run_dir / "serpensd.sock"), "--runtime", str(runtime),
                       "--nf-dir", str(run_dir / "nfs"),
                       "--state-mb", "256", "--wake-batch", "128", "--batch", "32", "--flush-us", "50",
                       "--rx-gap-ns", "5000", "--keep-warm-s", "30",
                       "--startup", "serpens", "--state-backend", "serpens", "--chaining", "consolidated",
                       "--scaling", "shared", "--pool", "4", "--colocate"]
        assert records("request") == [
            {"cmd": "deploy_nf", "name": "fw", "path": str(nfs / "fw.so"), "args": {"blacklist": ""}},
            {"cmd": "deploy_nf", "name": "mon", "path": str(nfs / "mon.so"), "args": {}},
            {"cmd": "deploy_nf", "name": "nat", "path": str(nfs / "nat.so"),
             "args": {"external_ip": "198.18.1.1", "ports": "1024-65535"}},
            {"cmd": "deploy_sfc", "name": "fw-mon-nat", "match": {}, "graph": ["fw", "mon", "nat"]},
            {"cmd": "start_instance", "sfc": "fw-mon-nat"},
        ]
        assert p.instances == {0: {"sfc": "fw-mon-nat", "instance": 0, "pid": 1000, "startup_us": 40.0}}
        assert p.stats()["sfcs"] == [{"name": "fw-mon-nat"}]
        assert p.describe()["instance_startup_us"] == [40.0]
        proc = p.proc
    finally:
        final = p.stop()
    assert final["sfcs"] == [{"name": "fw-mon-nat"}]   # the last counters, read before shutting down
    assert records("request")[-2:] == [{"cmd": "stats"}, {"cmd": "shutdown"}]
    assert proc is not None and proc.returncode == 0
    assert "EAL: some noise" in (run_dir / "serpensd.log").read_text()  # stdout before READY is kept
    run_dir.remove()


def test_refused_deployment_stops_serpensd_and_reports_its_error(fake_serpens,  # noqa: ANN001
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.native import RunDir
    from harness.serpens.platform import DesignPlatform

    conf, records, _, _ = fake_serpens
    monkeypatch.setenv("FAKE_MODE", "refuse")
    p = DesignPlatform(conf, RunDir(conf, "serpens"), sfc="fw,mon,nat")
    with pytest.raises(SerpensError, match="deploying NF 'mon'.*no room in the state region"):
        p.start()
    assert p.proc is None
    assert [r["cmd"] for r in records("request")][-1] == "shutdown"


def test_missing_nf_object_is_named_before_serpensd_sees_it(fake_serpens) -> None:  # noqa: ANN001
    from harness.native import RunDir
    from harness.serpens.platform import DesignPlatform

    conf, records, nfs, _ = fake_serpens
    p = DesignPlatform(conf, RunDir(conf, "serpens"), sfc="fw,vpn")
    with pytest.raises(PlatformError, match=f"NF 'vpn' of type 'vpn': {nfs / 'vpn.so'} does not exist"):
        p.start()
    assert p.proc is None
    assert "deploy_sfc" not in [r["cmd"] for r in records("request")]


def test_serpensd_that_dies_before_ready_is_reported_with_its_log(fake_serpens,  # noqa: ANN001
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.native import RunDir
    from harness.serpens.platform import DesignPlatform

    conf, _, _, _ = fake_serpens
    monkeypatch.setenv("FAKE_MODE", "die")
    p = DesignPlatform(conf, RunDir(conf, "serpens"), sfc="fw")
    with pytest.raises(PlatformError, match=r"(?s)exited with code 3.*cannot reserve hugepages"):
        p.start()
    assert p.proc is None


def test_rig_passes_the_sfc_to_platforms_that_run_nfs_only(fake_serpens) -> None:  # noqa: ANN001
    from harness.rig import rig
    from harness.serpens.sfc import SfcSpec

    conf, records, _, _ = fake_serpens
    with rig(conf, "serpens", sfc=SfcSpec.linear("nat")) as r:
        assert r.platform.workload == "nat"
        assert r.platform.describe()["sfcs"][0]["graph"] == ["nat"]
    assert [r["cmd"] for r in records("request")] == ["deploy_nf", "deploy_sfc", "start_instance", "stats",
                                                      "shutdown"]
    with pytest.raises(PlatformError, match="wire platform runs no NFs"), rig(conf, "wire", sfc="fw"):
        pass


def test_a_design_whose_scaling_is_not_built_refuses_scaling_requests(fake_serpens) -> None:  # noqa: ANN001
    from harness.native import RunDir
    from harness.platforms.designs import SERPENS
    from harness.serpens.platform import DesignPlatform

    conf, records, _, _ = fake_serpens
    # SNF's state move needs the router's buckets: with a proxy chaining it cannot run
    design = SERPENS.replace(scaling="snf", chaining="local-proxy")
    p = DesignPlatform(conf, RunDir(conf, "custom"), design=design, sfc="fw")
    assert p.name == "custom"
    p.start()
    try:
        assert "--scaling" not in p.command_line   # serpensd is not told a protocol it cannot run
        assert len(p.instances) == conf["platforms"]["serpens"]["instances"]   # deployment still starts them
        with pytest.raises(PlatformError, match="cannot start an instance of SFC 'fw': scaling 'snf' moves "
                                                "per-flow state .* needs consolidated chaining"):
            p.start_instance("fw")
        with pytest.raises(PlatformError, match="cannot stop instance 0: scaling 'snf'"):
            p.stop_instance(0)
        assert "needs consolidated chaining" in p.describe()["scaling"]
    finally:
        p.stop()
    assert [r["cmd"] for r in records("request")].count("start_instance") == 1


def test_serpens_scales_after_deployment_and_records_its_design(fake_serpens) -> None:  # noqa: ANN001
    from harness.native import RunDir
    from harness.serpens.platform import DesignPlatform

    conf, _, _, _ = fake_serpens
    p = DesignPlatform(conf, RunDir(conf, "serpens"), sfc="fw")
    p.start()
    try:
        assert p.start_instance("fw")["instance"] == 1
        d = p.describe()
        assert (d["system"], d["design"], d["mechanism"]) == ("serpens", "serpens", "")
        assert d["design_axes"] == {"startup": "serpens", "state": "serpens", "chaining": "consolidated",
                                    "scaling": "serpens"}
        assert "--startup" in d["serpensd_command"]
    finally:
        p.stop()


def test_an_older_serpensd_is_given_the_design_it_can_run_or_refused(fake_serpens) -> None:  # noqa: ANN001
    import sys

    from harness.native import RunDir
    from harness.rig import rig

    conf, records, _, _ = fake_serpens
    exe = Path(conf["platforms"]["serpens"]["serpensd"])
    exe.write_text(FAKE_SERPENSD.format(python=sys.executable, usage=OLD_USAGE))
    with rig(conf, "serpens", sfc="fw") as r:
        assert r.platform.describe()["axes_implied"].keys() == {"startup", "chaining", "scaling"}
    (argv,) = records("argv")
    own = argv[argv.index("--") + 1:]
    assert "--startup" not in own and "--chaining" not in own
    assert own[own.index("--pool"):own.index("--pool") + 4] == ["--pool", "4", "--nf-loader", "shm"]
    from harness.serpens.platform import DesignPlatform
    p = DesignPlatform(conf, RunDir(conf, "sand-chaining"), design="sand-chaining", sfc="fw")
    with pytest.raises(PlatformError, match="--chaining local-proxy is needed"):
        p.start()
    assert p.proc is None and len(records("argv")) == 1   # refused before serpensd was started


def test_rig_takes_a_design_to_vary_one_axis_without_a_registry_entry(fake_serpens) -> None:  # noqa: ANN001
    from harness.platforms.designs import SERPENS
    from harness.rig import rig

    conf, records, _, _ = fake_serpens
    with rig(conf, SERPENS.replace(startup="load"), sfc="fw") as r:
        assert r.platform.name == "load-startup"     # the registry's name for that design
    with rig(conf, SERPENS.replace(startup="exec", scaling="snf"), sfc="fw") as r:
        assert r.platform.name == "custom"
    own = [a[a.index("--") + 1:] for a in records("argv")]
    assert [o[o.index("--startup") + 1] for o in own] == ["load", "exec"]
    assert [o[o.index("--scaling") + 1] for o in own] == ["shared", "snf"]
    assert "--pool" in own[0] and "--pool" not in own[1]    # exec starts no pool


def test_a_request_over_serpensds_limit_is_refused_before_sending_with_the_true_reason(serve) -> None:  # noqa: ANN001
    fake = serve(protocol)
    ctl = Controller(fake.path).connect()
    with pytest.raises(SerpensError) as err:
        ctl.deploy_nf("fw", "/x/fw.so", {"blacklist": "x" * (10 << 20)})
    assert not isinstance(err.value, SerpensConnectionError)
    assert "'deploy_nf'" in str(err.value) and f"at most {1 << 20} bytes" in str(err.value)
    assert "not running" not in str(err.value)
    assert fake.requests == []
    assert ctl.stats()["port"]["rx"] == 10  # the connection is still good


def test_an_error_serpensd_wrote_before_closing_is_reported_not_not_running(tmp_path: Path) -> None:
    """serpensd refuses a line too long with one error line and closes while the client is still sending:
    the client's send fails, and the error is what it reports."""
    path = str(tmp_path / "limit.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)

    def refuse() -> None:
        conn, _ = srv.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b'{"ok":false,"error":"request longer than 1048576 bytes: closing the '
                         b'connection"}\n')

    t = threading.Thread(target=refuse, daemon=True)
    t.start()
    ctl = Controller(path).connect()
    with pytest.raises(SerpensError) as err:
        ctl.request("deploy_nf", name="fw", path="/x/fw.so", args={"blacklist": "x" * 1_000_000})
    t.join(timeout=5)
    srv.close()
    assert not isinstance(err.value, SerpensConnectionError)
    assert ("serpensd closed the connection during 'deploy_nf': request longer than 1048576 bytes"
            in str(err.value))
    assert not ctl.connected
