"""Shared fixtures. Integration tests (marker `dpdk`) need root, hugepages and the built binaries; when
those are missing they fail with the reason (CI runs `make test`, which sets all of it up) unless
SERPENS_SKIP_DPDK=1 is set, e.g. on a laptop without hugepages."""

from __future__ import annotations

import os

import pytest

from harness import config as cfg
from harness import doctor, runlock

# Runs take the run lock (harness/runlock.py). A test session started beside another one, or beside a
# `harness run`, waits for it instead of failing with "another run is using the cores".
runlock.set_default_wait(float(os.environ.get("SERPENS_TEST_LOCK_WAIT_S", "1800")))


@pytest.fixture
def config() -> cfg.Config:
    return cfg.load()


@pytest.fixture(scope="session")
def dpdk_ready() -> cfg.Config:
    """The default configuration, after checking the machine can run DPDK processes."""
    conf = cfg.load(quick=True)
    bad = [c for c in doctor.run_checks(conf)
           if c.status == "FAIL" and c.name not in ("TRex server",)]
    if bad:
        msg = "; ".join(f"{c.name}: {c.detail} (fix: {c.fix})" for c in bad)
        if os.environ.get("SERPENS_SKIP_DPDK") == "1":
            pytest.skip(f"DPDK not ready: {msg}")
        pytest.fail(f"DPDK not ready (run `make setup`): {msg}")
    return conf
