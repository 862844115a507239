"""The built-in generator converts TSC ticks with the kernel's TSC frequency, not DPDK's rounded estimate,
and the sidecar records which frequency that was (harness/tsc.py, issue 13)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness import config as cfg
from harness import tsc
from harness.cli import main
from harness.rig import rig
from harness.traffic import profiles

pytestmark = pytest.mark.dpdk


def test_the_generator_uses_the_kernels_tsc_frequency(dpdk_ready: cfg.Config) -> None:
    kernel = tsc.kernel_tsc()
    assert kernel is not None, "the kernel's TSC frequency is readable (its log, or its TSC clocksource)"
    with rig(dpdk_ready, "wire") as r:
        r.generator.run_trial(profiles.udp_flows(10_000, 64, 4), duration=0.2)
        report = r.generator.get_stats().raw
    assert report["tsc_hz"] == kernel.hz
    print(f"kernel {kernel.hz / 1e6:.3f} MHz ({kernel.source}), DPDK {report['tsc_hz_dpdk'] / 1e6:.3f} MHz")


def test_the_sidecar_records_the_tsc_frequency(dpdk_ready: cfg.Config, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--quick", "run", "--rate-mpps", "0.05", "--duration", "0.3", "--out",
                                       str(tmp_path)], obj={})
    assert result.exit_code == 0, result.output
    (sidecar,) = tmp_path.glob("*.json")
    meta = json.loads(sidecar.read_text())
    assert meta["tsc"]["hz"] == tsc.kernel_tsc().hz
    assert meta["tsc"]["source"].startswith(("kernel", "sysfs", "CLOCK"))


@pytest.mark.parametrize("platform", ["wire", "serpens"])
def test_the_platforms_convert_their_busy_times_with_the_kernels_tsc_frequency(dpdk_ready: cfg.Config,
                                                                                 platform: str) -> None:
    """serpensd and serpens-wire get the kernel's value too (``--tsc-hz``): their stage costs in ns use it,
    and their stats say which frequency that was."""
    kernel = tsc.kernel_tsc()
    assert kernel is not None
    with rig(dpdk_ready, platform) as r:
        r.generator.run_trial(profiles.udp_flows(10_000, 64, 4), duration=0.2)
        stats = r.platform.stats()
    assert stats["tsc_hz"] == kernel.hz


def test_the_raw_clock_gives_the_kernels_calibration() -> None:
    """When the kernel log has wrapped, the TSC counted against CLOCK_MONOTONIC_RAW stands in for it: it is
    the kernel's own conversion (harness/tsc.py). It must agree with the log's value to the kHz where both
    exist, and with DPDK's 10 MHz-rounded estimate's neighbourhood everywhere."""
    raw = tsc._from_raw_clock()
    assert raw is not None, "serpens-tschz: this machine's kernel clocksource is the TSC"
    logged = tsc.parse_kernel_log(tsc._read_kmsg()) or tsc.parse_kernel_log(tsc._read_journal())
    if logged is not None:
        assert abs(raw.hz - logged.hz) <= 1000, (raw, logged)
    assert 1e8 < raw.hz < 1e11
