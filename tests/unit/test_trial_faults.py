"""A fault is never a result (harness/traffic/measure.py): a platform that fails around a trial turns the
trial into a TrialFault naming the trial and the cause, the search and the point stop with it (no NDR 0 /
PDR 0, no record), and instances that crashed and were restarted during a trial are counted and make a
latency trial invalid. Over the simulated generator, with a platform whose counters are scripted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness import config as cfg
from harness.platforms.base import PlatformError
from harness.traffic.measure import Measurer, TrialFault, dut_summary, measure_point, point_row
from harness.traffic.simulated import SimulatedGenerator
from harness.trial_log import TrialLogWriter, faults


class ScriptedPlatform:
    """stats() answers with a crash counter; it raises from call number ``fail_at`` on."""

    name = "serpens"

    def __init__(self, fail_at: int | None = None, crash_at: int | None = None) -> None:
        self.calls = 0
        self.fail_at = fail_at
        self.crash_at = crash_at

    def stats(self) -> dict[str, Any]:
        self.calls += 1
        if self.fail_at is not None and self.calls >= self.fail_at:
            raise PlatformError("serpensd is not running (exit code -9)")
        crashes = 1 if self.crash_at is not None and self.calls >= self.crash_at else 0
        return {"sfcs": [{"name": "fw", "crashes": crashes}], "rx_packets": 0, "tx_packets": 0}


def _measurer(platform: ScriptedPlatform) -> Measurer:
    return Measurer(SimulatedGenerator(capacity_pps=1e6), 64, 16, 1000, platform=platform)


def test_a_platform_that_fails_after_a_trial_makes_it_a_fault_naming_the_trial() -> None:
    m = _measurer(ScriptedPlatform(fail_at=2))
    with pytest.raises(TrialFault, match=r"the trial at 0\.5 Mpps for 1 s: the platform failed \(after the "
                                         r"trial\): serpensd is not running"):
        m(5e5, 1.0)


def test_a_search_whose_platform_fails_gives_no_result() -> None:
    conf = cfg.load(quick=True)
    platform = ScriptedPlatform(fail_at=9)
    with pytest.raises(TrialFault):
        measure_point(_measurer(platform), conf)
    assert platform.calls == 9    # it stopped at the fault, not at the end of a search that "found" 0


def test_the_fault_is_written_to_the_trial_log_and_no_point(tmp_path: Path) -> None:
    path = tmp_path / "run-trials.jsonl"
    with TrialLogWriter(path, "run") as log:
        pid = log.new_point_id()
        try:
            _measurer(ScriptedPlatform(fail_at=1))(1e5, 1.0)
        except TrialFault as exc:
            log.fault(pid, exc)
    (fault,) = faults(path)
    assert fault["point_id"] == pid and fault["status"] == "failed" and "serpensd" in fault["error"]
    assert [json.loads(line)["kind"] for line in path.read_text().splitlines()] == ["fault"]


def test_instance_crashes_in_a_trial_are_counted_and_void_the_latency_trial() -> None:
    dut = dut_summary({"sfcs": [{"name": "a", "crashes": 2, "no_instance": 10, "stranded": 1},
                                {"name": "c", "crashes": 0, "no_instance": 5}]},
                      {"sfcs": [{"name": "a", "crashes": 5, "no_instance": 110, "stranded": 21},
                                {"name": "b", "crashes": 1, "no_instance": 7, "stranded": 0},
                                {"name": "c", "crashes": 0, "no_instance": 50}]})   # c lost none to a crash
    assert dut["instance_crashes"] == 4 and dut["instance_crash_losses"] == 100 + 20 + 7
    conf = cfg.load(quick=True)
    record = measure_point(_measurer(ScriptedPlatform(crash_at=2)), conf, rate_pps=1e5)
    assert record["instance_crashes"] == 1 and record["latency_trial"]["valid"] is False
    row = point_row({**record, "platform": "serpens", "workload": "fw", "trial": 0})
    assert row["instance_crashes"] == 1 and row["latency_trial_valid"] is False
    assert row["instance_crash_losses"] == 0     # the scripted platform counts no lost packet


def test_a_search_that_saw_instance_crashes_says_so() -> None:
    record = measure_point(_measurer(ScriptedPlatform(crash_at=4)), cfg.load(quick=True))
    assert "instances crashed 1 time(s) during the search" in record["search"]["search_note"]
    assert record["instance_crashes"] == 1


def test_stopping_a_platform_that_failed_does_not_replace_the_trials_error() -> None:
    from harness.native import ended
    from harness.platforms.base import Platform

    class Dies(Platform):   # stop() reports the death the trial already saw
        def __init__(self) -> None:
            self.stopped = 0

        def start(self) -> None:
            pass

        def stop(self) -> dict[str, Any]:
            self.stopped += 1
            raise PlatformError(f"serpensd {ended(-9)}: ")

        def stats(self) -> dict[str, Any]:
            return {}

    p = Dies()
    with pytest.raises(TrialFault, match="the trial at"):
        with p:
            raise TrialFault("the trial at 0.1 Mpps for 4 s: the platform failed (after the trial): ...")
    assert p.stopped == 1
    with pytest.raises(PlatformError, match=r"serpensd was killed by signal 9 \(SIGKILL\)"):
        with p:      # nothing else went wrong: the death is the error
            pass
    assert ended(3) == "exited with code 3"
