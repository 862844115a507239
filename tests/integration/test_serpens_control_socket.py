"""serpensd's control socket against clients that misbehave (docs/serpens-control.md, "Limits"; issue 13,
"Control socket abuse"), with the real serpensd of the `serpens` platform forwarding the real generator's
traffic on a DPDK memif link the whole time.

Every case runs inside :func:`abuse`: traffic starts, the case does its worst, and then serpensd must still
be running, must have forwarded packets *during* the abuse (its SFC's transmit counter rose across the
window), must have lost none of the generator's packets over the whole window (rx = tx: no gap long
enough to overflow a ring), and must still answer a fresh client. Behaviour, not timing: nothing here
measures how long anything took.
"""

from __future__ import annotations

import json
import os
import resource
import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from harness import config as cfg
from harness.rig import Rig, rig
from harness.serpens.controller import Controller, SerpensError
from harness.serpens.sfc import SfcSpec
from harness.traffic import profiles
from tests.integration.packets import LOAD_DST

pytestmark = pytest.mark.dpdk

LOAD_PPS = 20_000
TRAFFIC_S = 120.0          # an upper bound: the traffic is stopped as soon as the case is over
REQ_MAX_BYTES = 1 << 20    # native/serpens/control_socket.c
MAX_CLIENTS = 1024


@pytest.fixture(scope="module")
def r(dpdk_ready: cfg.Config) -> Iterator[Rig]:
    # this process holds over a thousand connections at once: its soft descriptor limit goes to the hard one
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with rig(dpdk_ready, "serpens", sfc=SfcSpec.linear("fw")) as rg:
        yield rg


def sfc_tx(stats: dict[str, Any]) -> int:
    return sum(s["tx_packets"] for s in stats["sfcs"])


def alive(r: Rig) -> None:
    assert r.platform.proc is not None and r.platform.proc.poll() is None, "serpensd exited"


def fresh_client_answered(r: Rig) -> None:
    with Controller(str(r.platform.control_socket), connect_timeout_s=5) as ctl:
        assert ctl.stats()["port"]["rx_packets"] > 0


def forwarding(r: Rig) -> None:
    """serpensd's SFC transmits packets from now on (polled: however slow the machine is today)."""
    start = sfc_tx(r.platform.stats())
    deadline = time.monotonic() + 10.0
    while sfc_tx(r.platform.stats()) <= start:
        assert time.monotonic() < deadline, "serpensd stopped forwarding while its control socket was abused"
        time.sleep(0.01)   # the test's poll interval, not a delay in anything measured


@contextmanager
def abuse(r: Rig) -> Iterator[None]:
    """Traffic through serpensd around the block (which calls :func:`forwarding` at the height of its
    abuse); afterwards: serpensd alive and forwarding, no packet of the whole window lost, a fresh client
    served."""
    gen = r.generator
    gen.reset()
    gen.add_streams(profiles.udp_flows(LOAD_PPS, 64, 8, dst=LOAD_DST))
    gen.start(duration=TRAFFIC_S)
    try:
        forwarding(r)   # the traffic is through serpensd now
        yield
        alive(r)
        forwarding(r)
    finally:
        gen.stop()   # SIGTERM: the generator settles and still reports the whole trial
    res = gen.get_stats()
    alive(r)
    assert res.tx_packets > 0 and res.rx_packets == res.tx_packets, \
        f"packets lost while the control socket was abused: tx {res.tx_packets}, rx {res.rx_packets}"
    fresh_client_answered(r)


def connect(path: Path, timeout: float = 10.0) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(str(path))
    return sock


def read_line(sock: socket.socket) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        chunk = sock.recv(1 << 16)
        assert chunk, f"serpensd closed the connection without a reply line (got {line[:200]!r})"
        line += chunk
    return line


def ask(sock: socket.socket, req: dict[str, Any]) -> dict[str, Any]:
    """One request on a raw connection, and its one-line reply."""
    sock.sendall((json.dumps(req) + "\n").encode())
    return json.loads(read_line(sock))


def test_a_client_that_closes_before_reading_its_replies_leaves_serpensd_answering_and_forwarding(
        r: Rig) -> None:
    with abuse(r):
        # 500 requests whose replies (kilobytes each) overflow the socket's buffer: serpensd is still writing
        # them when the client has gone, so at least one write meets a closed socket (EPIPE, not SIGPIPE)
        quitter = connect(r.platform.control_socket)
        quitter.sendall(b'{"cmd":"stats"}\n' * 500)
        quitter.close()
        forwarding(r)
        alive(r)
        fresh_client_answered(r)


def test_a_half_line_held_open_does_not_hold_up_another_client(r: Rig) -> None:
    with abuse(r):
        slow = connect(r.platform.control_socket)
        try:
            slow.sendall(b'{"cmd":"sta')            # half a request, and then nothing
            with connect(r.platform.control_socket) as other:
                assert ask(other, {"cmd": "stats"})["ok"] is True   # served while the half line is open
            forwarding(r)
            slow.sendall(b'ts"}\n')                 # the rest: the slow client is served as well
            assert json.loads(read_line(slow))["ok"] is True
        finally:
            slow.close()


def test_a_thousand_concurrent_connections_are_each_served_or_refused_with_a_reply(r: Rig) -> None:
    with abuse(r):
        socks: list[socket.socket] = []
        try:
            for _ in range(1000):                   # all connected (in the backlog or accepted) at once
                socks.append(connect(r.platform.control_socket, timeout=30.0))
            forwarding(r)                           # the platform's own client is served meanwhile
            for s in socks:
                s.sendall(b'{"cmd":"stats"}\n')
            replies = [json.loads(read_line(s)) for s in socks]
        finally:
            for s in socks:
                s.close()
        refused = [x for x in replies if x["ok"] is not True]
        assert all(f"at most {MAX_CLIENTS} control clients" in x["error"] for x in refused), refused[:3]
        # the platform's own connection and these 1000 fit under the cap: every one is served
        assert not refused, f"{len(refused)} of 1000 refused: {refused[0]}"


def test_connections_beyond_the_cap_are_each_refused_with_a_reply(r: Rig) -> None:
    extra = 50
    with abuse(r):
        socks: list[socket.socket] = []
        try:
            for _ in range(MAX_CLIENTS + extra):
                socks.append(connect(r.platform.control_socket, timeout=30.0))
            forwarding(r)
            replies = []
            for s in socks:
                try:
                    s.sendall(b'{"cmd":"stats"}\n')
                except (BrokenPipeError, ConnectionResetError):
                    pass                            # refused already: its reply waits to be read
                replies.append(json.loads(read_line(s)))
        finally:
            for s in socks:
                s.close()
    refused = [x for x in replies if x["ok"] is not True]
    # the platform's own connection holds one place: at least `extra` + 1 are refused, each with the reason
    assert len(refused) >= extra + 1, f"{len(refused)} refused"
    assert all(x["error"] == f"serpensd serves at most {MAX_CLIENTS} control clients at once: try again later"
               for x in refused), refused[:3]
    assert len(replies) - len(refused) >= MAX_CLIENTS - 1 - 10   # the rest served (a few may be closing)


def test_out_of_file_descriptors_serpensd_refuses_with_a_reply_and_keeps_serving(r: Rig) -> None:
    """serpensd's soft descriptor limit lowered to 20 above what it uses: 20 more clients are served, every
    further one gets an error line (serpensd keeps a spare descriptor for it) and nothing spins."""
    proc = r.platform.proc
    assert proc is not None
    in_use = len(os.listdir(f"/proc/{proc.pid}/fd"))
    old = resource.prlimit(proc.pid, resource.RLIMIT_NOFILE)
    resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, (in_use + 20, old[1]))   # the soft limit: restorable
    try:
        with abuse(r):
            socks = [connect(r.platform.control_socket) for _ in range(60)]
            try:
                replies = []
                for s in socks:
                    try:
                        s.sendall(b'{"cmd":"stats"}\n')
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    replies.append(json.loads(read_line(s)))
                forwarding(r)
            finally:
                for s in socks:
                    s.close()
    finally:
        resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, old)
    served = [x for x in replies if x["ok"] is True]
    refused = [x for x in replies if x["ok"] is not True]
    assert served and refused, (len(served), len(refused))
    why = "serpensd is out of file descriptors: try again later"
    assert all(x["error"] == why for x in refused), refused[:3]


def test_a_line_of_ten_megabytes_is_refused_with_one_clear_error(r: Rig) -> None:
    with abuse(r):
        with connect(r.platform.control_socket) as big:
            line = b'{"cmd":"deploy_nf","name":"x","path":"' + b"a" * (10 << 20) + b'"}\n'
            try:
                big.sendall(line)
            except (BrokenPipeError, ConnectionResetError):
                pass                                # serpensd closed after its error: the reply is queued
            reply = json.loads(read_line(big))
            assert reply["ok"] is False
            assert f"request longer than {REQ_MAX_BYTES} bytes" in reply["error"], reply
            try:
                rest = big.recv(1 << 16)
            except ConnectionResetError:   # closed with the rest of the line unread: a reset, as EOF
                rest = b""
            assert rest == b"", "serpensd kept the connection open after refusing the line"
        forwarding(r)


def test_the_python_client_gives_the_true_reason_for_a_ten_megabyte_nf_argument(r: Rig) -> None:
    ctl = r.platform.controller
    assert ctl is not None
    with pytest.raises(SerpensError) as err:
        ctl.deploy_nf("big", "/nonexistent/fw.so", {"blacklist": "x" * (10 << 20)})
    assert "not running" not in str(err.value) and f"at most {REQ_MAX_BYTES} bytes" in str(err.value)
    alive(r)


def test_deploying_a_fifo_is_a_clear_error_and_no_hang(r: Rig, tmp_path: Path) -> None:
    fifo = tmp_path / "nf.so"
    os.mkfifo(fifo)
    nfs = Path(r.platform.settings["nfs_dir"])
    nfs = nfs if nfs.is_absolute() else Path.cwd() / nfs
    with abuse(r):
        with connect(r.platform.control_socket, timeout=30.0) as c:
            rep = ask(c, {"cmd": "deploy_nf", "name": "fifo", "path": str(fifo)})
            assert rep["ok"] is False and "not a regular file (a FIFO)" in rep["error"], rep
            # the IDS reads a file named by its arguments in init, which runs in serpensd: same rule
            rep = ask(c, {"cmd": "deploy_nf", "name": "idsfifo", "path": str(nfs / "ids.so"),
                          "args": {"patterns": str(fifo)}})
            assert rep["ok"] is False and "idsfifo" in rep["error"], rep
            rep = ask(c, {"cmd": "deploy_nf", "name": "dir", "path": str(tmp_path)})
            assert rep["ok"] is False and "not a regular file (a directory)" in rep["error"], rep
            forwarding(r)


OUT_OF_RANGE: list[tuple[dict[str, Any], str]] = [
    ({"cmd": "deploy_sfc", "name": "p", "graph": ["fw"], "match": {"proto": 300}},
     "'proto' must be an integer in 0..255, got 300"),
    ({"cmd": "deploy_sfc", "name": "p", "graph": ["fw"], "match": {"proto": "udp"}},
     "'proto' must be an integer in 0..255"),
    ({"cmd": "deploy_sfc", "name": "p", "graph": ["fw"], "match": {"dport": 70000}},
     "'dport' must be an integer in 0..65535, got 70000"),
    ({"cmd": "deploy_sfc", "name": "p", "graph": ["fw"], "match": {"dst": "48.0.0.0/33"}},
     "match.dst must be an IPv4 prefix"),
    ({"cmd": "deploy_sfc", "name": "p", "graph": ["fw"], "match": {"dst": "48.0.0.0/8x"}},
     "match.dst must be an IPv4 prefix"),
    ({"cmd": "deploy_sfc", "name": "p", "graph": ["fw"], "match": {"prot": 17}},
     "unknown field 'prot'"),
    ({"cmd": "set", "wake_batch": 1 << 32}, "'wake_batch' must be an integer in 1..4096, got 4294967296"),
    ({"cmd": "set", "wake_batch": 0}, "'wake_batch' must be an integer in 1..4096, got 0"),
    ({"cmd": "set", "keep_warm_s": -1}, "'keep_warm_s' must be a number in 0..86400, got -1"),
    ({"cmd": "set", "flush_us": "50"}, "'flush_us' must be an integer in 0..1000000"),
    ({"cmd": "set", "wake_bach": 4}, "unknown field 'wake_bach'"),
    ({"cmd": "stop_instance", "instance": 1 << 32}, "'instance' must be an integer in 0..15, got 4294967296"),
    ({"cmd": "stop_instance", "instance": -1}, "'instance' must be an integer in 0..15, got -1"),
    ({"cmd": "stop_instance"}, "'instance' (a slot, 0..15) is required"),
    ({"cmd": "stop_instance", "instance": 0, "at_ns": -5}, "'at_ns' must be a CLOCK_MONOTONIC time in ns"),
    # a minute from when the request is sent (the list is built at import, minutes before a full run uses it)
    ({"cmd": "start_instance", "sfc": "SFC", "at_ns": "IN_A_MINUTE"}, "at most 10 s ahead"),
    ({"cmd": "move_flows", "sfc": "SFC", "from": 1 << 32, "to": 0},
     "'from' must be an integer in 0..15, got 4294967296"),
    ({"cmd": "move_flows", "sfc": "SFC", "from": 0, "to": 1, "fraction": 2},
     "'fraction' must be a number in (0, 1]"),
    ({"cmd": "dump_table", "table": "fw/fw_exact", "limit": 0},
     "'limit' must be an integer in 1..2147483647, got 0"),
    ({"cmd": "dump_table", "table": "fw/fw_exact", "limit": -1},
     "'limit' must be an integer in 1..2147483647, got -1"),
]


def test_out_of_range_values_are_refused_naming_the_field_and_the_range(r: Rig) -> None:
    p = r.platform
    sfc = p.stats()["sfcs"][0]["name"]
    running = [i["instance"] for i in p.stats()["instances"] if i["state"] == "ready"]
    with abuse(r):
        with connect(p.control_socket) as c:
            for req, want in OUT_OF_RANGE:
                later = time.monotonic_ns() + 60 * 10**9
                req = {k: (sfc if v == "SFC" else later if v == "IN_A_MINUTE" else v) for k, v in req.items()}
                rep = ask(c, req)
                assert rep["ok"] is False and want in rep["error"], (req, rep)
            forwarding(r)
            wake = p.settings["wake_batch"]   # in range: taken (the value serpensd runs with)
            assert ask(c, {"cmd": "set", "wake_batch": wake})["ok"] is True
    # nothing refused changed anything: the same instances run, no SFC "p" was deployed
    assert [i["instance"] for i in p.stats()["instances"] if i["state"] == "ready"] == running
    assert all(s["name"] != "p" for s in p.stats()["sfcs"])


def test_an_nf_argument_typo_is_refused_naming_the_key_and_the_known_ones(r: Rig) -> None:
    nfs = Path(r.platform.settings["nfs_dir"])
    fw = (nfs if nfs.is_absolute() else Path.cwd() / nfs) / "fw.so"
    ctl = r.platform.controller
    assert ctl is not None
    with pytest.raises(SerpensError) as err:
        ctl.deploy_nf("fwtypo", str(fw), {"blaklist": "udp,16.0.0.1,*,*,*"})
    assert str(err.value) == ("deploy_nf fwtypo: unknown argument 'blaklist'; the NF takes mode, blacklist, "
                              "whitelist, suspicious")
    # refused before its init ran: nothing of it stays behind, the corrected deployment goes through
    assert ctl.deploy_nf("fwtypo", str(fw), {"blacklist": "udp,16.0.0.1,*,*,*"}) == ["fwtypo/fw_exact"]


def test_a_scaling_request_waiting_for_its_at_ns_does_not_hold_up_another_client(r: Rig) -> None:
    p = r.platform
    sfc = p.stats()["sfcs"][0]["name"]
    with abuse(r):
        with connect(p.control_socket, timeout=30.0) as waiting, connect(p.control_socket) as other:
            at = time.monotonic_ns() + 3 * 10**9
            waiting.sendall((json.dumps({"cmd": "start_instance", "sfc": sfc, "at_ns": at}) + "\n").encode())
            time.sleep(0.1)   # let serpensd read and park it (the test's pacing, not a measured delay)
            assert ask(other, {"cmd": "stats"})["ok"] is True
            forwarding(r)
            # the other client's reply came first; the parked request is answered once its time has come
            assert not select.select([waiting], [], [], 0)[0] or time.monotonic_ns() >= at
            started = json.loads(read_line(waiting))
            assert time.monotonic_ns() >= at
            assert started["ok"] is True, started
            assert ask(other, {"cmd": "stop_instance", "instance": started["instance"]})["ok"] is True


def test_requests_pipelined_on_one_connection_are_answered_in_order(r: Rig) -> None:
    wake = int(r.platform.settings["wake_batch"])
    with connect(r.platform.control_socket) as c:
        c.sendall(b'{"cmd":"set","wake_batch":%d}\n{"cmd":"nope"}\n{"cmd":"stats"}\n' % wake)
        got = [json.loads(read_line_one(c)) for _ in range(3)]
    assert got[0] == {"ok": True}
    assert got[1] == {"ok": False, "error": "unknown command 'nope'"}
    assert got[2]["ok"] is True and "port" in got[2]
    alive(r)


_pending: dict[int, bytes] = {}


def read_line_one(sock: socket.socket) -> bytes:
    """One line, keeping what came after it for the next call (replies to pipelined requests)."""
    buf = _pending.pop(sock.fileno(), b"")
    while b"\n" not in buf:
        chunk = sock.recv(1 << 16)
        assert chunk, "serpensd closed the connection"
        buf += chunk
    line, rest = buf.split(b"\n", 1)
    _pending[sock.fileno()] = rest
    return line


def test_a_thread_per_client_sees_only_its_own_replies(r: Rig) -> None:
    """Concurrent clients, each with its own requests in flight: no reply goes to the wrong client."""
    errors: list[str] = []

    def client(k: int) -> None:
        try:
            with connect(r.platform.control_socket) as c:
                for _ in range(20):
                    rep = ask(c, {"cmd": "dump_table", "table": f"nosuch{k}"})
                    if f"nosuch{k}" not in rep.get("error", ""):
                        errors.append(f"client {k} got {rep}")
        except Exception as exc:  # noqa: BLE001 - reported below, with the client
            errors.append(f"client {k}: {exc!r}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors[:3]
    alive(r)
