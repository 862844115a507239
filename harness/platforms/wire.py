"""The wire: a DPDK forwarder that sends every packet straight back out (serpens-wire, native/wire).

It is the simplest platform and the ceiling every other platform is compared with: the same substrate
serpensd uses (DPDK primary, memif port, one busy-polling lcore), with no NF work at all.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import Any

from harness import tsc
from harness.native import NativeError, binary, cleanup_prefix, eal_args, ended, start_daemon, tail, terminate
from harness.platforms.base import Platform, PlatformError


class WirePlatform(Platform):
    name = "wire"
    workload = "forward"

    def __init__(self, config: Any, run_dir: Any) -> None:
        super().__init__(config, run_dir)
        self.settings = config["platforms"]["wire"]
        self.lcore = config["cores"]["platform"]
        self.prefix = f"wire-{run_dir.tag}"
        self.stats_file = run_dir / "wire-stats.json"
        self.log_file = run_dir / "wire.log"   # stderr goes to a file: a pipe nobody reads could fill up
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        cmd = [str(binary(self.settings["binary"])),
               *eal_args(self.lcore, self.prefix, [self.link.server_vdev()]),
               "--", "--stats", str(self.stats_file), "--burst", str(self.settings["burst"])]
        kernel = tsc.kernel_tsc()
        if kernel is not None:   # its busy time in ns from the kernel's TSC calibration (harness/tsc.py)
            cmd += ["--tsc-hz", str(kernel.hz)]
        return cmd

    def start(self) -> None:
        if self.proc is not None:
            return
        try:
            self.proc = start_daemon(self.command(), self.log_file, self.settings["ready_timeout_s"],
                                     "serpens-wire")
        except NativeError as exc:
            cleanup_prefix(self.prefix, self.config["machine"]["hugepage_mount"])
            raise PlatformError(str(exc)) from exc

    def _read_stats(self) -> dict[str, Any]:
        try:
            return json.loads(self.stats_file.read_text())
        except (OSError, ValueError) as exc:
            raise PlatformError(f"serpens-wire wrote no readable stats to {self.stats_file}: {exc}") from exc

    def stats(self) -> dict[str, Any]:
        """The forwarder's counters (docs/generator.md), its loop stalls and ``stages``: the forwarder as the
        one stage, ``gateway`` (docs/stages.md)."""
        if self.proc is None or self.proc.poll() is not None:
            raise PlatformError("serpens-wire is not running")
        before = self.stats_file.stat().st_mtime_ns if self.stats_file.exists() else 0
        os.kill(self.proc.pid, signal.SIGUSR1)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            if self.stats_file.exists() and self.stats_file.stat().st_mtime_ns != before:
                return self._read_stats()
            time.sleep(0.005)
        raise PlatformError("serpens-wire did not answer a stats request within 5 s")

    def stop(self) -> dict[str, Any]:
        if self.proc is None:
            return {}
        proc, self.proc = self.proc, None
        code = terminate(proc)
        cleanup_prefix(self.prefix, self.config["machine"]["hugepage_mount"])
        if code != 0:
            raise PlatformError(f"serpens-wire {ended(code)}: {tail(self.log_file)}")
        return self._read_stats() if self.stats_file.exists() else {}

    def describe(self) -> dict[str, Any]:
        return {"platform": self.name, "binary": self.settings["binary"], "lcore": self.lcore,
                "burst": self.settings["burst"], "link": "net_memif (copy mode), platform is the server"}
