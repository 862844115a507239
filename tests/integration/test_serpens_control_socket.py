"""serpensd's control socket against a client that leaves early (docs/serpens-control.md), with the real
serpensd of the `serpens` platform and the real generator on a DPDK memif link.

A client that closes its connection before reading its reply must cost serpensd nothing: writing that reply
fails (EPIPE, never a SIGPIPE that would kill the daemon), serpensd drops the client, and keeps answering
requests and forwarding packets.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from harness import config as cfg
from harness.rig import Rig, rig
from harness.serpens.sfc import SfcSpec
from harness.traffic import profiles
from tests.integration.packets import LOAD_DST

pytestmark = pytest.mark.dpdk


def forwards_everything(r: Rig) -> None:
    res = r.generator.run_trial(profiles.udp_flows(20_000, 64, 8, dst=LOAD_DST), duration=0.3)
    assert res.tx_packets > 5000
    assert res.rx_packets == res.tx_packets, f"tx {res.tx_packets}, rx {res.rx_packets}"


def connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10.0)
    sock.connect(str(path))
    return sock


def ask(sock: socket.socket, cmd: str) -> dict[str, Any]:
    """One request on a raw connection, and its one-line reply."""
    sock.sendall((json.dumps({"cmd": cmd}) + "\n").encode())
    line = b""
    while not line.endswith(b"\n"):
        chunk = sock.recv(1 << 16)
        assert chunk, f"serpensd closed the connection during {cmd!r}"
        line += chunk
    return json.loads(line)


def test_a_client_that_closes_before_reading_its_reply_leaves_serpensd_answering_and_forwarding(
        dpdk_ready: cfg.Config) -> None:
    with rig(dpdk_ready, "serpens", sfc=SfcSpec.linear("fw")) as r:
        p = r.platform
        assert p.controller is not None and p.proc is not None
        forwards_everything(r)
        # serpensd serves one client at a time. The platform's own connection steps aside (it reconnects
        # on its next request); a holder keeps serpensd busy while the quitter queues a request and closes,
        # so serpensd reads that request, and writes its reply, only after the quitter has gone: the write
        # certainly meets a closed socket.
        p.controller.close()
        holder = connect(p.control_socket)
        try:
            assert ask(holder, "stats")["ok"] is True   # serpensd is serving the holder now
            quitter = connect(p.control_socket)
            quitter.sendall(b'{"cmd":"stats"}\n')
            quitter.close()
        finally:
            holder.close()
        # queued behind the quitter: answered only once serpensd has written into the closed socket
        stats = p.stats()
        assert p.proc.poll() is None, "serpensd exited after a client closed before its reply"
        assert any(i["alive"] for i in stats["instances"])
        with connect(p.control_socket) as again:   # a fresh raw client is served as well
            p.controller.close()
            assert ask(again, "stats")["ok"] is True
        forwards_everything(r)
        assert p.proc.poll() is None
