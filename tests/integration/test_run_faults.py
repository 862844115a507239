"""Faults end in a clear error, never in a result (issue 13): a platform that breaks during a trial — its
Redis killed, serpensd killed — makes `harness run` exit non-zero naming the cause, the sidecar says
"failed" with it, the trial log has a fault line for the point, the CSV has no row, and nothing is left
behind. Real processes, killed with SIGKILL mid-trial."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from harness import config as cfg
from harness import sysinfo
from tests.integration.harness_proc import NOTHING, HarnessRun, start_run, wait_until_clean

pytestmark = pytest.mark.dpdk


def _kill_mid_trial(run: HarnessRun, role: str) -> None:
    """SIGKILL the run's process of ``role`` (its command name) a moment into the trial."""
    run.wait_for_trial()
    time.sleep(0.5)
    pids = [p for p in sysinfo.descendants(run.proc.pid)
            if (st := sysinfo.read_pid_stat(p)) is not None and st.comm == role]
    assert pids, f"no {role} started by harness run {run.proc.pid}"
    os.kill(pids[0], signal.SIGKILL)


def _assert_failed_without_a_row(run: HarnessRun, cause: str) -> None:
    assert run.finish() == 1
    out = run.output()
    assert cause in out and "Traceback" not in out, out
    sidecar = run.sidecar()
    assert sidecar["status"] == "failed" and cause in sidecar["error"]
    assert sidecar["rows"] == 0 and run.csv_rows() == 0
    faults = [line for line in run.trial_log() if line["kind"] == "fault"]
    assert len(faults) == 1 and cause in faults[0]["error"]
    assert not [line for line in run.trial_log() if line["kind"] == "point"]
    assert wait_until_clean(run.runtime_dir, run.proc.pid) == NOTHING


def test_a_redis_killed_mid_trial_fails_the_run_with_the_cause(dpdk_ready: cfg.Config,
                                                              tmp_path: Path) -> None:
    run = start_run(tmp_path, "--platform", "fission", "--sfc", "fw", "--rate-mpps", "0.1", "--duration", "4")
    _kill_mid_trial(run, "redis-server")
    _assert_failed_without_a_row(run, "remote state store")
    assert "died (killed by signal 9)" in run.output()


def test_a_serpensd_killed_mid_trial_fails_the_run_with_the_cause(dpdk_ready: cfg.Config,
                                                                 tmp_path: Path) -> None:
    run = start_run(tmp_path, "--platform", "serpens", "--sfc", "fw", "--rate-mpps", "0.1", "--duration", "4")
    _kill_mid_trial(run, "serpensd")
    # the trial's error, not the one stopping the dead platform again would give
    _assert_failed_without_a_row(run, "serpensd is not running: it was killed by signal 9 (SIGKILL)")
    assert "the trial at 0.1 Mpps for 4 s: the platform failed" in run.output()


def test_a_runtime_killed_mid_trial_is_restarted_and_its_losses_counted(dpdk_ready: cfg.Config) -> None:
    """Not a fault of the platform: serpensd restarts the instance with its state kept (NAT's mappings, in
    the State Manager). The trial's losses stay in it, and the trial says they are the restart's
    (``instance_crashes``), every lost packet counted (``instance_crash_losses``)."""
    import threading

    from harness.rig import rig
    from harness.serpens.sfc import SfcSpec
    from harness.traffic.measure import Measurer
    from tests.integration.test_serpens import nat_mapping

    with rig(dpdk_ready, "serpens", sfc=SfcSpec.linear("nat")) as r:
        m = Measurer(r.generator, 64, 16, 1000, platform=r.platform)
        first = m(50_000, 0.5)
        assert first.rx_packets == first.tx_packets
        mappings = nat_mapping(r.platform.controller)
        pid = int(next(iter(r.platform.instances.values()))["pid"])
        killer = threading.Timer(0.5, os.kill, (pid, signal.SIGKILL))
        killer.start()
        result = m(50_000, 2.0)
        killer.join()
        assert result.dut["instance_crashes"] == 1
        assert {int(i["pid"]) for i in r.platform.stats()["instances"]
                if i.get("state") == "ready"} - {pid}, "a new instance runs"
        assert nat_mapping(r.platform.controller) == mappings, "the restart lost NAT state"
        after = m(50_000, 0.5)
    lost = result.tx_packets - result.rx_packets
    assert lost > 0 and result.dut["instance_crash_losses"] == lost, "every lost packet is the crash's"
    assert after.dut["instance_crashes"] == 0 and after.rx_packets == after.tx_packets
