"""Running the C parts: finding the built binaries, DPDK EAL arguments, per-run directories, clean-up.

Every DPDK process the harness starts gets its own ``--file-prefix`` (or ``--in-memory``), and its hugepage
files and ``/var/run/dpdk/<prefix>`` are removed afterwards (DESIGN.md section 10), so runs never see each
other's leftovers and a crashed run does not eat the hugepages of the next one.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from harness.config import Config, repo_path


class NativeError(RuntimeError):
    """A native component is missing, failed to start, or died."""


def binary(path: str) -> Path:
    p = repo_path(path)
    if not p.is_file() or not os.access(p, os.X_OK):
        raise NativeError(f"{p} is not built: run `make build` (meson + ninja, see README)")
    return p


class RunDir:
    """A per-run directory under machine.runtime_dir for sockets, stream files and reports."""

    def __init__(self, config: Config, name: str = "run") -> None:
        base = Path(config["machine"]["runtime_dir"])
        self.tag = f"{name}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.path = base / self.tag
        self.path.mkdir(parents=True, exist_ok=True)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def eal_args(lcore: int, prefix: str | None, vdevs: Sequence[str], in_memory: bool = False) -> list[str]:
    """EAL arguments for a process on one lcore with virtual devices only (no PCI scan: faster start)."""
    args = ["-l", str(lcore), "--no-pci", "--no-telemetry", "--log-level=*:warning"]
    if in_memory:
        args.append("--in-memory")
    elif prefix:
        args += ["--file-prefix", prefix]
    for v in vdevs:
        args += ["--vdev", v]
    return args


def cleanup_prefix(prefix: str, hugepage_mount: str = "/dev/hugepages") -> None:
    """Remove what a DPDK primary with ``--file-prefix prefix`` leaves behind if it did not exit cleanly."""
    shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)
    mount = Path(hugepage_mount)
    if mount.is_dir():
        for f in mount.glob(f"{prefix}map_*"):
            try:
                f.unlink()
            except OSError:
                pass


def wait_for_line(proc: subprocess.Popen[str], expected: str, timeout: float, what: str) -> None:
    """Read ``proc``'s stdout until a line equal to ``expected``; fail clearly if it dies or times out."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    fd = proc.stdout.fileno()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            if line:
                if line.strip() == expected:
                    return
                seen.append(line.rstrip())
                continue
        if proc.poll() is not None:
            err = proc.stderr.read() if proc.stderr else ""
            raise NativeError(f"{what} exited with code {proc.returncode} before it was ready:\n"
                              + "\n".join(seen[-20:] + err.splitlines()[-20:]))
    raise NativeError(f"{what} did not print {expected!r} within {timeout:.0f} s")


def terminate(proc: subprocess.Popen[str], timeout: float = 10.0) -> int:
    """SIGTERM, wait, SIGKILL if it will not go. Returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    return proc.returncode
