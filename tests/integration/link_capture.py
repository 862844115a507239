"""A capture on a Linux interface with an AF_PACKET socket (what tcpdump does, without a pcap file): every
frame the interface receives or sends, in order, while the ``with`` block runs."""

from __future__ import annotations

import select
import socket
import threading
from types import TracebackType

ETH_P_ALL = 0x0003


class LinkCapture:
    def __init__(self, iface: str, limit: int = 200_000) -> None:
        self.iface = iface
        self.limit = limit
        self.frames: list[bytes] = []
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
        self._sock.bind((iface, 0))
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self._sock], [], [], 0.05)
            if not ready:
                continue
            while len(self.frames) < self.limit:
                try:
                    self.frames.append(self._sock.recv(65536, socket.MSG_DONTWAIT))
                except BlockingIOError:
                    break

    def __enter__(self) -> LinkCapture:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()
