"""What the rig checks before it starts a DPDK process: free hugepages and cores the machine has, each said in
one line instead of being buried in EAL's messages (harness/rig.py)."""

from __future__ import annotations

import pytest

from harness import config as cfg
from harness import rig as rig_mod
from harness.platforms.base import PlatformError


@pytest.mark.parametrize("pages", [{"total": 0, "free": 0, "size_kb": 2048},
                                   {"total": 1024, "free": 0, "size_kb": 2048}])
def test_no_free_hugepages_is_one_line_before_anything_starts(monkeypatch: pytest.MonkeyPatch, tmp_path,
                                                              pages: dict[str, int]) -> None:
    monkeypatch.setattr(rig_mod.sysinfo, "hugepages", lambda: pages)
    conf = cfg.load(overrides=[f"machine.runtime_dir={tmp_path}"])
    with pytest.raises(PlatformError) as err, rig_mod.rig(conf, "wire"):
        pass
    msg = str(err.value)
    assert msg.startswith(f"no free 2 MiB hugepages (0 free of {pages['total']})") and "\n" not in msg
    assert [p.name for p in tmp_path.iterdir()] == ["lock"], "no run directory was made"


@pytest.mark.parametrize("key", ["platform", "generator"])
def test_a_core_this_machine_does_not_have_is_one_line_naming_the_key(tmp_path, key: str) -> None:  # noqa: ANN001
    # the platform's core reached serpens-wire's EAL init: "EAL initialisation failed: Invalid argument"
    conf = cfg.load(overrides=[f"machine.runtime_dir={tmp_path}", f"cores.{key}=4095"])
    with pytest.raises(PlatformError) as err, rig_mod.rig(conf, "wire"):
        pass
    assert str(err.value).startswith(f"cores.{key} = 4095: expected one of this machine's online CPUs")
    assert [p.name for p in tmp_path.iterdir()] == ["lock"], "no run directory was made"


def test_a_hugepage_mount_that_is_not_hugetlbfs_is_one_line(tmp_path) -> None:  # noqa: ANN001
    # the hugepage files a crashed process leaves are removed from there: a wrong one keeps them
    conf = cfg.load(overrides=[f"machine.runtime_dir={tmp_path}", f"machine.hugepage_mount={tmp_path}"])
    with pytest.raises(PlatformError) as err, rig_mod.rig(conf, "wire"):
        pass
    assert str(err.value).startswith(f"machine.hugepage_mount = {tmp_path}: not a hugetlbfs mount")
