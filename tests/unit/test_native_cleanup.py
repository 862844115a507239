"""What a run's DPDK processes leave is removed whoever fails (harness/native.py): a run directory's removal
takes the DPDK files of its tag with it, files of dead runs that no run directory leads to any more are
reclaimed, and the one line that says why a DPDK process failed is found among EAL's messages. Files in
directories of the test's own, standing in for /dev/hugepages and /var/run/dpdk."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from harness import config as cfg
from harness.native import RunDir, failure_cause, reclaim_orphan_files, remove_tag_files


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    pages, dpdk = tmp_path / "hugepages", tmp_path / "dpdk"
    pages.mkdir()
    dpdk.mkdir()
    return pages, dpdk


def _dpdk_files(pages: Path, dpdk: Path, prefix: str) -> None:
    (pages / f"{prefix}map_0").write_bytes(b"")
    (pages / f"{prefix}map_17").write_bytes(b"")
    (dpdk / prefix).mkdir()
    (dpdk / prefix / "config").write_bytes(b"")


def test_removing_a_run_dir_removes_its_tags_dpdk_files_only(dirs: tuple[Path, Path], tmp_path: Path) -> None:
    pages, dpdk = dirs
    conf = cfg.load(overrides=[f"machine.runtime_dir={tmp_path / 'rt'}", f"machine.hugepage_mount={pages}"])
    run, other = RunDir(conf, "serpens"), RunDir(conf, "wire")
    try:
        for prefix in (f"serpens-{run.tag}", f"gen-{run.tag}", f"wire-{other.tag}"):
            _dpdk_files(pages, dpdk, prefix)
        remove_tag_files(run.tag, pages, dpdk)
        kept = f"wire-{other.tag}"
        assert sorted(p.name for p in pages.iterdir()) == [f"{kept}map_0", f"{kept}map_17"]
        assert [p.name for p in dpdk.iterdir()] == [kept]
    finally:
        run.remove()
        other.remove()
    assert not run.path.exists() and not other.path.exists()


def test_orphaned_files_of_dead_runs_are_reclaimed_and_live_ones_kept(dirs: tuple[Path, Path]) -> None:
    pages, dpdk = dirs
    gone = subprocess.Popen(["true"])
    gone.wait()                                     # its pid is free now
    live = subprocess.Popen(["sleep", "60"])
    # a process that names a dead run's prefix is still ending (a daemon after its harness died): kept
    ending_prefix = "serpens-fission-999999998-0a1b2c"
    ending = subprocess.Popen(["sh", "-c", "sleep 60; true", ending_prefix])   # $0 names it
    while ending_prefix.encode() not in Path(f"/proc/{ending.pid}/cmdline").read_bytes():
        time.sleep(0.01)     # until it has exec'd: a forked child still shows the parent's arguments
    try:
        dead_prefix, live_prefix = f"serpens-fission-state-{gone.pid}-abc123", f"wire-{live.pid}-abc123"
        for prefix in (dead_prefix, live_prefix, ending_prefix, "rte", "not-ours-12"):
            _dpdk_files(pages, dpdk, prefix)
        removed = reclaim_orphan_files(pages, dpdk)
        assert sorted(removed) == sorted([dead_prefix, f"{dead_prefix}map_0", f"{dead_prefix}map_17"])
        left = {p.name for p in dpdk.iterdir()}
        assert left == {live_prefix, ending_prefix, "rte", "not-ours-12"}
        assert not list(pages.glob(f"{dead_prefix}*")) and len(list(pages.iterdir())) == 8
    finally:
        for p in (live, ending):
            p.kill()
            p.wait()


@pytest.mark.parametrize("text, cause", [
    ("EAL: No free 1048576 kB hugepages reported on node 0\nusage: serpens-gen [EAL args] -- ...\n"
     "EAL: Error - exiting with code: 2\n  Cause: invalid --duration (0.001..1000000 s): '1e-06'\n",
     "invalid --duration (0.001..1000000 s): '1e-06'"),
    ("EAL: Error - exiting with code: 1\n  Cause: cannot reserve a 100000 MiB state region: Cannot allocate "
     "memory (more hugepages?)", "cannot reserve a 100000 MiB state region: Cannot allocate memory "
     "(more hugepages?)"),
    ("serpensd: --batch must be 1..128\nusage: serpensd ...", None),
    ("", None),
])
def test_the_cause_of_a_dpdk_failure_is_rte_exits_line(text: str, cause: str | None) -> None:
    assert failure_cause(text) == cause


def test_a_run_tree_with_immutable_nf_copies_is_removed(tmp_path: Path) -> None:
    # serpensd makes its NF copies immutable (docs/security.md); a killed serpensd leaves them so
    import array
    import fcntl

    from harness.native import remove_run_tree

    run = tmp_path / "run"
    (run / "nfs").mkdir(parents=True)
    copy = run / "nfs" / "nat.so"
    copy.write_bytes(b"\x7fELF")
    fd = os.open(copy, os.O_RDONLY)
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, 0x80086601, flags, True)
        flags[0] |= 0x10
        fcntl.ioctl(fd, 0x40086602, flags, True)
    except OSError as exc:
        pytest.skip(f"cannot set FS_IMMUTABLE_FL here: {exc}")
    finally:
        os.close(fd)
    with pytest.raises(PermissionError):
        copy.unlink()
    remove_run_tree(run)
    assert not run.exists()
