"""The C-level smoke test of serpens-gen against serpens-wire (tests/native/smoke.sh): exit codes of every
refused STL field, a missing peer, SIGINT, every-packet accounting and the capture — checked without the
Python drivers in between, so a fault is located in the C parts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness import config as cfg

pytestmark = pytest.mark.dpdk
ROOT = Path(__file__).resolve().parents[2]


def test_native_smoke_script_passes(dpdk_ready: cfg.Config) -> None:
    proc = subprocess.run(["bash", str(ROOT / "tests/native/smoke.sh"), str(ROOT / "build/native")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "smoke: ok" in proc.stdout
