"""What a platform is to the harness: something that starts, carries packets from the generator's link and
back, reports its counters, and stops.

A platform that runs NFs is a point in the four-axis design space of DESIGN.md section 3 (startup, state,
chaining, scaling): harness/platforms/designs.py names those points. This module only fixes how the harness
drives a platform.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

from harness.config import Config
from harness.native import RunDir


@dataclass(frozen=True)
class MemifLink:
    """The virtual cable between the built-in generator and a platform on one machine.

    The platform is the memif *server* (it owns the socket and outlives generator processes); each
    generator trial connects as a client. Copy mode: the wire forwards 13–16 Mpps of 64 B frames through
    it on this machine kind.
    """

    socket: str
    link_id: int = 0
    # log2 of the ring size (memif's maximum, 2^14 = 16384 slots). Deep rings let the link absorb the
    # millisecond-long vCPU stalls of a virtual machine the way a NIC's deep queues would; the default
    # 1024 slots overflow at 1 Mpps after 1 ms of stall.
    ring_log2: int = 14

    def _vdev(self, index: int, role: str) -> str:
        return (f"net_memif{index},role={role},socket={self.socket},id={self.link_id},"
                f"rsize={self.ring_log2}")

    def server_vdev(self, index: int = 0) -> str:
        return self._vdev(index, "server")

    def client_vdev(self, index: int = 0) -> str:
        return self._vdev(index, "client")


class PlatformError(RuntimeError):
    """The platform could not start, died, or rejected a request."""


class Platform(abc.ABC):
    name: str = "abstract"
    workload: str = ""
    runs_sfc: bool = False  # True when the platform runs NFs and takes an SFC (sfc=...)

    def __init__(self, config: Config, run_dir: RunDir) -> None:
        self.config = config
        self.run_dir = run_dir
        self.link = MemifLink(socket=str(run_dir / "memif.sock"))

    @abc.abstractmethod
    def start(self) -> None:
        """Start and return once the data plane is ready for packets."""

    @abc.abstractmethod
    def stop(self) -> dict[str, Any]:
        """Stop; return the final counters."""

    @abc.abstractmethod
    def stats(self) -> dict[str, Any]:
        """A snapshot of the data plane's counters while it runs."""

    def generator_vdevs(self) -> list[str]:
        """The ``--vdev`` arguments a built-in generator uses to reach this platform."""
        return [self.link.client_vdev()]

    def describe(self) -> dict[str, Any]:
        """What to record in the run metadata (binary, cores, settings)."""
        return {"platform": self.name}

    def __enter__(self) -> Platform:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        try:
            self.stop()
        except PlatformError:
            # leaving because of an error (a trial that saw the platform die, an interrupt): stopping it says
            # the same again, less well ("serpensd was killed" in place of the trial that saw it), and would
            # replace it. stop() has removed what it could before raising; the first error stands.
            if exc_type is None:
                raise
