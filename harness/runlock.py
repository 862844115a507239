"""One run at a time: a lock on ``<machine.runtime_dir>/lock`` that every run holds while it uses the cores.

Two runs at once share the cores the config gives each of them alone, and both report the other's
interference as the platform's loss (issue 13 measured 1.3-1.6 % against 0 % alone). The lock is a
``flock`` on a file, so the kernel frees it when its holder dies, however it dies: a SIGKILLed run never
blocks the next one. The holder writes who it is (pid, command, start time) into the file, and a second run
is refused with that, not a bare "busy".

The lock is re-entrant within a process (``harness experiment`` holds it for the whole experiment, each rig
inside takes it again), and taking it first in a process also reclaims what dead runs left behind
(:func:`harness.native.reclaim_dead_runs`): with the lock held no other run can be starting, so whatever
belongs to a run whose owner is gone is garbage.

``machine.lock_wait_s`` > 0 waits that long for the lock instead of refusing at once; the test suite sets a
default wait (:func:`set_default_wait`), so that sessions started side by side queue instead of failing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.config import Config
from harness.native import reclaim_dead_runs


class LockHeld(RuntimeError):
    """Another run holds the lock (or the lock file cannot be made); the message names the holder."""


_held: dict[Path, list[int]] = {}     # lock file -> [fd, depth]
_mutex = threading.Lock()
_default_wait_s = 0.0


def set_default_wait(seconds: float) -> None:
    """Wait at least this long for the lock whatever the configuration says (the test suite: its sessions,
    and other users' runs, queue instead of failing)."""
    global _default_wait_s
    _default_wait_s = float(seconds)


def lock_path(config: Config) -> Path:
    return Path(config["machine"]["runtime_dir"]) / "lock"


def holder(path: Path) -> dict[str, Any] | None:
    """Who holds (or last held) the lock, as the holder wrote it; None when unreadable."""
    try:
        data = json.loads(path.read_text() or "null")
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def describe_holder(info: dict[str, Any] | None) -> str:
    if not info:
        return "a process that has not said who it is yet"
    return (f"pid {info.get('pid')} ({info.get('command') or '?'}), started {info.get('started') or '?'}")


def _open(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # os.open's fds are not inherited by children (PEP 446): a serpensd outliving us never holds it
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise LockHeld(f"cannot create the run lock {path}: {exc.strerror or exc} (machine.runtime_dir "
                       f"must be a directory this user can write; make setup creates it)") from None


def acquire(config: Config, wait_s: float | None = None) -> None:
    """Take the lock (again, if this process holds it already). Raises :class:`LockHeld` naming the holder
    when another process keeps it longer than ``wait_s`` (default ``machine.lock_wait_s``)."""
    path = lock_path(config)
    with _mutex:
        if path in _held:
            _held[path][1] += 1
            return
        wait = (max(float(config["machine"].get("lock_wait_s", 0.0)), _default_wait_s) if wait_s is None
                else wait_s)
        fd = _open(path)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    waited = f" (waited {wait:g} s)" if wait > 0 else ""
                    raise LockHeld(f"another run is using the cores{waited}: {describe_holder(holder(path))} "
                                   f"holds {path}; wait for it to end or stop it") from None
                time.sleep(0.2)
        me = {"pid": os.getpid(), "command": " ".join(sys.argv) or sys.executable,
              "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
        _held[path] = [fd, 1]
    reclaim_dead_runs(config)


def release(config: Config) -> None:
    path = lock_path(config)
    with _mutex:
        entry = _held.get(path)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _held[path]
        fd = entry[0]
        try:
            os.ftruncate(fd, 0)   # nobody holds it now: a reader must not name us
        except OSError:
            pass
        os.close(fd)              # closing the last fd drops the flock


@contextlib.contextmanager
def hold(config: Config, wait_s: float | None = None) -> Iterator[None]:
    acquire(config, wait_s)
    try:
        yield
    finally:
        release(config)
