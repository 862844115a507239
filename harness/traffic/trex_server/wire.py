"""The two ZMQ channels of a TRex server: RPC (REQ/REP, default port 4501) and the async publisher (PUB,
default 4500).

* RPC: one request, one reply, strictly alternating (ZMQ's REP socket enforces it). trex-stl-lib compresses
  a request of 256 bytes or more: 4-byte magic ``0xABE85CEA``, 4-byte uncompressed length (big-endian),
  then zlib. Such requests are inflated here; replies go out as plain UTF-8 JSON, which the client accepts
  (it inflates only what carries the magic).
* Publisher: JSON objects ``{"name", "type", "data", "baseline"}`` — ``trex-global`` (counters),
  ``trex-event`` (port started/stopped/job done...), ``trex-barrier`` (the answer to ``publish_now``).
  A ZMQ socket is not thread-safe, so every send takes a lock.
"""

from __future__ import annotations

import json
import logging
import struct
import threading
import zlib
from collections.abc import Callable
from typing import Any

import zmq

log = logging.getLogger(__name__)

COMPRESS_MAGIC = 0xABE85CEA


def inflate(raw: bytes) -> bytes:
    """A request as sent, uncompressed (trex-stl-lib's ZippedMsg framing), or ValueError."""
    if len(raw) >= 8:
        magic, size = struct.unpack(">II", raw[:8])
        if magic == COMPRESS_MAGIC:
            try:
                body = zlib.decompress(raw[8:])
            except zlib.error as exc:
                raise ValueError(f"compressed request does not inflate: {exc}") from None
            if len(body) != size:
                raise ValueError(f"compressed request inflates to {len(body)} bytes, header says {size}")
            return body
    return raw


def _endpoint(host: str, port: int) -> str:
    return f"tcp://{host}:{port if port else '*'}"


def _bound_port(sock: zmq.Socket) -> int:
    endpoint = sock.getsockopt(zmq.LAST_ENDPOINT).decode()
    return int(endpoint.rsplit(":", 1)[1])


class Publisher:
    """The async channel (PUB)."""

    def __init__(self, context: zmq.Context, host: str, port: int) -> None:
        self.sock = context.socket(zmq.PUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(_endpoint(host, port))
        self.port = _bound_port(self.sock)
        self.lock = threading.Lock()

    def publish(self, name: str, data: Any, kind: int | str = 0, baseline: bool = False) -> None:
        text = json.dumps({"name": name, "type": kind, "data": data, "baseline": baseline})
        with self.lock:
            try:
                self.sock.send(text.encode())
            except zmq.ZMQError as exc:   # closing down
                log.debug("publisher: %s", exc)

    def close(self) -> None:
        with self.lock:
            self.sock.close(linger=0)


class RpcSocket:
    """The RPC channel (REP); :meth:`serve` answers requests until :meth:`stop`."""

    def __init__(self, context: zmq.Context, host: str, port: int) -> None:
        self.sock = context.socket(zmq.REP)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(_endpoint(host, port))
        self.port = _bound_port(self.sock)
        self._stop = threading.Event()

    def serve(self, handle: Callable[[str], str], poll_ms: int = 100) -> None:
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        while not self._stop.is_set():
            if not dict(poller.poll(poll_ms)):
                continue
            raw = self.sock.recv()
            try:
                text = inflate(raw).decode("utf-8")
            except (ValueError, UnicodeDecodeError) as exc:
                answer = json.dumps({"jsonrpc": "2.0", "id": None,
                                     "error": {"code": -32700, "message": "Bad JSON Format",
                                               "specific_err": f"unreadable request: {exc}"}})
            else:
                try:
                    answer = handle(text)
                except Exception as exc:   # never leave a REP socket without its reply: the client hangs
                    log.exception("RPC request failed")
                    answer = json.dumps({"jsonrpc": "2.0", "id": None,
                                         "error": {"code": -32000, "message": "Server error",
                                                   "specific_err": f"internal error: {exc}"}})
            self.sock.send(answer.encode())   # REP: every request gets exactly one reply

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.sock.close(linger=0)
