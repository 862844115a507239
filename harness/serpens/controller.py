"""The Python controller of serpensd: a client for its control socket (docs/serpens-control.md).

serpensd listens on a Unix stream socket. The controller sends one JSON object per line and reads one JSON
object per line back; requests are answered one at a time, in order. A reply with ``"ok": false`` becomes a
:class:`SerpensError` carrying serpensd's own message (which names the NF, SFC or table); a socket nobody
listens on, or one that closes under a request, becomes a :class:`SerpensConnectionError` that names the
socket and says serpensd is not running. A request longer than serpensd's limit (``REQUEST_MAX_BYTES``) is
refused here, before it is sent, and an error serpensd wrote before closing the connection is reported as
what it is: neither is "serpensd is not running".

    with Controller("/run/serpens-harness/<run>/serpensd.sock") as ctl:
        ctl.deploy_nf("nat", "/abs/build/native/nfs/nat.so", {"external_ip": "198.18.1.1"})
        ctl.deploy_sfc("web", {"dst": "48.0.0.0/8"}, ["nat"])
        slot = ctl.start_instance("web")["instance"]
        ctl.read_state("nat/nat_pool", (0).to_bytes(4, "little"))
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from harness.platforms.base import PlatformError

DEFAULT_CONNECT_TIMEOUT_S = 10.0
# serpensd reads at most this many bytes of one request line, newline included (control_socket.c
# REQ_MAX_BYTES); a longer one is answered with an error and the connection closed.
REQUEST_MAX_BYTES = 1 << 20
# start_instance waits for a runtime process to map its NFs and say it is ready; stop_instance drains and
# merges state back. Both are milliseconds on this machine; the bound is for a wedged daemon.
DEFAULT_REQUEST_TIMEOUT_S = 30.0


class SerpensError(PlatformError):
    """serpensd refused a request (``"ok": false``); the message is serpensd's ``error``."""

    def __init__(self, error: str, request: Mapping[str, Any] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.request = dict(request or {})


class SerpensConnectionError(SerpensError):
    """The control socket cannot be reached, closed, or did not answer: serpensd is not running (any more)."""


class Controller:
    """A connection to one serpensd. Thread-safe: requests are serialised, as serpensd handles them."""

    def __init__(self, socket_path: str, connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
                 request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S) -> None:
        self.socket_path = str(socket_path)
        self.connect_timeout_s = connect_timeout_s
        self.request_timeout_s = request_timeout_s
        self._sock: socket.socket | None = None
        self._rfile: Any = None
        self._lock = threading.Lock()

    # --- connection -------------------------------------------------------------------------------------

    def connect(self, timeout_s: float | None = None) -> Controller:
        """Connect, retrying until ``timeout_s`` (default: the constructor's) while serpensd comes up."""
        if self._sock is not None:
            return self
        timeout = self.connect_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout
        last: OSError | None = None
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.socket_path)
            except OSError as exc:
                sock.close()
                last = exc
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.02)
                continue
            sock.settimeout(self.request_timeout_s)
            self._sock = sock
            self._rfile = sock.makefile("rb")
            return self
        reason = last.strerror if last is not None and last.strerror else str(last)
        raise SerpensConnectionError(
            f"cannot connect to serpensd's control socket {self.socket_path} within {timeout:g} s "
            f"({reason}): serpensd is not running (or not with --control {self.socket_path})")

    def close(self) -> None:
        if self._rfile is not None:
            try:
                self._rfile.close()
            except OSError:
                pass
            self._rfile = None
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def __enter__(self) -> Controller:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the one primitive ------------------------------------------------------------------------------

    def request(self, cmd: str, _timeout_s: float | None = None, **fields: Any) -> dict[str, Any]:
        """Send ``{"cmd": cmd, **fields}``, return the reply; ``ok: false`` raises :class:`SerpensError`."""
        req, line = self.encode(cmd, fields)
        with self._lock:
            if self._sock is None:
                self.connect()
            assert self._sock is not None
            if _timeout_s is not None:
                self._sock.settimeout(_timeout_s)
            try:
                self._sock.sendall(line)
                raw = self._rfile.readline()
            except TimeoutError:
                self.close()  # the reply may still come: the stream is out of step, start afresh
                raise SerpensConnectionError(
                    f"serpensd did not answer {cmd!r} on {self.socket_path} within "
                    f"{_timeout_s or self.request_timeout_s:g} s") from None
            except OSError as exc:
                # serpensd may have refused the request and closed: its reason is on the socket, read it
                # before deciding that serpensd is gone
                why = self._parting_error()
                self.close()
                if why is not None:
                    raise SerpensError(f"serpensd closed the connection during {cmd!r}: {why}", req) from None
                raise SerpensConnectionError(
                    f"lost serpensd's control socket {self.socket_path} during {cmd!r} ({exc}): "
                    "serpensd is not running any more") from exc
            finally:
                if _timeout_s is not None and self._sock is not None:
                    self._sock.settimeout(self.request_timeout_s)
            if not raw:
                self.close()
                raise SerpensConnectionError(
                    f"serpensd closed its control socket {self.socket_path} during {cmd!r}: "
                    "serpensd is not running any more (see its log)")
        return self.parse_reply(cmd, raw, req)

    @staticmethod
    def encode(cmd: str, fields: Mapping[str, Any]) -> tuple[dict[str, Any], bytes]:
        """The request object and its line; a line over serpensd's limit is refused here, before it is sent
        (serpensd would refuse it and close the connection)."""
        req = {"cmd": cmd, **fields}
        line = (json.dumps(req, separators=(",", ":")) + "\n").encode()
        if len(line) > REQUEST_MAX_BYTES:
            raise SerpensError(f"request {cmd!r} is {len(line)} bytes: serpensd takes at most "
                               f"{REQUEST_MAX_BYTES} bytes per request (an argument or a field is too long)",
                               {"cmd": cmd})
        return req, line

    @staticmethod
    def parse_reply(cmd: str, raw: bytes, req: Mapping[str, Any]) -> dict[str, Any]:
        """serpensd's reply line to ``req``: the object, or :class:`SerpensError` when it says ``ok: false``
        or is not a reply at all."""
        try:
            reply = json.loads(raw)
        except ValueError:
            raise SerpensError(f"serpensd answered {cmd!r} with something that is not JSON: "
                               f"{raw[:200]!r}", req) from None
        if not isinstance(reply, dict) or "ok" not in reply:
            raise SerpensError(f"serpensd answered {cmd!r} without an 'ok' field: {raw[:200]!r}", req)
        if reply["ok"] is not True:
            raise SerpensError(str(reply.get("error") or f"serpensd refused {cmd!r} without saying why"),
                               req)
        return reply

    def _parting_error(self) -> str | None:
        """The error serpensd wrote before it closed the connection (a request too long), if any."""
        if self._sock is None or self._rfile is None:
            return None
        try:
            self._sock.settimeout(1.0)
            raw = self._rfile.readline()
            reply = json.loads(raw) if raw else None
        except (OSError, ValueError):
            return None
        if isinstance(reply, dict) and reply.get("ok") is False and reply.get("error"):
            return str(reply["error"])
        return None

    # --- the protocol's requests ------------------------------------------------------------------------

    def deploy_nf(self, name: str, path: str, args: Mapping[str, Any] | None = None,
                  tenant: str | None = None) -> list[str]:
        """Load an NF object as deployment ``name`` (of ``tenant``, serpensd's default "default") and run its
        init; returns the tables it created."""
        extra: dict[str, Any] = {"tenant": tenant} if tenant is not None else {}
        reply = self.request("deploy_nf", name=name, path=str(path),
                             args={k: _arg(v) for k, v in (args or {}).items()}, **extra)
        return list(reply.get("tables", []))

    def deploy_sfc(self, name: str, match: Mapping[str, Any] | None, graph: Sequence[Any],
                   tenant: str | None = None) -> int:
        """Declare an SFC (graph as in docs/serpens-control.md) of ``tenant``; returns its id."""
        extra: dict[str, Any] = {"tenant": tenant} if tenant is not None else {}
        reply = self.request("deploy_sfc", name=name, match=dict(match or {}), graph=list(graph), **extra)
        return int(reply["sfc"])

    def start_instance(self, sfc: str, pin: bool = False, at_ns: int | None = None) -> dict[str, Any]:
        """Start an instance of ``sfc``: ``{"instance": slot, "pid": pid, "startup_us": t, "moves": [...]}``
        (the moves that gave it its share of the flows; docs/scaling.md). ``pin`` (serpensd --pin-flows):
        existing flows stay where they are, only new flows go to it. ``at_ns``: serpensd acts at that
        ``time.monotonic_ns()`` (at most 10 s ahead), so the request can be sent early."""
        extra: dict[str, Any] = {"pin": True} if pin else {}
        if at_ns is not None:
            extra["at_ns"] = int(at_ns)
        reply = self.request("start_instance", sfc=sfc, **extra)
        return {k: v for k, v in reply.items() if k != "ok"}

    def start_instances(self, sfc: str, n: int, pooled: bool = False,
                        timeout_s: float = 60.0) -> dict[str, Any]:
        """Start ``n`` instances of ``sfc`` together (Fig. 11(a); consolidated chaining): ``{"n",
        "all_ready_us", "pooled", "startup", "instances": [{"instance", "pid", "startup_us", "steps",
        "loader", ...}]}``, all or nothing (docs/serpens-control.md). ``pooled``: refused unless n pool
        processes wait (no cold start among them). ``timeout_s``: n cold starts take seconds."""
        extra: dict[str, Any] = {"pooled": True} if pooled else {}
        reply = self.request("start_instances", _timeout_s=timeout_s, sfc=sfc, n=int(n), **extra)
        return {k: v for k, v in reply.items() if k != "ok"}

    def stop_instance(self, slot: int) -> int:
        """Stop an instance (drained, state merged back); returns how many queued packets it drained."""
        return int(self.scale_in(slot).get("drained", 0))

    def scale_in(self, slot: int, at_ns: int | None = None) -> dict[str, Any]:
        """Stop an instance after its flows moved to the SFC's other instances: ``{"drained": n, "moves":
        [record, ...]}`` (the move records of docs/scaling.md); ``at_ns`` as for :meth:`start_instance`."""
        extra = {} if at_ns is None else {"at_ns": int(at_ns)}
        reply = self.request("stop_instance", instance=int(slot), **extra)
        return {k: v for k, v in reply.items() if k != "ok"}

    def move_flows(self, sfc: str, from_slot: int, to_slot: int, *, fraction: float | None = None,
                   buckets: list[int] | None = None) -> dict[str, Any]:
        """Move the flows of some router buckets of ``sfc`` between two of its instances through serpensd's
        scaling protocol (``fraction`` of ``from_slot``'s buckets, default half, or the given ``buckets``);
        returns the move's record (docs/scaling.md)."""
        args: dict[str, Any] = {"sfc": sfc, "from": int(from_slot), "to": int(to_slot)}
        if fraction is not None:
            args["fraction"] = float(fraction)
        if buckets is not None:
            args["buckets"] = [int(b) for b in buckets]
        return dict(self.request("move_flows", **args)["move"])

    def stats(self) -> dict[str, Any]:
        """Counters: port, gateway, sfcs, instances, state."""
        reply = self.request("stats")
        return {k: v for k, v in reply.items() if k != "ok"}

    def read_state(self, table: str, key: bytes) -> bytes:
        """The merged value of ``key`` in ``table`` ("deployment/table")."""
        reply = self.request("read_state", table=table, key=bytes(key).hex())
        return bytes.fromhex(reply["value"])

    def dump_table(self, table: str, limit: int = 1 << 20) -> dict[bytes, bytes]:
        """Every live key of ``table`` with its merged value (at most ``limit``)."""
        reply = self.request("dump_table", table=table, limit=int(limit))
        return {bytes.fromhex(k): bytes.fromhex(v) for k, v in reply.get("entries", [])}

    # --- across servers (docs/multiserver.md) ---

    def link_route(self, sfc: str, server: int, buckets: list[int] | None = None) -> int:
        """Gateway: route ``buckets`` (all if None) of ``sfc`` to worker ``server`` (0: this server's own
        instances); flows already seen stay where they are. Returns how many buckets changed."""
        fields: dict[str, Any] = {"sfc": sfc, "server": int(server)}
        if buckets is not None:
            fields["buckets"] = [int(b) for b in buckets]
        return int(self.request("link_route", **fields)["buckets"])

    def link_steer(self, sfc: str, dst: str, server: int, ports: list[tuple[int, int]]) -> int:
        """Gateway: packets of ``sfc`` to ``dst`` with a destination port in ``ports`` (inclusive ranges) go
        to worker ``server`` (0: this server), whatever their bucket. Returns how many ports changed."""
        return int(self.request("link_steer", sfc=sfc, dst=dst, server=int(server),
                                ports=[[int(lo), int(hi)] for lo, hi in ports])["ports"])

    def share_list(self) -> list[dict[str, Any]]:
        """Every release pool of this State Manager: ``{"table", "key" (hex), "nfree", "cap"}``."""
        return list(self.request("share_list")["pools"])

    def share_export(self, table: str, key: str, count: int) -> list[int]:
        """Take up to ``count`` free items out of the pool's base value (they leave this server)."""
        return [int(i) for i in self.request("share_export", table=table, key=key, count=int(count))["items"]]

    def share_import(self, table: str, key: str, items: list[int], replace: bool) -> int:
        """Put exported items into this server's pool (replace: instead of its own); returns its nfree."""
        return int(self.request("share_import", table=table, key=key, items=list(items),
                                replace=bool(replace))["nfree"])

    def set(self, **knobs: Any) -> None:
        """Runtime knobs, e.g. ``set(keep_warm_s=30, wake_batch=128, flush_us=50)``."""
        if not knobs:
            raise ValueError("set() needs at least one knob, e.g. wake_batch=128")
        self.request("set", **knobs)

    def shutdown(self, timeout_s: float | None = None) -> None:
        """Stop every instance and exit. serpensd may close the socket instead of answering: that is fine."""
        try:
            self.request("shutdown", _timeout_s=timeout_s)
        except SerpensConnectionError:
            pass
        finally:
            self.close()


def _arg(value: Any) -> str:
    """Deployment arguments reach the NF as strings (nf.h: sp_arg)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise TypeError(f"an NF argument must be a string or a number, got {value!r}")
