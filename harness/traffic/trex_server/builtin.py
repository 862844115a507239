"""``generator.kind: trex`` with ``generator.trex.server: builtin``: the real TRex driver and client library
against the TRex-compatible server, which the harness starts for the run on the platform's vdevs.

:class:`BuiltinTRexGenerator` is :class:`~harness.traffic.trex.TRexGenerator` plus the server's lifetime:
``connect()`` starts ``python -m harness.traffic.trex_server`` (its own process, as a TRex server would be)
with the platform's generator vdevs, on free loopback ports, waits for its ``READY`` line and connects the
client to it; ``disconnect()`` stops it. One TRex port per vdev; serpens-gen receives on the port it sends
on (the platform returns traffic over the same memif link), so the driver's receive port is its transmit
port (``generator.trex.tx_port``; ``rx_port`` does not apply). The server's log (and serpens-gen's
messages) goes to ``trex-server.log`` in the run directory; a failed trial's cause is taken from there.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from harness import config as cfg
from harness.config import Config
from harness.native import die_with_parent, popen, terminate
from harness.traffic.base import GeneratorError
from harness.traffic.trex import TRexGenerator

READY_TIMEOUT_S = 60.0


class BuiltinTRexGenerator(TRexGenerator):
    def __init__(self, config: Config, vdevs: Sequence[str], run_dir: Path) -> None:
        t = config["generator"]["trex"]
        super().__init__(server="127.0.0.1", sync_port=0, async_port=0, tx_port=t["tx_port"],
                         rx_port=t["tx_port"], settle_s=t["settle_ms"] / 1000)
        self.config = config
        self.vdevs = list(vdevs)
        self.run_dir = Path(run_dir)
        self.log_path = self.run_dir / "trex-server.log"
        self.proc: subprocess.Popen[str] | None = None

    def connect(self) -> None:
        if self._client is not None:
            return
        if self.proc is None:
            self._start_server()
        try:
            super().connect()
        except BaseException:
            self._stop_server()
            raise

    def disconnect(self) -> None:
        try:
            super().disconnect()
        finally:
            self._stop_server()

    def wait_on_traffic(self, timeout: float | None = None) -> None:
        try:
            super().wait_on_traffic(timeout)
        except GeneratorError as exc:
            cause = self.last_trial_error()
            raise GeneratorError(f"{exc}: {cause}" if cause else str(exc)) from exc

    def last_trial_error(self) -> str | None:
        """The server's last logged trial failure (serpens-gen's own message)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return None
        failures = [line.split("port trial: ", 1)[1] for line in lines if "port trial: " in line]
        return failures[-1] if failures else None

    def _start_server(self) -> None:
        if not self.vdevs:
            raise GeneratorError("the platform offers no vdev for a generator")
        config_file = self.run_dir / "trex-server-config.yaml"
        config_file.write_text(cfg.dump(self.config))
        cmd = [sys.executable, "-m", "harness.traffic.trex_server", "-c", str(config_file),
               "--rpc-port", "0", "--pub-port", "0", "--work-dir", str(self.run_dir / "trex-server")]
        for v in self.vdevs:
            cmd += ["--vdev", v]
        env = dict(os.environ)
        # this tree's harness, whatever the caller's working directory
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(cfg.REPO_ROOT), env.get("PYTHONPATH")) if p)
        log = self.log_path.open("a")
        try:
            self.proc = popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, env=env,
                              preexec_fn=die_with_parent)
        finally:
            log.close()
        line = self._ready_line()
        try:
            fields = dict(part.split("=", 1) for part in line.split()[1:])
            self.sync_port, self.async_port = int(fields["rpc"]), int(fields["pub"])
        except (ValueError, KeyError):
            self._stop_server()
            raise GeneratorError(f"the built-in TRex server said {line!r}, not READY rpc=N pub=N") from None

    def _ready_line(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith("READY"):
                    return line.strip()
                if line:
                    continue
            if self.proc.poll() is not None:
                break
        self._stop_server()
        tail = self.log_path.read_text(errors="replace").strip()[-1500:] if self.log_path.exists() else ""
        raise GeneratorError(f"the built-in TRex server did not start within {READY_TIMEOUT_S:g} s: "
                             f"{tail or 'no output'}")

    def _stop_server(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            terminate(proc)
            if proc.stdout is not None:
                proc.stdout.close()
