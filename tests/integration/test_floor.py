"""The machine's floor and pinning on the real machine: the C probe's busy loop (1 s at most), the floor rows
made from it, redis-server pinned where the configuration says (read back from the OS), and the registry
recording what a real rig (DPDK wire + generator) started and where it ran."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import harness.platforms  # noqa: F401  (imports the platforms before redis_server, which needs them)
from harness import config as cfg
from harness import floor, native, sysinfo
from harness.redis_server import RedisServer
from harness.rig import rig
from harness.traffic import profiles


def probe(config: cfg.Config, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(floor.probe_binary(config)), *args], capture_output=True, text=True,
                          timeout=30)


def test_the_probe_runs_one_second_on_cpu0_and_reports_a_plausible_floor(config: cfg.Config) -> None:
    report = floor.run_probe(config, 0, 1.0)
    assert report["cpu"] == 0 and report["cpu_at_end"] == 0
    assert 0.99 <= report["probe_s"] <= 1.5
    assert 0 <= report["lost_ratio"] < 1 and report["max_gap_us"] >= 0
    assert report["loops"] > 1_000_000               # a busy loop, not a sleeping one
    # the rate from the whole run and the 20 ms calibration agree (an invariant TSC)
    assert report["tsc_hz"] == pytest.approx(report["tsc_hz_calibration"], rel=0.01)
    assert sum(b["count"] for b in report["buckets"]) == report["gaps"]
    assert report["lost_s"] == pytest.approx(sum(b["lost_us"] for b in report["buckets"]) / 1e6, abs=1e-5)
    if report["gaps"]:
        assert report["max_gap_us"] == pytest.approx(max(g["gap_us"] for g in report["longest"]))
        assert report["max_gap_us"] >= 10


def test_the_probe_refuses_bad_arguments_in_one_line(config: cfg.Config) -> None:
    for args, code, text in ((["--cpu", "0", "--seconds", "x"], 2, "--seconds x: expected a number"),
                             (["--cpu", "zero", "--seconds", "1"], 2, "--cpu zero: expected a CPU number"),
                             (["--cpu", "1000", "--seconds", "0.1"], 1, "cannot pin to CPU 1000")):
        out = probe(config, *args)
        assert out.returncode == code and out.stdout == ""
        assert len(out.stderr.strip().splitlines()) == 1 and text in out.stderr


def test_measure_floor_gives_one_row_per_vcpu_with_the_floor_columns(config: cfg.Config) -> None:
    rows = floor.measure_floor(config, 0.3)
    assert [r["cpu"] for r in rows] == sysinfo.online_cpus()
    for r in rows:
        assert list(r) == list(floor.FLOOR_COLUMNS)
        assert 0 <= r["floor_lost_ratio"] < 1 and r["probe_s"] >= 0.3
        assert all(r[c] >= 0 for c in floor.GAP_COLUMNS)


needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")


def thread_affinities(pid: int) -> set[tuple[int, ...]]:
    return {tuple(sorted(os.sched_getaffinity(int(t)))) for t in os.listdir(f"/proc/{pid}/task")}


@needs_redis
@pytest.mark.parametrize("core", [None, -1])
def test_redis_server_runs_on_its_configured_core(config: cfg.Config, tmp_path: Path,
                                                  core: int | None) -> None:
    """null: the platform's core (the paper co-locates Redis with the NFs); else redis.core (here the last
    CPU). Every thread of it, as the OS has it, and its sidecar entry says so."""
    want = config["cores"]["platform"] if core is None else sysinfo.online_cpus()[core]
    config["redis"]["core"] = None if core is None else want
    with RedisServer(config, tmp_path) as r:
        assert r.proc is not None
        assert thread_affinities(r.proc.pid) == {(want,)}
        described = r.describe()
        assert described["core"] == want and described["cpus_allowed"] == [want]
        assert f"pinned to CPU {want}" in described["placement"]
        assert native.started_processes()[r.proc.pid]["cpus_allowed"] == [want]


@needs_redis
def test_redis_core_not_on_this_machine_is_one_clear_error(config: cfg.Config, tmp_path: Path) -> None:
    from harness.redis_server import RedisServerError

    config["redis"]["core"] = 4096
    with pytest.raises(RedisServerError, match=r"^redis.core = 4096: expected one of this machine's online"):
        RedisServer(config, tmp_path).start()


@pytest.mark.dpdk
def test_the_registry_records_what_a_rig_started_and_where_it_ran(dpdk_ready: cfg.Config) -> None:
    import time

    since = time.time()
    cores = dpdk_ready["cores"]
    with rig(dpdk_ready, "wire") as r:
        r.generator.run_trial(profiles.load_with_latency(100_000, frame_size=64, n_flows=8), duration=1.0)
        during = native.started_processes(since=since)
    roles = {e["role"]: e for e in during.values()}
    assert set(roles) >= {"serpens-wire", "generator"}
    wire, gen = roles["serpens-wire"], roles["generator"]
    assert wire["alive"] and wire["configured_cpus"] == [cores["platform"]]
    assert wire["cpus_allowed"] == [cores["platform"]]        # read back: the EAL pinned it there
    assert not gen["alive"] and gen["configured_cpus"] == [cores["generator"]]
    assert gen["cpus_allowed"] == [cores["generator"]]        # read back while the trial ran
    after = native.started_processes(since=since)
    assert not any(e["alive"] for e in after.values())
