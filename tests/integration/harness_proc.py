"""`harness run` as a real process, for the tests of what faults and signals leave behind: started with a
runtime directory of its own (so its run lock and leftovers are the test's alone), watched until its
fixed-rate trial runs, and the places a run can leave files in, looked at afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


@dataclass
class HarnessRun:
    proc: subprocess.Popen[str]
    runtime_dir: Path
    out_dir: Path
    _output: str | None = None

    def wait_for_trial(self, timeout_s: float = 60.0) -> Path:
        """The run directory, once the generator of the fixed-rate trial has its streams file."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = list(self.runtime_dir.glob("*/gen-streams.json"))
            if found and _processes_naming(str(found[0].parent / "memif.sock"), role="serpens-gen"):
                return found[0].parent
            assert self.proc.poll() is None, f"harness run ended early: {self.output()}"
            time.sleep(0.1)
        raise AssertionError(f"no trial started within {timeout_s} s: {self.output()}")

    def finish(self, timeout_s: float = 60.0) -> int:
        return self.proc.wait(timeout=timeout_s)

    def output(self) -> str:
        """Everything it printed, once it has ended (read once, then kept: a test may look twice)."""
        if self.proc.poll() is None:
            return "(still running)"
        if self._output is None:
            assert self.proc.stdout is not None
            self._output = self.proc.stdout.read()
        return self._output

    def sidecar(self) -> dict[str, Any]:
        (path,) = [p for p in self.out_dir.glob("*.json")]
        return json.loads(path.read_text())

    def csv_rows(self) -> int:
        (path,) = list(self.out_dir.glob("*.csv"))
        return len(path.read_text().splitlines()) - 1

    def trial_log(self) -> list[dict[str, Any]]:
        (path,) = list(self.out_dir.glob("*-trials.jsonl"))
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def start_run(tmp_path: Path, *args: str, sets: tuple[str, ...] = ()) -> HarnessRun:
    """`harness run ARGS`, writing its results into ``tmp_path/out``."""
    return start_harness(tmp_path, ("run", *args, "--out", str(tmp_path / "out")), sets)


def start_experiment(tmp_path: Path, name: str, sets: tuple[str, ...] = ()) -> HarnessRun:
    """`harness experiment NAME`, its results and figure under ``tmp_path/out``."""
    out = tmp_path / "out"
    return start_harness(tmp_path, ("experiment", name),
                         (f"results.dir={out}", f"results.figures_dir={out}", *sets))


def start_harness(tmp_path: Path, args: tuple[str, ...], sets: tuple[str, ...] = ()) -> HarnessRun:
    runtime_dir, out_dir = tmp_path / "rt", tmp_path / "out"
    runtime_dir.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "harness.cli", "--quick", "--set", f"machine.runtime_dir={runtime_dir}"]
    for s in sets:
        cmd += ["--set", s]
    cmd += list(args)
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return HarnessRun(proc, runtime_dir, out_dir)


def _processes_naming(text: str, role: str | None = None) -> list[int]:
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if text.encode() in cmdline and (role is None or role.encode() in cmdline):
            out.append(int(entry.name))
    return out


def leftovers(runtime_dir: Path, pid: int, hugepage_mount: str = "/dev/hugepages") -> dict[str, list[str]]:
    """What the run of harness process ``pid`` left: run directories under ``runtime_dir`` (the lock file is
    not one), processes with the runtime directory in their arguments, and /var/run/dpdk entries and
    hugepage files of its runs (their DPDK prefixes carry the run's tag, ``<name>-<pid>-<random>``)."""
    tag = f"-{pid}-"
    runs = [p.name for p in runtime_dir.iterdir() if p.is_dir()] if runtime_dir.is_dir() else []
    dpdk = [p.name for p in Path("/var/run/dpdk").glob(f"*{tag}*")]
    pages = [p.name for p in Path(hugepage_mount).glob(f"*{tag}*map_*")]
    return {"run_dirs": runs, "processes": [str(p) for p in _processes_naming(str(runtime_dir))
                                            if p != os.getpid()],
            "dpdk_entries": dpdk, "hugepage_files": pages}


def wait_until_clean(runtime_dir: Path, pid: int, timeout_s: float = 15.0) -> dict[str, list[str]]:
    """Leftovers once the processes a run started have had time to end (they get SIGTERM when the harness
    dies and then clean up after themselves)."""
    deadline = time.monotonic() + timeout_s
    left = leftovers(runtime_dir, pid)
    while time.monotonic() < deadline and left["processes"]:
        time.sleep(0.2)
        left = leftovers(runtime_dir, pid)
    return left


NOTHING: dict[str, list[str]] = {"run_dirs": [], "processes": [], "dpdk_entries": [], "hugepage_files": []}
