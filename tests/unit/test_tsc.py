"""The TSC frequency from the kernel's own words (harness/tsc.py): the refined calibration wins over the
boot-time one, both are read to the kHz, and a log without either gives nothing, never a guess."""

from __future__ import annotations

from harness.tsc import parse_kernel_log

BARE_METAL = """[    0.000000] tsc: Fast TSC calibration using PIT
[    0.000000] tsc: Detected 2445.500 MHz processor
[    1.912345] tsc: Refined TSC clocksource calibration: 2445.406 MHz
[    1.912360] clocksource: tsc: mask: 0xffffffffffffffff max_cycles: 0x233f7d3bd5a
"""
KVM = """[    0.000059] tsc: Detected 2596.156 MHz processor
[    0.383290] clocksource: Switched to clocksource tsc
"""


def test_the_refined_calibration_wins_over_the_boot_estimate() -> None:
    found = parse_kernel_log(BARE_METAL)
    assert found is not None and found.hz == 2_445_406_000 and "refined" in found.source


def test_a_vm_gives_the_frequency_detected_at_boot_to_the_khz() -> None:
    found = parse_kernel_log(KVM)
    assert found is not None and found.hz == 2_596_156_000 and "detected" in found.source
    assert found.to_json()["mhz"] == 2596.156


def test_detected_tsc_lines_count_too() -> None:
    found = parse_kernel_log("tsc: Detected 3000.000 MHz TSC\n")
    assert found is not None and found.hz == 3_000_000_000


def test_a_log_without_a_tsc_line_gives_nothing() -> None:
    assert parse_kernel_log("clocksource: Switched to clocksource kvm-clock\n") is None
    assert parse_kernel_log("") is None
