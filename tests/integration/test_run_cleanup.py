"""What `harness run` leaves behind (issue 13): nothing, however it ends. SIGTERM, SIGINT and SIGHUP stop it
like Ctrl-C and it cleans up; after SIGKILL, which nothing survives to clean up after, the next run reclaims
what is left; a start that fails (a deployment refused, serpensd ending before it is ready) leaves
nothing; a second run at once is refused, naming the first. Real processes: `harness run` with a Serpens SFC
and a fixed-rate trial, each with a runtime directory of its own."""

from __future__ import annotations

import copy
import signal
import time
from pathlib import Path

import pytest

from harness import config as cfg
from harness import runlock
from tests.integration.harness_proc import NOTHING, leftovers, start_experiment, start_run, wait_until_clean

pytestmark = pytest.mark.dpdk

LONG_RUN = ("--platform", "serpens", "--sfc", "fw", "--rate-mpps", "0.05", "--duration", "30")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signalled_run_cleans_up_and_says_it_was_interrupted(dpdk_ready: cfg.Config, tmp_path: Path,
                                                               sig: signal.Signals) -> None:
    run = start_run(tmp_path, *LONG_RUN)
    run.wait_for_trial()
    run.proc.send_signal(sig)
    assert run.finish() == 130, run.output()
    assert "interrupted" in run.output()
    assert wait_until_clean(run.runtime_dir, run.proc.pid) == NOTHING
    assert run.sidecar()["status"] == "interrupted" and run.csv_rows() == 0


@pytest.mark.parametrize("moment", ["lock", "*/redis.log", "*/serpensd.log"])
def test_a_run_signalled_while_its_platform_starts_stops_and_cleans_up(dpdk_ready: cfg.Config,
                                                                      tmp_path: Path, moment: str) -> None:
    # the moments a daemon is being forked: a SIGTERM that arrived inside CPython's at-fork handlers was
    # lost, and the run went on to write a result (harness/native.py popen)
    run = start_run(tmp_path, "--platform", "fission", "--sfc", "fw", "--rate-mpps", "0.05",
                    "--duration", "5")
    deadline = time.monotonic() + 60
    while not list(run.runtime_dir.glob(moment)):
        assert run.proc.poll() is None and time.monotonic() < deadline, run.output()
        time.sleep(0.001)
    run.proc.send_signal(signal.SIGTERM)
    assert run.finish() == 130, run.output()
    out = run.output()
    assert "interrupted" in out and "Traceback" not in out and "Exception ignored" not in out, out
    assert wait_until_clean(run.runtime_dir, run.proc.pid) == NOTHING
    assert not list(run.out_dir.glob("*.csv")) or run.csv_rows() == 0


def test_after_sigkill_the_next_run_reclaims_the_leftovers(dpdk_ready: cfg.Config, tmp_path: Path) -> None:
    run = start_run(tmp_path, *LONG_RUN)
    run_dir = run.wait_for_trial()
    run.proc.kill()
    run.finish()
    left = wait_until_clean(run.runtime_dir, run.proc.pid)
    assert left["processes"] == [], "what the harness started must die with it"
    assert run_dir.name in left["run_dirs"], "nothing ran to clean up: the run directory must still be here"
    conf = copy.deepcopy(dpdk_ready)
    conf["machine"]["runtime_dir"] = str(run.runtime_dir)
    with runlock.hold(conf, wait_s=10):   # what the next run does first
        assert leftovers(run.runtime_dir, run.proc.pid) == NOTHING


def test_a_failed_start_leaves_nothing(dpdk_ready: cfg.Config, tmp_path: Path) -> None:
    # serpensd starts, then deploying an NF whose object does not exist fails: the platform is torn down
    run = start_run(tmp_path, "--platform", "serpens", "--sfc", "nosuchnf", "--rate-mpps", "0.05",
                    "--duration", "1")
    assert run.finish() == 1
    out = run.output()
    assert "nosuchnf" in out and "Traceback" not in out
    assert wait_until_clean(run.runtime_dir, run.proc.pid) == NOTHING


def test_a_serpensd_that_fails_in_its_start_leaves_nothing_and_says_why(dpdk_ready: cfg.Config,
                                                                        tmp_path: Path) -> None:
    # serpensd gets past its EAL init (its hugepage file made) and then exits: no process is left to remove
    # that file but the harness. The state region is beyond any machine, so nothing is really allocated.
    run = start_run(tmp_path, "--platform", "serpens", "--sfc", "fw", "--rate-mpps", "0.05",
                    "--duration", "1", sets=("platforms.serpens.state_region_mb=1048576",))
    assert run.finish() == 1
    out = run.output()
    assert "serpensd exited with code 1 before it was ready: cannot reserve a 1048576 MiB state region" in out
    assert "EAL:" not in out and "Traceback" not in out, out     # the cause, not buried in EAL's messages
    assert wait_until_clean(run.runtime_dir, run.proc.pid) == NOTHING


def test_a_second_run_is_refused_naming_the_first(dpdk_ready: cfg.Config, tmp_path: Path) -> None:
    first = start_run(tmp_path, *LONG_RUN)
    first.wait_for_trial()
    try:
        second = start_run(tmp_path, "--platform", "wire", "--rate-mpps", "0.05", "--duration", "1")
        assert second.finish() == 1
        out = second.output()
        assert f"another run is using the cores: pid {first.proc.pid}" in out and "Traceback" not in out
        assert first.proc.poll() is None, "the first run must go on"
    finally:
        first.proc.send_signal(signal.SIGTERM)
        first.finish()
    assert wait_until_clean(first.runtime_dir, first.proc.pid) == NOTHING


def test_a_signalled_experiment_cleans_up_and_keeps_its_sidecar(dpdk_ready: cfg.Config,
                                                                tmp_path: Path) -> None:
    # limit, without its floor probe: the cheapest experiment that runs a rig
    run = start_experiment(tmp_path, "limit", sets=("doctor.floor_probe_s=0",))
    run.wait_for_trial()
    run.proc.send_signal(signal.SIGTERM)
    assert run.finish() == 130, run.output()
    assert "interrupted" in run.output()
    assert wait_until_clean(run.runtime_dir, run.proc.pid) == NOTHING
    assert run.sidecar()["status"] == "interrupted"
