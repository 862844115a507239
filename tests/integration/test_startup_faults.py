"""A failed point of Fig. 11 is recorded as failed and the others still run (issue 15 item 0): `harness
experiment figure-11a` with a count no pool method can start (more instances than the pool's processes: a
real refusal by serpensd's start_instances for Serpens and by serpens-startbench for Thread, the way Exec
at 100 once failed) keeps the rows of every other point, gives the failed points no row, writes a fault
line with the cause into the samples file and the sidecar's failed_points, and ends with one line and a
non-zero exit; an NF that cannot be deployed leaves every point failed with the cause. And a clean QUICK
run measures every method serpensd runs on serpensd (the rows' platform), Thread on the startbench.
QUICK-sized; the real serpensd and startbench."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from harness import config as cfg
from tests.integration.harness_proc import NOTHING, HarnessRun, start_experiment, wait_until_clean

pytestmark = pytest.mark.dpdk

QUICK = ("startup.methods=[exec, thread, serpens]", "startup.slow_reps=2", "startup.reps=3", "startup.pool=2")


def _rows(run: HarnessRun, name: str) -> list[dict[str, str]]:
    with open(run.out_dir / f"{name}.csv") as f:
        return list(csv.DictReader(f))


def _samples(run: HarnessRun, name: str) -> list[dict[str, object]]:
    path = run.out_dir / f"{name}-samples.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _error_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("Error:")]


def test_a_failed_point_is_recorded_and_the_other_points_keep_their_rows(dpdk_ready: cfg.Config,
                                                                         tmp_path: Path) -> None:
    run = start_experiment(tmp_path, "figure-11a", sets=(*QUICK, "startup.instances=[1, 3, 2]"))
    assert run.finish(timeout_s=300) == 1
    out = run.output()
    assert "Traceback" not in out, out
    # the end is one line naming how many points failed, the first one and its cause
    last = out.strip().splitlines()[-1]
    assert _error_lines(out) == [last], out
    assert "2 of 9 point(s) failed" in last and "more than the pool's 2" in last, last
    # every other point has its row, measured after the failed one too (2 comes after 3); none for 3 of a
    # pooled method — exec has no pool and starts 3 (on serpensd)
    rows = _rows(run, "figure-11a")
    assert sorted((r["mechanism"], r["n_instances"]) for r in rows) == [
        ("exec", "1"), ("exec", "2"), ("exec", "3"), ("serpens", "1"), ("serpens", "2"),
        ("thread", "1"), ("thread", "2")]
    assert all(float(r["startup_p50_us"]) > 0 and int(r["n_samples"]) > 0 for r in rows), rows
    assert {r["mechanism"]: r["platform"] for r in rows} == {
        "exec": "serpensd", "serpens": "serpensd", "thread": "startbench"}
    # the failures, with their cause: in the samples file and in the sidecar, which says the run failed
    faults = [s for s in _samples(run, "figure-11a") if s["kind"] == "fault"]
    assert sorted((f["method"], f["instances"]) for f in faults) == [("serpens", 3), ("thread", 3)]
    assert all("more than the pool's 2" in str(f["error"]) for f in faults), faults
    sidecar = run.sidecar()
    assert sidecar["status"] == "failed" and sidecar["rows"] == 7
    assert sorted((p["mechanism"], p["n_instances"]) for p in sidecar["failed_points"]) == [
        ("serpens", 3), ("thread", 3)]
    assert wait_until_clean(run.runtime_dir, run.proc.pid) == NOTHING


def test_an_nf_that_cannot_be_deployed_leaves_every_point_failed_with_the_cause(dpdk_ready: cfg.Config,
                                                                                tmp_path: Path) -> None:
    # badflags asks for a table flag combination the State Manager refuses: deploying it fails before any
    # point, for every method
    run = start_experiment(tmp_path, "figure-11a", sets=(
        *QUICK, "startup.instances=[1, 2]", "startup.nf=badflags",
        "platforms.serpens.nfs_dir=build/native/serpens/testnfs"))
    assert run.finish(timeout_s=300) == 1
    out = run.output()
    assert "Traceback" not in out and _error_lines(out) == [out.strip().splitlines()[-1]], out
    assert "6 of 6 point(s) failed" in out and "deploying" in out, out
    assert _rows(run, "figure-11a") == []
    faults = [s for s in _samples(run, "figure-11a") if s["kind"] == "fault"]
    assert sorted((f["method"], f["instances"]) for f in faults) == [
        ("exec", 1), ("exec", 2), ("serpens", 1), ("serpens", 2), ("thread", 1), ("thread", 2)]
    assert all("deploying" in str(f["error"]) for f in faults), faults
    assert run.sidecar()["status"] == "failed"
    assert wait_until_clean(run.runtime_dir, run.proc.pid) == NOTHING


def test_a_quick_run_measures_serpensd_methods_on_serpensd(dpdk_ready: cfg.Config, tmp_path: Path) -> None:
    run = start_experiment(tmp_path, "figure-11a", sets=(
        "startup.methods=[fork, load, thread]", "startup.slow_reps=2", "startup.reps=3", "startup.pool=2",
        "startup.instances=[1, 2]"))
    assert run.finish(timeout_s=300) == 0, run.output()
    rows = _rows(run, "figure-11a")
    assert sorted((r["mechanism"], r["n_instances"]) for r in rows) == [
        ("fork", "1"), ("fork", "2"), ("load", "1"), ("load", "2"), ("thread", "1"), ("thread", "2")]
    for r in rows:
        on_serpensd = r["mechanism"] != "thread"   # serpensd refuses thread (docs/startup.md)
        assert r["platform"] == ("serpensd" if on_serpensd else "startbench"), r
        assert r["design"] == {"fork": "fork-startup", "load": "load-startup", "thread": ""}[r["mechanism"]]
        assert float(r["startup_p50_us"]) > 0
        assert float(r["startup_all_p50_us"]) >= float(r["startup_p50_us"]) or r["n_instances"] == "1"
        assert int(r["n_samples"]) == int(r["n_instances"]) * (2 if r["mechanism"] == "fork" else 3), r
    starts = [s for s in _samples(run, "figure-11a")
              if s["kind"] == "startup" and s.get("program") == "serpensd"]
    # every serpensd start: its own slot within a round, the loader of the method's starter
    assert {(s["method"], s["loader"]) for s in starts} == {("fork", "dlopen"), ("load", "dlopen")}
    assert all(s["pooled"] for s in starts if s["method"] == "load")
    assert wait_until_clean(run.runtime_dir, run.proc.pid) == NOTHING
