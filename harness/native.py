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
import threading
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


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """A ``preexec_fn``: the child gets SIGTERM when the harness process dies, however it dies (SIGKILL
    included), so that a killed experiment never leaves a serpensd, a generator or a redis-server spinning
    on the cores of the next one. Only for children started by the main thread: Linux sends the signal
    when the *thread* that forked exits."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() == 1:       # the parent died between fork and prctl
        os._exit(1)


def start_daemon(cmd: Sequence[str], log_file: Path, ready_timeout: float, what: str,
                 cwd: Path | None = None, new_session: bool = False) -> subprocess.Popen[bytes]:
    """Start a native daemon that prints ``READY`` on stdout once it can serve; return it when it has.

    stderr goes to ``log_file`` (a pipe nobody reads could fill up and block the daemon). stdout is read
    unbuffered until READY — DPDK may log to stdout, so READY can arrive in one read with other lines,
    where a buffered reader would hide it from select() — and afterwards copied into the log by a thread.
    """
    log_file.write_text("")
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=log, bufsize=0, cwd=cwd,
                                start_new_session=new_session, preexec_fn=die_with_parent)
    try:
        _wait_ready(proc, log_file, ready_timeout, what)
    except NativeError:
        terminate(proc)
        raise
    _copy_stdout_to_log(proc, log_file, what)
    return proc


def _wait_ready(proc: subprocess.Popen[bytes], log_file: Path, timeout: float, what: str) -> None:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    pending = b""
    with open(log_file, "ab") as log:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            chunk = os.read(fd, 65536) if ready else b""
            if chunk:
                *lines, pending = (pending + chunk).split(b"\n")
                for i, line in enumerate(lines):
                    if line.strip() == b"READY":
                        log.write(b"\n".join(lines[i + 1:] + [pending]))
                        return
                    log.write(line + b"\n")
                log.flush()
                continue
            if proc.poll() is not None:
                log.write(pending)
                log.flush()
                raise NativeError(f"{what} exited with code {proc.returncode} before it was ready; "
                                  f"its log:\n{tail(log_file)}")
            if ready:  # stdout closed but the process still runs: nothing more will come from it
                time.sleep(0.05)
    raise NativeError(f"{what} did not print READY within {timeout:.0f} s; its log:\n{tail(log_file)}")


def _copy_stdout_to_log(proc: subprocess.Popen[bytes], log_file: Path, what: str) -> None:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()

    def run() -> None:
        with open(log_file, "ab") as log:
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                log.write(chunk)
                log.flush()

    threading.Thread(target=run, name=f"{what}-stdout", daemon=True).start()


def tail(log_file: Path, chars: int = 2000) -> str:
    try:
        return log_file.read_text(errors="replace").strip()[-chars:]
    except OSError:
        return "(no log)"


def terminate(proc: subprocess.Popen, timeout: float = 10.0) -> int:  # type: ignore[type-arg]
    """SIGTERM, wait, SIGKILL if it will not go. Returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    return proc.returncode
