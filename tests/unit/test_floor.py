"""harness/floor.py and the doctor's floor checks without a busy loop: the probe's histogram turned into the
floor columns, measure_floor over a stand-in probe script (the real probe: tests/integration/test_floor.py),
its refusals, and the registry of started processes in harness/native.py."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from harness import config as cfg
from harness import doctor, floor, native, results, sysinfo

EDGES = [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, None]


def probe_report(counts: list[int], cpu: int = 0, seconds: float = 2.0, lost_ratio: float = 0.035,
                 max_gap_us: float = 7900.0) -> dict[str, Any]:
    buckets = [{"lo_us": lo, "hi_us": hi, "count": n, "lost_us": 0.0}
               for lo, hi, n in zip(EDGES[:-1], EDGES[1:], counts, strict=True)]
    return {"tool": "serpens-stallprobe", "cpu": cpu, "cpu_at_end": cpu, "probe_s": seconds,
            "lost_ratio": lost_ratio, "max_gap_us": max_gap_us, "gaps": sum(counts),
            "involuntary_switches": 3, "buckets": buckets, "longest": []}


#          10  20  50 100 200 500 1ms 2ms 5ms 10 20 50 100ms
COUNTS = [800, 900, 300, 20, 6, 2, 4, 1, 1, 1, 0, 0, 0]


def test_probe_histogram_is_binned_into_the_floor_columns_per_second() -> None:
    row = floor.floor_row(probe_report(COUNTS), steal_ratio=0.002)
    assert list(row) == list(floor.FLOOR_COLUMNS)
    assert row == {"cpu": 0, "probe_s": 2.0, "floor_lost_ratio": 0.035, "floor_max_gap_us": 7900.0,
                   "floor_gaps_10us_100us_per_s": (800 + 900 + 300) / 2,
                   "floor_gaps_100us_1ms_per_s": (20 + 6 + 2) / 2,
                   "floor_gaps_1ms_5ms_per_s": (4 + 1) / 2,
                   "floor_gaps_over_5ms_per_s": (1 + 1) / 2,
                   "steal_ratio": 0.002}


def test_every_floor_column_is_declared_in_the_result_schema() -> None:
    assert set(floor.FLOOR_COLUMNS) <= set(results.COLUMNS)


def test_a_histogram_without_the_columns_edges_is_refused() -> None:
    coarse = [{"lo_us": 10, "hi_us": 300, "count": 5}, {"lo_us": 300, "hi_us": None, "count": 1}]
    with pytest.raises(floor.FloorError, match="no edge at 100 µs"):
        floor.gaps_between(coarse, 10, 100)
    with pytest.raises(floor.FloorError, match="lacks or garbles 'buckets'"):
        floor.floor_row({"cpu": 0, "probe_s": 1.0, "lost_ratio": 0, "max_gap_us": 0}, None)


def fake_probe(tmp_path: Path, report: dict[str, Any] | None = None, exit_code: int = 0,
               stderr: str = "") -> cfg.Config:
    """A stand-in for serpens-stallprobe that prints a fixed report (and what it was asked) instantly."""
    config = cfg.load()
    script = tmp_path / "probe"
    body = json.dumps(report or probe_report(COUNTS))
    script.write_text(f"""#!/bin/sh
echo "$@" >> {tmp_path}/calls
cpu=$2
[ -n "{stderr}" ] && echo "{stderr}" >&2
[ {exit_code} -ne 0 ] && exit {exit_code}
echo '{body}' | sed "s/\\"cpu\\": 0/\\"cpu\\": $cpu/"
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    config["floor"]["probe"] = str(script)
    return config


def test_measure_floor_probes_each_cpu_in_turn_and_reads_steal(tmp_path: Path) -> None:
    config = fake_probe(tmp_path)
    rows = floor.measure_floor(config, 0.5)
    cpus = sysinfo.online_cpus()
    assert [r["cpu"] for r in rows] == cpus
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == [f"--cpu {c} --seconds 0.5" for c in cpus]
    for r in rows:
        assert set(r) == set(floor.FLOOR_COLUMNS)
        assert r["steal_ratio"] is None or 0 <= r["steal_ratio"] <= 1


def test_measure_floor_says_clearly_what_is_wrong(tmp_path: Path) -> None:
    config = fake_probe(tmp_path, exit_code=1, stderr="serpens-stallprobe: cannot pin to CPU 0: nope")
    with pytest.raises(floor.FloorError, match="^serpens-stallprobe: cannot pin to CPU 0: nope$"):
        floor.measure_floor(config, 0.1, [0])
    with pytest.raises(floor.FloorError, match="positive duration"):
        floor.measure_floor(config, 0, [0])
    with pytest.raises(floor.FloorError, match="floor CPU = 4096: expected one of"):
        floor.measure_floor(config, 0.1, [4096])
    config["floor"]["probe"] = str(tmp_path / "missing")
    with pytest.raises(floor.FloorError, match="is not built: run `make build`"):
        floor.measure_floor(config, 0.1)


def test_measure_floor_refuses_while_a_started_process_runs(tmp_path: Path) -> None:
    config = fake_probe(tmp_path)
    proc = subprocess.Popen(["sleep", "30"])
    try:
        native.record_started(proc, "generator")
        with pytest.raises(floor.FloorError, match=rf"harness is running generator \(pid {proc.pid}\)"):
            floor.measure_floor(config, 0.1, [0])
    finally:
        native.terminate(proc)
    assert floor.measure_floor(config, 0.1, [0])[0]["cpu"] == 0


@pytest.fixture
def no_benchmark_running(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other sessions may run benchmarks on this machine; the doctor's own logic is what is tested here."""
    monkeypatch.setattr(floor, "running_benchmarks", lambda: [])


def test_doctor_warns_above_the_profile_and_shows_the_histogram(tmp_path: Path,
                                                                no_benchmark_running: None) -> None:
    config = fake_probe(tmp_path, probe_report(COUNTS, max_gap_us=12_000.0))
    checks = doctor.run_checks(config, floor=True)
    cpu0 = next(c for c in checks if c.name == "floor cpu0")
    assert cpu0.status == "warn" and not cpu0.required
    assert "lost 3.50 % of the time, longest gap 12.00 ms" in cpu0.detail
    assert "gaps/s: 10-100 µs 1000, 0.1-1 ms 14, 1-5 ms 2.5, ≥5 ms 1" in cpu0.detail
    assert "longest gap 1.2e+04 > 10000" in cpu0.fix and "lost time" not in cpu0.fix
    assert cpu0.lines[0].startswith("gaps/s by length: 10 µs+: 400  20 µs+: 450")
    assert any(c.name == "quiet machine" for c in checks)
    text = doctor.render(checks)
    assert "gaps/s by length" in text and "failed" in text.splitlines()[-1]
    # inside the profile: ok
    config = fake_probe(tmp_path, probe_report([100] + [0] * 12, lost_ratio=0.01, max_gap_us=15.0))
    assert next(c for c in doctor.run_checks(config, floor=True) if c.name == "floor cpu0").status == "ok"


def test_doctor_without_floor_or_with_it_turned_off_runs_no_probe(tmp_path: Path,
                                                                   no_benchmark_running: None) -> None:
    config = fake_probe(tmp_path)
    assert not any(c.name.startswith("floor") for c in doctor.run_checks(config))
    config["doctor"]["floor_probe_s"] = 0
    off = [c for c in doctor.run_checks(config, floor=True) if c.name == "machine floor"]
    assert off and off[0].ok and "not measured" in off[0].detail
    assert not (tmp_path / "calls").exists()


def test_doctor_does_not_probe_while_a_benchmark_runs(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(floor, "running_benchmarks", lambda: ["serpens-gen (pid 4242)"])
    skipped = [c for c in doctor.run_checks(fake_probe(tmp_path), floor=True) if c.name == "machine floor"]
    assert skipped and skipped[0].status == "warn"
    assert "not measured: a benchmark is running (serpens-gen (pid 4242))" in skipped[0].detail
    assert not (tmp_path / "calls").exists()


def test_running_benchmarks_names_the_harness_data_plane_processes(tmp_path: Path) -> None:
    fake_gen = tmp_path / "serpens-gen"        # a process whose name is the generator's
    shutil.copy("/bin/sleep", fake_gen)
    procs = [subprocess.Popen([str(fake_gen), "30"]), subprocess.Popen(["sleep", "30"])]
    try:
        running = " ".join(floor.running_benchmarks())
        assert f"serpens-gen (pid {procs[0].pid})" in running
        assert f"(pid {procs[1].pid})" not in running
    finally:
        for p in procs:
            native.terminate(p)


def test_eal_arguments_name_the_configured_cpus() -> None:
    assert native.eal_cpus(["gen", "-l", "1", "--no-pci"]) == [1]
    assert native.eal_cpus(["rt", "--lcores", "64@0"]) == [0]
    assert native.eal_cpus(["x", "-l", "0-2,5"]) == [0, 1, 2, 5]
    assert native.eal_cpus(["redis-server", "redis.conf"]) is None


def test_the_registry_reads_back_where_a_started_process_may_run() -> None:
    core = sysinfo.online_cpus()[-1]
    proc = subprocess.Popen(["sleep", "30"], preexec_fn=lambda: os.sched_setaffinity(0, {core}))
    since = time.time() - 1
    try:
        native.record_started(proc, "tester", [core])
        deadline = time.monotonic() + 5
        while native.started_processes()[proc.pid]["comm"] != "sleep" and time.monotonic() < deadline:
            time.sleep(0.05)
        entry = native.started_processes(since=since)[proc.pid]
        assert entry["role"] == "tester" and entry["command"] == "sleep"
        assert entry["configured_cpus"] == [core] and entry["cpus_allowed"] == [core]
        assert entry["alive"] and entry["read_back_at"] is not None
    finally:
        native.terminate(proc)
    gone = native.started_processes()[proc.pid]
    assert gone["alive"] is False and gone["cpus_allowed"] == [core]     # what it ran with is kept
    assert proc.pid not in native.started_processes(since=time.time() + 1)
