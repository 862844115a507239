"""serpens-startbench (native/startup): every startup method starts working instances of the real FW on the
real runtime — each instance reports ready, processes the packet queued with its start request and passes
it (verdict SP_PASS) — alone and several at once; memory mode counts the processes each method keeps
resident and the images Serpens keeps in shared memory. Behaviour only; the numbers are `make figure-11`'s
and `make table-4`'s."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from experiments.startup import memory_rows, run_startbench, startup_rows
from harness import config as cfg
from harness.config import repo_path
from harness.progress import Progress

pytestmark = pytest.mark.dpdk

METHODS = ["exec", "fork", "load", "thread", "snapshot", "serpens"]


def declared_loaders(binary: str) -> dict[str, str]:
    """method -> loader, from the starters table a binary links (native/serpens/startup; `--starters`)."""
    out = subprocess.run([str(repo_path(binary)), "--starters"], capture_output=True, text=True,
                         check=True).stdout
    return {line.split()[0]: line.split("loader=")[1].split()[0] for line in out.splitlines()}


def test_every_method_starts_instances_that_process_their_first_packet(tmp_path: Path) -> None:
    c = cfg.load()
    samples = run_startbench(c, ["--instances", "1,3", "--reps", "3", "--slow-reps", "2", "--pool", "3"],
                             tmp_path / "s.jsonl", Progress("test"), "test-startbench")
    starts = [s for s in samples if s["kind"] == "startup"]
    # the instances load their NF with the loader serpensd's starter table names for the method (the
    # same table: tests/integration/test_serpens_startup.py checks that serpensd's instances do too)
    loaders = declared_loaders(c["startup"]["startbench"])
    assert loaders == declared_loaders(c["platforms"]["serpens"]["serpensd"])
    for m in METHODS:
        mine = [s for s in starts if s["method"] == m]
        rounds = 3 if m in ("load", "thread", "serpens") else 2
        assert len(mine) == rounds * 1 + rounds * 3, m
        for s in mine:
            assert s["ok"] and s["error"] == "", s
            assert s["loader"] == loaders[m], s
            assert s["nf_verdict"] == 0, s  # the FW passes a benign packet
            assert 0 < s["woke_us"] <= s["ready_us"] <= s["first_packet_us"], s
            assert s["instance_cpu"] in (0, 1)
    rows = {(r["mechanism"], r["n_instances"]): r for r in startup_rows(samples)}
    assert set(rows) == {(m, n) for m in METHODS for n in (1, 3)}
    assert all(r["startup_all_p50_us"] >= r["startup_p50_us"] * 0.999 for r in rows.values())


def test_memory_mode_counts_resident_processes_and_images(tmp_path: Path) -> None:
    c = cfg.load()
    args = ["--methods", "serpens,load,fork,exec", "--memory-steps", "1,4", "--pool", "2"]
    samples = run_startbench(c, args, tmp_path / "m.jsonl", Progress("test"), "test-startbench")
    rows = {(r["mechanism"], r["n_nfs"]): r for r in memory_rows(samples)}
    # the pool (2) + the orchestrator, whatever is deployed; one process per NF for load and fork
    assert rows[("serpens", 1)]["n_processes"] == 3 and rows[("serpens", 4)]["n_processes"] == 3
    assert rows[("load", 4)]["n_processes"] == 5 and rows[("fork", 4)]["n_processes"] == 5
    assert rows[("load_pool", 4)]["n_processes"] == 3
    assert rows[("exec", 4)]["n_processes"] == 1
    # a deployed NF costs Serpens its image pages only; a per-NF process costs megabytes
    per_nf = rows[("serpens", 4)]["memory_per_nf_kb"]
    assert 0 < rows[("serpens", 1)]["image_kb"] and per_nf == pytest.approx(rows[("serpens", 1)]["image_kb"],
                                                                          rel=0.5)
    assert rows[("fork", 4)]["memory_per_nf_kb"] > 1024
