"""The TSC frequency: the kernel's calibration, not DPDK's rounded estimate.

The built-in generator times every packet and every latency sample in TSC ticks; a rate or a latency is
ticks over the TSC frequency. Where x86 has no precise source (CPUID leaf 0x15 or an MSR: absent in most
VMs), DPDK estimates the frequency over a sleep and rounds it to 10 MHz — 2450.000 MHz where the kernel
measured 2445.406, which reads every rate 0.19 % high and every latency 0.19 % low (issue 13). The kernel
calibrates the TSC against its other clocks at boot (on KVM it takes the hypervisor's value) and says so in
its log; that is the number the harness passes to the generator (``--tsc-hz``) and records in every
sidecar, with where it came from.

Sources, best first: ``/sys/devices/system/cpu/cpu0/tsc_freq_khz`` (kernels that export ``tsc_khz``), the
kernel log's "Refined TSC clocksource calibration" (bare metal: the second, longer calibration), its "tsc:
Detected ... MHz" line. Both log lines give kHz resolution, 0.4 ppm at 2.5 GHz. The log wraps on a machine
that has been up for hours; then, when the TSC is the kernel's clocksource, the TSC counted against
CLOCK_MONOTONIC_RAW gives the same calibration (:func:`_from_raw_clock`). When none can be read, the
generator keeps DPDK's value and the sidecar says that it is an estimate.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.native import NativeError, binary

SYSFS_TSC_KHZ = Path("/sys/devices/system/cpu/cpu0/tsc_freq_khz")
KMSG = "/dev/kmsg"

# "tsc: Refined TSC clocksource calibration: 2445.406 MHz"; "tsc: Detected 2596.156 MHz processor"
# (or "... MHz TSC" when the kernel took it from CPUID/MSR/the hypervisor)
_REFINED = re.compile(r"tsc: Refined TSC clocksource calibration: (\d+\.\d+) MHz")
_DETECTED = re.compile(r"tsc: Detected (\d+\.\d+) MHz (?:processor|TSC)")


@dataclass(frozen=True)
class TscFrequency:
    hz: int
    source: str        # where it was read: sysfs tsc_freq_khz, kernel log (refined / detected)

    def to_json(self) -> dict[str, Any]:
        return {"hz": self.hz, "mhz": round(self.hz / 1e6, 3), "source": self.source}


def parse_kernel_log(text: str) -> TscFrequency | None:
    """The TSC frequency a kernel log states: the refined calibration when there is one (it supersedes the
    early one), else the detected frequency. Pure; unit-tested."""
    for pattern, what in ((_REFINED, "kernel log: refined TSC calibration"),
                          (_DETECTED, "kernel log: TSC frequency detected at boot")):
        found = pattern.findall(text)
        if found:
            return TscFrequency(round(float(found[-1]) * 1e6), what)
    return None


def _read_kmsg() -> str:
    """Every record still in the kernel's ring buffer (non-blocking: /dev/kmsg blocks at its end)."""
    lines: list[str] = []
    try:
        fd = os.open(KMSG, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return ""
    try:
        while True:
            try:
                record = os.read(fd, 8192)
            except BlockingIOError:
                break
            except OSError:      # EPIPE: a record was overwritten while reading; go on with the next
                continue
            if not record:
                break
            lines.append(record.decode(errors="replace").split(";", 1)[-1])
    finally:
        os.close(fd)
    return "".join(lines)


def _read_journal() -> str:
    """This boot's kernel messages from the journal (the ring buffer may have wrapped since boot)."""
    try:
        out = subprocess.run(["journalctl", "-k", "-b", "0", "--no-pager", "-o", "cat", "-g", "tsc"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout if out.returncode == 0 else ""


@functools.cache
def kernel_tsc() -> TscFrequency | None:
    """The kernel's TSC frequency, or None when no source can be read (cached: it never changes)."""
    try:
        khz = int(SYSFS_TSC_KHZ.read_text().strip())
        if khz > 0:
            return TscFrequency(khz * 1000, "sysfs tsc_freq_khz")
    except (OSError, ValueError):
        pass
    for read in (_read_kmsg, _read_journal):
        found = parse_kernel_log(read())
        if found is not None:
            return found
    return _from_raw_clock()


def _from_raw_clock() -> TscFrequency | None:
    """The kernel's conversion of the TSC when its log has wrapped (a machine up for hours, with many
    messages since boot): ``serpens-tschz`` (native/tools/tschz.c) counts TSC ticks over CLOCK_MONOTONIC_RAW,
    which the kernel derives from the TSC with the mult/shift of its calibrated tsc_khz when the TSC is its
    clocksource. Rounded to kHz, the kernel's own resolution (measured 0.05 ppm from the logged value)."""
    try:
        probe = binary("build/native/tools/serpens-tschz")
        out = subprocess.run([str(probe)], capture_output=True, text=True, timeout=10)
        hz = float(out.stdout.strip()) if out.returncode == 0 else 0.0
    except (NativeError, OSError, subprocess.SubprocessError, ValueError):
        return None
    if hz <= 0:
        return None
    return TscFrequency(round(hz / 1000) * 1000, "CLOCK_MONOTONIC_RAW of the kernel's TSC clocksource")


def facts() -> dict[str, Any]:
    """For a sidecar: the frequency the generator is given and where it came from."""
    found = kernel_tsc()
    if found is None:
        return {"hz": None, "source": "none readable: the generator uses DPDK's estimate (rounded to 10 MHz "
                                      "without a precise source; its report's tsc_hz says which)"}
    return found.to_json()
