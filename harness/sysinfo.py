"""Facts about this machine and this checkout, for run metadata and for `harness doctor`."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_bytes() -> int:
    try:
        m = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        return int(m.group(1)) * 1024 if m else 0
    except OSError:
        return 0


def host_facts() -> dict[str, Any]:
    return {
        "hostname": platform.node(),
        "kernel": platform.release(),
        "os": _os_release(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "memory_bytes": memory_bytes(),
        "virtualised": _virt(),
    }


def _os_release() -> str:
    try:
        m = re.search(r'^PRETTY_NAME="?([^"\n]*)', Path("/etc/os-release").read_text(), re.M)
        return m.group(1) if m else "unknown"
    except OSError:
        return "unknown"


def _virt() -> str:
    return _run(["systemd-detect-virt"]) or ("hypervisor" if "hypervisor" in _cpu_flags() else "none")


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def dpdk_version() -> str | None:
    return _run(["pkg-config", "--modversion", "libdpdk"])


def software_versions() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "dpdk": dpdk_version(),
        "redis_server": _first_line(_run(["redis-server", "--version"])),
        "gcc": _first_line(_run(["gcc", "--version"])),
    }


def _first_line(text: str | None) -> str | None:
    return text.splitlines()[0] if text else None


def git_revision() -> dict[str, Any]:
    rev = _run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT)
    dirty = _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT)
    return {"revision": rev, "dirty": bool(dirty) if dirty is not None else None}


def hugepages() -> dict[str, int]:
    """2 MiB hugepage counters from /proc/meminfo."""
    out = {"total": 0, "free": 0, "size_kb": 0}
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return out
    for key, name in (("HugePages_Total", "total"), ("HugePages_Free", "free"), ("Hugepagesize", "size_kb")):
        m = re.search(rf"{key}:\s+(\d+)", text)
        if m:
            out[name] = int(m.group(1))
    return out


def hugetlbfs_mounted(mount: str) -> bool:
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[1] == mount and parts[2] == "hugetlbfs":
                return True
    except OSError:
        pass
    return False


def which(name: str) -> str | None:
    return shutil.which(name)
