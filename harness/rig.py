"""The rig: a platform under test and a traffic generator wired to it, set up and torn down together.

On one machine the rig starts the platform (the memif server), then a built-in generator that connects to
it; on a testbed the generator is a TRex server reached over the network and the platform runs on the
worker hosts. Experiments and `harness run` only ever see :class:`Rig`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from harness import platforms, runlock, sysinfo
from harness.config import Config
from harness.native import RunDir
from harness.platforms.base import Platform
from harness.platforms.designs import Design
from harness.traffic.base import TrafficGenerator

# generator.trex.server: the harness starts a TRex-compatible server in front of serpens-gen for the run
BUILTIN = "builtin"


@dataclass
class Rig:
    config: Config
    platform: Platform
    generator: TrafficGenerator
    run_dir: RunDir
    extra: dict[str, Any] = field(default_factory=dict)

    def cores(self) -> dict[str, Any]:
        """Which core runs what, for the run metadata."""
        kind = self.config["generator"]["kind"]
        out: dict[str, Any] = {"platform_data_plane": self.config["cores"]["platform"]}
        if kind == "local":
            out["generator"] = self.config["cores"]["generator"]
        elif self.config["generator"]["trex"]["server"] == BUILTIN:
            out["generator"] = self.config["cores"]["generator"]
            out["generator_control"] = "built-in TRex-compatible server (serpens-gen behind TRex's RPC)"
        else:
            out["generator"] = f"TRex at {self.config['generator']['trex']['server']}"
        return out

    def describe(self) -> dict[str, Any]:
        return {"platform": self.platform.describe(), "generator": self.generator.version(),
                "generator_kind": self.config["generator"]["kind"]}


def make_generator(config: Config, platform: Platform, run_dir: RunDir, **kwargs: Any) -> TrafficGenerator:
    kind = config["generator"]["kind"]
    if kind == "local":
        from harness.traffic.local import LocalGenerator
        return LocalGenerator(config, platform.generator_vdevs(), run_dir, **kwargs)
    if kind == "trex":
        if kwargs:   # a per-packet trace or a capture: serpens-gen's own, not in TRex's protocol
            from harness.traffic.base import GeneratorError
            raise GeneratorError(f"generator.kind=trex cannot give {', '.join(sorted(kwargs))}: that needs "
                                 "generator.kind: local")
        t = config["generator"]["trex"]
        if t["server"] == BUILTIN:
            from harness.traffic.trex_server.builtin import BuiltinTRexGenerator
            return BuiltinTRexGenerator(config, platform.generator_vdevs(), run_dir.path)
        from harness.traffic.trex import TRexGenerator
        return TRexGenerator(server=t["server"], sync_port=t["sync_port"], async_port=t["async_port"],
                             tx_port=t["tx_port"], rx_port=t["rx_port"], settle_s=t["settle_ms"] / 1000)
    raise ValueError(f"generator.kind must be 'local' or 'trex', got {kind!r}")


@contextlib.contextmanager
def rig(config: Config, platform_name: str | Design, sfc: Any = None,
        **generator_kwargs: Any) -> Iterator[Rig]:
    """``platform_name``: a registered platform (``wire`` or a design's name), or a
    :class:`~harness.platforms.designs.Design` (e.g. ``SERPENS.replace(startup="fork")``: a test varying one
    axis without a registry entry). ``sfc``: the SFC(s) a platform that runs NFs deploys (a
    harness.serpens.sfc.SfcSpec, a list of them, or --sfc text such as "fw,mon,nat"); platforms without
    NFs take none."""
    if isinstance(platform_name, Design):
        from harness.serpens.platform import DesignPlatform
        design, platform_name = platform_name, platforms.designs.find(platform_name) or "custom"
        cls: platforms.PlatformFactory = functools.partial(DesignPlatform, design=design)
    else:
        cls = platforms.get(platform_name)
        if sfc is not None and not platforms.runs_sfc(platform_name):
            raise platforms.PlatformError(f"the {platform_name} platform runs no NFs; it takes no SFC")
    # one run at a time on these cores (harness/runlock.py); taking it also reclaims dead runs' leftovers
    runlock.acquire(config)
    try:
        _check_hugepages(config)
        _check_cores(config)
        run_dir = RunDir(config, platform_name)
        try:
            platform = cls(config, run_dir) if sfc is None else cls(config, run_dir, sfc=sfc)
        except BaseException:
            run_dir.remove()
            raise
        try:
            with platform:
                generator = make_generator(config, platform, run_dir, **generator_kwargs)
                with generator:
                    yield Rig(config, platform, generator, run_dir)
        finally:
            run_dir.remove()
    finally:
        runlock.release(config)


def _check_cores(config: Config) -> None:
    """A core this machine does not have: the DPDK process given it would fail in its EAL init ("EAL
    initialisation failed: Invalid argument"), not saying which setting was wrong; say it first."""
    local = config["generator"]["kind"] == "local" or config["generator"]["trex"]["server"] == BUILTIN
    keys = ["cores.platform"] + (["cores.generator"] if local else [])
    for key in keys:
        try:
            sysinfo.check_cpu(config["cores"][key.split(".")[1]], key)
        except sysinfo.PinError as exc:
            raise platforms.PlatformError(str(exc)) from None


def _check_hugepages(config: Config) -> None:
    """No free hugepage: every DPDK process would fail in EAL init, its cause buried in EAL's messages; say
    it in one line first. Then the mount the harness removes a run's hugepage files from must be one."""
    hp = sysinfo.hugepages()
    if hp.get("total", 0) == 0 or hp.get("free", 0) == 0:
        raise platforms.PlatformError(
            f"no free 2 MiB hugepages ({hp.get('free', 0)} free of {hp.get('total', 0)}): reserve "
            f"machine.hugepages = {config['machine']['hugepages']} (make setup, or harness doctor says how)")
    mount = config["machine"]["hugepage_mount"]
    if not sysinfo.hugetlbfs_mounted(mount):
        # DPDK finds its hugetlbfs itself: files a crashed process leaves would be looked for elsewhere
        raise platforms.PlatformError(f"machine.hugepage_mount = {mount}: not a hugetlbfs mount (the run's "
                                      "hugepage files are removed from there; make setup mounts it)")
