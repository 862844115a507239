"""serpens-gproxy, the global proxy of the global-proxy chaining mode, on its own.

The proxy is a real DPDK primary connected by a real memif link to serpens-gproxy-peer, which plays serpensd's
side: it owns the directory (the instances it publishes per (SFC, position)) and the memif server, sends
frames with the wire header, rings the proxy and waits until it is done (the --colocate hand-off), and reads
back what the proxy returned. These pin the proxy's behaviour: which instance it chooses, holding packets
while no instance exists and delivering them in order once one is published, the bound of the hold buffer,
the counters, and clean exit (docs/chaining-global-proxy.md).
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import config as cfg
from harness.native import RunDir, binary, die_with_parent, eal_args, start_daemon, tail, terminate

pytestmark = pytest.mark.dpdk

PROXY = "build/native/gproxy/serpens-gproxy"
PEER = "build/native/gproxy/serpens-gproxy-peer"


@dataclass
class Pkt:
    sfc: int
    hop: int
    slot: int
    flow: int
    seq: int


class Peer:
    """Drives serpens-gproxy-peer over its stdin/stdout line protocol (native/gproxy/peer.c)."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log
        self.buf = b""

    def _line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise AssertionError(f"the peer did not answer; its log:\n{tail(self.log)}")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                self.buf += self.proc.stdout.read1(65536)  # type: ignore[attr-defined]
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def cmd(self, line: str, timeout: float = 10.0) -> tuple[str, list[str]]:
        """Send one command; return its final "ok ..." line (without "ok") and the lines before it."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        lines = []
        while True:
            got = self._line(timeout)
            if got.startswith("error"):
                raise AssertionError(f"peer: {line!r}: {got}")
            if got.startswith("ok"):
                return got[2:].strip(), lines
            lines.append(got)

    def route(self, sfc: int, pos: int, slots: list[int]) -> None:
        self.cmd(f"route {sfc} {pos} {' '.join(map(str, slots))}")

    def send(self, sfc: int, pos: int, flow: int, count: int, bad: bool = False) -> int:
        reply, _ = self.cmd(f"send {sfc} {pos} {flow} {count}{' bad' if bad else ''}")
        return int(reply.split()[1])

    def recv(self, count: int, timeout_ms: int = 500) -> list[Pkt]:
        _, lines = self.cmd(f"recv {count} {timeout_ms}", timeout=timeout_ms / 1000 + 10)
        out = []
        for ln in lines:
            f = ln.split()
            assert f[0] == "pkt" and len(f) == 6, f"unexpected frame back from the proxy: {ln}"
            out.append(Pkt(*(int(x) for x in f[1:])))
        return out

    def stats(self) -> dict[str, int]:
        reply, _ = self.cmd("stats")
        return {k: int(v) for k, v in (kv.split("=") for kv in reply.split())}

    def pair(self, sfc: int, pos: int) -> dict[str, int]:
        reply, _ = self.cmd(f"pair {sfc} {pos}")
        return {k: int(v) for k, v in (kv.split("=") for kv in reply.split())}


Link = tuple[Peer, "subprocess.Popen[bytes]"]


@pytest.fixture
def link(dpdk_ready: cfg.Config, request: pytest.FixtureRequest) -> Iterator[Link]:
    """A peer (memif server, directory owner) and a proxy connected to it; `hold` via indirect param."""
    hold = getattr(request, "param", 64)
    run = RunDir(dpdk_ready, "gproxy-test")
    lcore = dpdk_ready["cores"]["platform"]
    sock = run / "gproxy.sock"
    directory = run / "gproxy.dir"
    vdev = f"net_memif0,socket={sock},id=0,rsize=12"
    peer_log, proxy_log = run / "peer.log", run / "gproxy.log"
    # the peer's replies come on its stdout, so it is not a start_daemon() daemon: it gets our pipes
    with open(peer_log, "ab") as log:
        peer_proc = subprocess.Popen([str(binary(PEER)), *eal_args(lcore, None, [vdev + ",role=server"],
                                                                   in_memory=True),
                                      "--", "-d", str(directory)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                     preexec_fn=die_with_parent)
    peer = Peer(peer_proc, peer_log)
    proxy = None
    try:
        assert peer._line(30) == "READY"
        proxy_cmd = [str(binary(PROXY)), *eal_args(lcore, None, [vdev + ",role=client"], in_memory=True),
                     "--", "--dir", str(directory), "--hold", str(hold)]
        proxy = start_daemon(proxy_cmd, proxy_log, 30, "serpens-gproxy")
        assert peer.cmd("link 10")[0] == "up"
        yield peer, proxy
    finally:
        if proxy is not None:
            terminate(proxy)
        if peer_proc.poll() is None:
            assert peer_proc.stdin is not None
            peer_proc.stdin.close()
            try:
                peer_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                terminate(peer_proc)
        run.remove()


def test_proxy_chooses_a_ready_instance_and_a_flow_sticks_to_it(link: Link) -> None:
    peer, _ = link
    peer.route(2, 1, [3, 5, 9])
    flows = list(range(1000, 1048))
    for flow in flows:
        assert peer.send(2, 1, flow, 4) == 4
    back = peer.recv(len(flows) * 4)
    assert len(back) == len(flows) * 4
    chosen: dict[int, set[int]] = {}
    for p in back:
        assert (p.sfc, p.hop) == (2, 1)
        chosen.setdefault(p.flow, set()).add(p.slot)
    assert all(len(s) == 1 for s in chosen.values()), "a flow went to two instances"
    # the Router's rule: bucket = flow mod 256, buckets dealt round-robin over the listed instances
    assert {f: s.pop() for f, s in chosen.items()} == {f: [3, 5, 9][(f & 255) % 3] for f in flows}
    assert peer.pair(2, 1)["routed"] == len(back)
    st = peer.stats()
    assert st["rx"] == st["tx"] == len(back) and st["held"] == 0 and st["bad_header"] == 0


def test_proxy_holds_packets_until_an_instance_exists_then_delivers_them_in_order(
        link: Link) -> None:
    peer, _ = link
    assert peer.send(0, 2, 77, 10) == 10
    assert peer.recv(10, timeout_ms=200) == [], "a packet went back although no instance was listed"
    pair = peer.pair(0, 2)
    assert pair["held"] == 10 and pair["wanted"] == 10 and pair["delivered_after_hold"] == 0
    assert peer.stats()["held_now"] == 10
    # more arrive while held ones wait: they queue behind them
    assert peer.send(0, 2, 78, 5) == 5
    peer.route(0, 2, [6])       # serpensd started one: the proxy is rung and delivers
    back = peer.recv(15)
    assert [p.slot for p in back] == [6] * 15
    assert [p.seq for p in back] == sorted(p.seq for p in back), "held packets came back out of order"
    assert [p.flow for p in back] == [77] * 10 + [78] * 5
    pair = peer.pair(0, 2)
    assert pair["held"] == 15 and pair["delivered_after_hold"] == 15 and pair["routed"] == 15
    assert peer.stats()["held_now"] == 0
    # once the instance is listed, new packets go straight through
    assert peer.send(0, 2, 79, 3) == 3
    assert [p.slot for p in peer.recv(3)] == [6] * 3
    assert peer.pair(0, 2)["held"] == 15


@pytest.mark.parametrize("link", [8], indirect=True)
def test_a_full_hold_buffer_drops_and_counts(link: Link) -> None:
    peer, _ = link
    assert peer.send(1, 0, 5, 20) == 20
    pair = peer.pair(1, 0)
    assert pair["held"] == 8 and pair["hold_dropped"] == 12 and pair["wanted"] == 20
    # another pair has its own buffer
    assert peer.send(1, 1, 5, 3) == 3
    assert peer.pair(1, 1)["held"] == 3
    peer.route(1, 0, [2])
    assert len(peer.recv(8)) == 8
    st = peer.stats()
    assert st["held"] == 11 and st["hold_dropped"] == 12 and st["delivered_after_hold"] == 8
    # conservation: everything received is sent back, held, or dropped with a reason
    assert st["rx"] == st["tx"] + st["held_now"] + st["hold_dropped"] + st["bad_header"] + st["link_full"]


def test_frames_without_the_wire_header_are_dropped_and_counted(link: Link) -> None:
    peer, _ = link
    peer.route(0, 0, [1])
    assert peer.send(0, 0, 9, 7, bad=True) == 7
    assert peer.send(0, 0, 9, 2) == 2
    assert [p.slot for p in peer.recv(9, timeout_ms=300)] == [1, 1]
    st = peer.stats()
    assert st["bad_header"] == 7 and st["tx"] == 2


def test_proxy_sleeps_between_bursts_and_leaves_when_told(link: Link) -> None:
    peer, proxy = link
    peer.route(0, 0, [4])
    before = peer.stats()
    for _ in range(5):
        assert peer.send(0, 0, 1, 32) == 32
        assert len(peer.recv(32)) == 32
    after = peer.stats()
    # the hand-off: every burst rang a sleeping proxy, which drained the link and went back to sleep
    assert after["wakeups"] - before["wakeups"] >= 5 and after["sleeps"] - before["sleeps"] >= 5
    assert after["pid"] == proxy.pid
    peer.cmd("stop")
    assert proxy.wait(timeout=10) == 0
    assert peer.stats()["pid"] == 0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")   # utime + stime


def test_idle_proxy_sleeps_instead_of_polling_the_shared_core(link: Link) -> None:
    peer, proxy = link
    peer.route(0, 0, [1])
    assert peer.send(0, 0, 1, 8) == 8 and len(peer.recv(8)) == 8
    before = cpu_seconds(proxy.pid)
    time.sleep(1.0)
    # a busy-polling proxy would have used the whole second; a sleeping one wakes every 100 ms at most
    assert cpu_seconds(proxy.pid) - before < 0.2
