"""The harness's children are started safe against a stop signal in the middle (harness/native.py popen): a
SIGTERM that arrives while CPython runs its at-fork handlers is not lost (it was: "Exception ignored", and
the run went on to a result), and the child it arrived for is stopped. Real processes, and another thread
running, as in a run (the kernel may hand the signal to it)."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest

from harness.native import die_with_parent, interrupt, popen, terminate

_signal_in_fork = False


def _kill_self_after_fork() -> None:
    if _signal_in_fork:
        os.kill(os.getpid(), signal.SIGTERM)


os.register_at_fork(after_in_parent=_kill_self_after_fork)   # once per process; off unless a test sets it


def _children() -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        out |= {int(c) for c in (task / "children").read_text().split()}
    return out


@pytest.fixture
def harness_handler() -> Any:
    """SIGTERM handled as harness/cli.py does, with a thread running beside the main one."""
    before = signal.signal(signal.SIGTERM, lambda signum, frame: interrupt(signum))
    stop = threading.Event()
    other = threading.Thread(target=stop.wait, daemon=True)
    other.start()
    yield
    stop.set()
    other.join()
    signal.signal(signal.SIGTERM, before)


def test_a_signal_during_the_fork_interrupts_and_stops_the_child(harness_handler: Any) -> None:
    global _signal_in_fork
    before = _children()
    _signal_in_fork = True
    try:
        with pytest.raises(KeyboardInterrupt, match="signal 15"):
            popen(["sleep", "30"], preexec_fn=die_with_parent)
    finally:
        _signal_in_fork = False
    assert _children() - before == set(), "the child started for the interrupted run must be gone"


def test_a_signal_at_any_other_time_interrupts_at_once(harness_handler: Any) -> None:
    proc = popen(["sleep", "30"], preexec_fn=die_with_parent)
    try:
        with pytest.raises(KeyboardInterrupt, match="signal 15"):
            os.kill(os.getpid(), signal.SIGTERM)
            signal.sigtimedwait([], 0)   # a call: the handler has run by its return
            raise AssertionError("not interrupted")
    finally:
        assert terminate(proc) == -signal.SIGTERM
