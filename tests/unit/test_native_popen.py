"""The harness's children are started with the stop signals held off (harness/native.py popen): a SIGTERM
that arrives while CPython runs its at-fork handlers is not lost (it was: "Exception ignored", and the run
went on to a result), the child it arrived for is stopped, and the child itself starts with the signals
unblocked. Real processes."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.native import STOP_SIGNALS, die_with_parent, popen, terminate

_signal_in_fork = False


def _kill_self_after_fork() -> None:
    if _signal_in_fork:
        os.kill(os.getpid(), signal.SIGTERM)


os.register_at_fork(after_in_parent=_kill_self_after_fork)   # once per process; off unless a test sets it


def _children() -> list[int]:
    out = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _blocked(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigBlk:"):
            return int(line.split()[1], 16)
    raise AssertionError("no SigBlk")


@pytest.fixture
def interrupting_handler() -> Any:
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    before = signal.signal(signal.SIGTERM, interrupt)
    yield
    signal.signal(signal.SIGTERM, before)


def test_a_signal_during_the_fork_interrupts_and_stops_the_child(interrupting_handler: Any) -> None:
    global _signal_in_fork
    before = set(_children())
    _signal_in_fork = True
    try:
        with pytest.raises(KeyboardInterrupt, match="signal 15"):
            popen(["sleep", "30"], preexec_fn=die_with_parent)
    finally:
        _signal_in_fork = False
    assert set(_children()) - before == set(), "the child started for the interrupted run must be gone"


def test_the_child_starts_with_the_stop_signals_unblocked() -> None:
    proc = popen(["sleep", "30"], stdout=subprocess.DEVNULL)
    try:
        mask = _blocked(proc.pid)
        assert not [s for s in STOP_SIGNALS if mask & (1 << (s - 1))], hex(mask)
        assert not signal.pthread_sigmask(signal.SIG_BLOCK, []) & STOP_SIGNALS   # and ours restored
    finally:
        assert terminate(proc) == -signal.SIGTERM
