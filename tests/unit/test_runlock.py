"""One run at a time (harness/runlock.py): a second run is refused naming the first, a dead holder frees the
lock, and taking it reclaims what dead runs left behind (harness/native.py reclaim_dead_runs). Real
processes, a runtime directory of the test's own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import config as cfg
from harness import runlock
from harness.native import OWNER_FILE, RunDir, reclaim_dead_runs

HOLDER = """
import sys, time
from harness import config as cfg, runlock
conf = cfg.load(overrides=[f"machine.runtime_dir={sys.argv[1]}"])
runlock.acquire(conf, wait_s=0)
print("HELD", flush=True)
time.sleep(60)
"""


@pytest.fixture
def conf(tmp_path: Path) -> cfg.Config:
    return cfg.load(overrides=[f"machine.runtime_dir={tmp_path / 'rt'}"])


def _holder(runtime_dir: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(runtime_dir)], stdout=subprocess.PIPE,
                            text=True, cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout is not None and proc.stdout.readline().strip() == "HELD"
    return proc


def test_a_second_run_is_refused_with_the_first_ones_pid_and_command(conf: cfg.Config) -> None:
    first = _holder(Path(conf["machine"]["runtime_dir"]))
    try:
        with pytest.raises(runlock.LockHeld) as err:
            runlock.acquire(conf, wait_s=0)
        msg = str(err.value)
        assert f"pid {first.pid}" in msg and "-c" in msg and "started 20" in msg and "\n" not in msg
    finally:
        first.kill()
        first.wait()


def test_a_killed_holder_frees_the_lock(conf: cfg.Config) -> None:
    first = _holder(Path(conf["machine"]["runtime_dir"]))
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    with runlock.hold(conf, wait_s=0):
        info = runlock.holder(runlock.lock_path(conf))
        assert info is not None and info["pid"] == os.getpid()


def test_the_lock_is_reentrant_in_one_process_and_freed_by_the_last_release(conf: cfg.Config) -> None:
    with runlock.hold(conf, wait_s=0), runlock.hold(conf, wait_s=0):
        pass
    # freed: another process takes it at once
    other = _holder(Path(conf["machine"]["runtime_dir"]))
    other.kill()
    other.wait()


def test_a_waiting_run_gets_the_lock_when_the_first_ends(conf: cfg.Config) -> None:
    first = _holder(Path(conf["machine"]["runtime_dir"]))
    subprocess.Popen(["sh", "-c", f"sleep 0.5; kill {first.pid}"])
    t0 = time.monotonic()
    with runlock.hold(conf, wait_s=20):
        assert time.monotonic() - t0 < 20
    first.wait()


def test_an_unwritable_runtime_dir_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    conf = cfg.load(overrides=[f"machine.runtime_dir={blocker / 'rt'}"])
    with pytest.raises(runlock.LockHeld, match="cannot create the run lock") as err:
        runlock.acquire(conf, wait_s=0)
    assert "\n" not in str(err.value)


def test_taking_the_lock_reclaims_dead_runs_and_keeps_live_ones(conf: cfg.Config, tmp_path: Path) -> None:
    live = RunDir(conf, "live")
    dead_proc = subprocess.Popen(["sleep", "60"])
    dead = Path(conf["machine"]["runtime_dir"]) / f"wire-{dead_proc.pid}-abcdef"
    dead.mkdir()
    (dead / OWNER_FILE).write_text(f"{dead_proc.pid} 1\n")   # wrong start time: a reused pid is not it
    older = Path(conf["machine"]["runtime_dir"]) / "serpens-999999999-abcdef"   # no owner file, pid gone
    older.mkdir()
    (older / "serpensd.sock").write_text("")
    try:
        with runlock.hold(conf, wait_s=0):
            pass
        assert live.path.is_dir() and not dead.exists() and not older.exists()
        assert reclaim_dead_runs(conf) == []
    finally:
        live.remove()
        dead_proc.kill()
        dead_proc.wait()


def test_the_holder_file_says_who_holds_it(conf: cfg.Config) -> None:
    with runlock.hold(conf, wait_s=0):
        info = json.loads(runlock.lock_path(conf).read_text())
    assert info["pid"] == os.getpid() and info["started"] and info["command"]
    assert runlock.lock_path(conf).read_text() == ""     # released: nobody is named any more
