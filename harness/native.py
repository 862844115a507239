"""Running the C parts: finding the built binaries, DPDK EAL arguments, per-run directories, clean-up.

Every DPDK process the harness starts gets its own ``--file-prefix`` (or ``--in-memory``), and its hugepage
files and ``/var/run/dpdk/<prefix>`` are removed afterwards (DESIGN.md section 10), so runs never see each
other's leftovers and a crashed run does not eat the hugepages of the next one.

Every process the harness starts is recorded with its role (:func:`record_started`); while it lives, its
CPU affinity is read back from the OS now and then, so that :func:`started_processes` can tell a run's
sidecar where each one was actually allowed to run — including a generator that ran for one trial and is
gone by the time the sidecar is written.
"""

from __future__ import annotations

import copy
import os
import re
import select
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from harness import sysinfo
from harness.config import Config, repo_path


class NativeError(RuntimeError):
    """A native component is missing, failed to start, or died."""


def binary(path: str) -> Path:
    p = repo_path(path)
    if not p.is_file() or not os.access(p, os.X_OK):
        raise NativeError(f"{p} is not built: run `make build` (meson + ninja, see README)")
    return p


class RunDir:
    """A per-run directory under machine.runtime_dir for sockets, stream files and reports.

    Its tag (``<name>-<pid>-<random>``) names the run's DPDK file prefixes too, and the file ``owner`` in it
    says which process (pid and kernel start time) owns it, so that a later run can tell a dead run's
    leftovers from a live one's (:func:`reclaim_dead_runs`)."""

    def __init__(self, config: Config, name: str = "run") -> None:
        base = Path(config["machine"]["runtime_dir"])
        self.hugepage_mount = config["machine"]["hugepage_mount"]
        self.tag = f"{name}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.path = base / self.tag
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            st = sysinfo.read_pid_stat(os.getpid())
            (self.path / OWNER_FILE).write_text(f"{os.getpid()} {st.starttime if st else 0}\n")
        except OSError as exc:
            shutil.rmtree(self.path, ignore_errors=True)
            raise NativeError(f"cannot create the run directory {self.path}: {exc.strerror or exc} "
                              "(machine.runtime_dir must be a directory this user can write)") from None
        except BaseException:     # a stop signal while it was being made: nobody else knows it exists
            shutil.rmtree(self.path, ignore_errors=True)
            raise

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def remove(self) -> None:
        """The directory, and any DPDK file with the run's tag: every process of the run has ended by now,
        and one that failed in its EAL init or was killed leaves its files with nobody else to remove them
        (a serpensd that failed to start left its hugepage file, issue 13)."""
        remove_run_tree(self.path)
        remove_tag_files(self.tag, self.hugepage_mount)


OWNER_FILE = "owner"

# linux/fs.h: serpensd makes its copies of NF objects immutable (docs/security.md); rmtree cannot remove
# them until the flag is cleared, which serpensd does itself only when it exits cleanly.
_FS_IOC_GETFLAGS, _FS_IOC_SETFLAGS, _FS_IMMUTABLE_FL = 0x80086601, 0x40086602, 0x10


def remove_run_tree(path: str | Path) -> None:
    """shutil.rmtree, after clearing the immutable flag of any file in the tree (a killed serpensd's NF
    copies)."""
    import array
    import fcntl

    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                fd = os.open(os.path.join(root, name), os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
            except OSError:
                continue
            try:
                flags = array.array("i", [0])
                fcntl.ioctl(fd, _FS_IOC_GETFLAGS, flags, True)
                if flags[0] & _FS_IMMUTABLE_FL:
                    flags[0] &= ~_FS_IMMUTABLE_FL
                    fcntl.ioctl(fd, _FS_IOC_SETFLAGS, flags, True)
            except OSError:
                pass
            finally:
                os.close(fd)
    shutil.rmtree(path, ignore_errors=True)


def eal_args(lcore: int, prefix: str | None, vdevs: Sequence[str], in_memory: bool = False) -> list[str]:
    """EAL arguments for a process on one lcore with virtual devices only (no PCI scan: faster start)."""
    args = ["-l", str(lcore), "--no-pci", "--no-telemetry", "--log-level=*:warning"]
    if in_memory:
        args.append("--in-memory")
    elif prefix:
        args += ["--file-prefix", prefix]
    for v in vdevs:
        args += ["--vdev", v]
    return args


def cleanup_prefix(prefix: str, hugepage_mount: str = "/dev/hugepages") -> None:
    """Remove what a DPDK primary with ``--file-prefix prefix`` leaves behind if it did not exit cleanly."""
    shutil.rmtree(f"{DPDK_RUN_DIR}/{prefix}", ignore_errors=True)
    mount = Path(hugepage_mount)
    if mount.is_dir():
        for f in mount.glob(f"{prefix}map_*"):
            try:
                f.unlink()
            except OSError:
                pass


DPDK_RUN_DIR = "/var/run/dpdk"


def remove_tag_files(tag: str, hugepage_mount: str | Path = "/dev/hugepages",
                     dpdk_run_dir: str | Path = DPDK_RUN_DIR) -> None:
    """Remove the ``/var/run/dpdk`` entries and hugepage files of every DPDK prefix naming a run's tag (each
    process of a run has a prefix of its own: ``wire-<tag>``, ``serpens-<tag>``, ...)."""
    for entry in Path(dpdk_run_dir).glob(f"*{tag}*"):
        shutil.rmtree(entry, ignore_errors=True)
    mount = Path(hugepage_mount)
    if mount.is_dir():
        for f in mount.glob(f"*{tag}map_*"):
            try:
                f.unlink()
            except OSError:
                pass


# A run's tag ends in ``-<pid>-<6 hex>`` (RunDir); a hugepage file adds ``map_<n>`` to the DPDK prefix.
_TAGGED = re.compile(r"-(\d+)-[0-9a-f]{6}(map_\d+)?$")


def reclaim_orphan_files(hugepage_mount: str | Path = "/dev/hugepages",
                         dpdk_run_dir: str | Path = DPDK_RUN_DIR) -> list[str]:
    """Remove DPDK files of runs whose process is gone and whose run directory is gone too, so that no run
    directory leads to them (a harness killed after removing it, or a runtime directory of its own that has
    since been deleted, e.g. a test's). The pid in the name decides: a live process with that pid, even a
    reused one, keeps the files, and so does a live process with the prefix in its arguments (a daemon
    still ending after its harness died). Returns the names removed."""
    removed = []
    candidates = list(Path(dpdk_run_dir).glob("*"))
    mount = Path(hugepage_mount)
    if mount.is_dir():
        candidates += list(mount.glob("*map_*"))
    for path in candidates:
        m = _TAGGED.search(path.name)
        if m is None or sysinfo.read_pid_stat(int(m.group(1))) is not None:
            continue
        prefix = path.name[:-len(m.group(2))] if m.group(2) else path.name
        if _processes_naming(prefix):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                path.unlink()
            except OSError:
                continue
        removed.append(path.name)
    return removed


def _owner_alive(run_path: Path) -> bool:
    """Whether the process that made a run directory still runs (pid and start time both match: a reused
    pid is not the owner)."""
    try:
        pid_text, start_text = (run_path / OWNER_FILE).read_text().split()[:2]
        pid, start = int(pid_text), int(start_text)
    except (OSError, ValueError):
        # no owner file (a run being made right now, or an older harness): the pid in the tag decides
        parts = run_path.name.rsplit("-", 2)
        if len(parts) != 3 or not parts[1].isdigit():
            return True        # not ours: leave it alone
        pid, start = int(parts[1]), 0
    st = sysinfo.read_pid_stat(pid)
    return st is not None and (start == 0 or st.starttime == start)


def _processes_naming(tag: str) -> list[int]:
    """Live processes whose command line names a run's tag (its sockets and prefixes are in their
    arguments): what a killed run's daemons would be if they outlived it."""
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                if tag.encode() in f.read():
                    out.append(int(entry.name))
        except OSError:
            continue
    return out


def reclaim_dead_runs(config: Config) -> list[str]:
    """Remove what runs whose owner process is gone left behind (a SIGKILLed harness cannot clean up after
    itself): their run directories, ``/var/run/dpdk`` entries and hugepage files, and any process still
    running with their sockets in its arguments. Only called with the run lock held
    (:mod:`harness.runlock`), so no run is being set up meanwhile. Returns the tags reclaimed."""
    base = Path(config["machine"]["runtime_dir"])
    mount = Path(config["machine"]["hugepage_mount"])
    try:
        runs = [p for p in base.iterdir() if p.is_dir()]
    except OSError:
        runs = []
    reclaimed = []
    for run_path in runs:
        if _owner_alive(run_path):
            continue
        tag = run_path.name
        for pid in _processes_naming(tag):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        remove_tag_files(tag, mount)
        remove_run_tree(run_path)
        reclaimed.append(tag)
    reclaim_orphan_files(mount)
    return reclaimed


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """A ``preexec_fn``: the child gets SIGTERM when the harness process dies, however it dies (SIGKILL
    included), so that a killed experiment never leaves a serpensd, a generator or a redis-server spinning
    on the cores of the next one. Only for children started by the main thread: Linux sends the signal
    when the *thread* that forked exits."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() == 1:       # the parent died between fork and prctl
        os._exit(1)


# A stop signal that arrives while a child is being forked (harness/cli.py's handler calls interrupt()).
_fork_guard: dict[str, Any] = {"active": False, "pending": None}


def interrupt(signum: int) -> None:
    """What the harness's stop-signal handler does: raise KeyboardInterrupt, so that the context managers
    stop what runs and remove its files — or, while :func:`popen` forks, note it for popen to raise."""
    if _fork_guard["active"]:
        _fork_guard["pending"] = signum
        return
    raise KeyboardInterrupt(f"signal {signum}")


def popen(cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen:  # type: ignore[type-arg]
    """``subprocess.Popen`` for the harness's children, safe against a stop signal in the middle.

    A ``preexec_fn`` makes CPython fork through its at-fork handlers (logging registers one), and a
    KeyboardInterrupt raised by the signal handler inside one is only printed ("Exception ignored"): a
    SIGTERM sent while serpensd or Redis was being started was lost, and the run went on to a result.
    (Blocking the signals in this thread is not enough: the kernel hands a process-directed signal to any
    thread that does not block it, and the handler still runs here.) So the signal is noted while the child
    is forked, and raised once the child is known, after stopping it: nobody else would."""
    if threading.current_thread() is not threading.main_thread():   # handlers run in the main thread only
        return subprocess.Popen(list(cmd), **kwargs)
    _fork_guard["active"], _fork_guard["pending"] = True, None
    proc = None
    try:
        proc = subprocess.Popen(list(cmd), **kwargs)
    except BaseException as exc:
        _fork_guard["active"] = False
        if _fork_guard["pending"] is not None:
            raise KeyboardInterrupt(f"signal {_fork_guard['pending']}") from exc
        raise
    _fork_guard["active"] = False
    if _fork_guard["pending"] is not None:
        terminate(proc)
        raise KeyboardInterrupt(f"signal {_fork_guard['pending']}")
    return proc


def start_daemon(cmd: Sequence[str], log_file: Path, ready_timeout: float, what: str,
                 cwd: Path | None = None, new_session: bool = False,
                 env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a native daemon that prints ``READY`` on stdout once it can serve; return it when it has.

    stderr goes to ``log_file`` (a pipe nobody reads could fill up and block the daemon). stdout is read
    unbuffered until READY — DPDK may log to stdout, so READY can arrive in one read with other lines,
    where a buffered reader would hide it from select() — and afterwards copied into the log by a thread.
    ``env``: the daemon's environment (default: the harness's).
    """
    log_file.write_text("")
    with open(log_file, "ab") as log:
        proc = popen(cmd, stdout=subprocess.PIPE, stderr=log, bufsize=0, cwd=cwd, env=env,
                     start_new_session=new_session, preexec_fn=die_with_parent)
    record_started(proc, what)
    try:
        _wait_ready(proc, log_file, ready_timeout, what)
    except NativeError:
        terminate(proc)
        raise
    read_back(proc.pid)    # READY: the EAL has pinned it, so what is read now is what it runs with
    _copy_stdout_to_log(proc, log_file, what)
    return proc


def _wait_ready(proc: subprocess.Popen[bytes], log_file: Path, timeout: float, what: str) -> None:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    pending = b""
    with open(log_file, "ab") as log:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            chunk = os.read(fd, 65536) if ready else b""
            if chunk:
                *lines, pending = (pending + chunk).split(b"\n")
                for i, line in enumerate(lines):
                    if line.strip() == b"READY":
                        log.write(b"\n".join(lines[i + 1:] + [pending]))
                        return
                    log.write(line + b"\n")
                log.flush()
                continue
            if proc.poll() is not None:
                log.write(pending)
                log.flush()
                log_text = tail(log_file)
                cause = failure_cause(log_text)
                raise NativeError(f"{what} exited with code {proc.returncode} before it was ready: {cause}"
                                  if cause else f"{what} exited with code {proc.returncode} before it was "
                                  f"ready; its log:\n{log_text}")
            if ready:  # stdout closed but the process still runs: nothing more will come from it
                time.sleep(0.05)
    raise NativeError(f"{what} did not print READY within {timeout:.0f} s; its log:\n{tail(log_file)}")


def _copy_stdout_to_log(proc: subprocess.Popen[bytes], log_file: Path, what: str) -> None:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()

    def run() -> None:
        with open(log_file, "ab") as log:
            while True:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                log.write(chunk)
                log.flush()

    threading.Thread(target=run, name=f"{what}-stdout", daemon=True).start()


def ended(code: int) -> str:
    """How a process ended, as words: Popen's -9 is a signal, not an exit code."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "?"
        return f"was killed by signal {-code} ({name})"
    return f"exited with code {code}"


def failure_cause(text: str) -> str | None:
    """The one line that says why a DPDK process failed: ``rte_exit`` prints ``Cause: <why>`` after EAL's
    own messages (and a usage text, for a bad argument), where it is easily buried. None when the process
    did not exit through ``rte_exit``."""
    causes = [line.strip()[len("Cause:"):].strip() for line in text.splitlines()
              if line.strip().startswith("Cause:")]
    return causes[-1] if causes and causes[-1] else None


def tail(log_file: Path, chars: int = 2000) -> str:
    try:
        return log_file.read_text(errors="replace").strip()[-chars:]
    except OSError:
        return "(no log)"


def terminate(proc: subprocess.Popen, timeout: float = 10.0) -> int:  # type: ignore[type-arg]
    """SIGTERM, wait, SIGKILL if it will not go. Returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    return proc.returncode


# --- the registry of started processes ---------------------------------------------------------------

# After a start, affinities are read back at these delays (s) — a DPDK process pins itself during EAL
# init, some ms after exec — then every _READ_BACK_EVERY_S while it lives. Few wake-ups: the harness runs
# on the generator's core (sysinfo.pin_self) and every wake-up preempts the generator.
_READ_BACK_AFTER_S = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2)
_READ_BACK_EVERY_S = 5.0

_started: dict[int, dict[str, Any]] = {}         # pid → what started_processes() returns
_tracked: dict[int, tuple[int, float, int]] = {}  # pid → (starttime, next read-back, step), while alive
_cond = threading.Condition()
_sampler: threading.Thread | None = None


def eal_cpus(cmd: Sequence[str]) -> list[int] | None:
    """The CPUs an EAL command line asks for: ``-l 0-1`` → [0, 1]; ``--lcores 64@0`` → [0]."""
    args = list(cmd)
    for flag in ("-l", "--lcores"):
        if flag in args[:-1]:
            value = args[args.index(flag) + 1]
            cpus: set[int] = set()
            for group in value.replace("(", "").replace(")", "").split(","):
                cpus.update(sysinfo.parse_cpu_list(group.split("@")[-1]))
            return sorted(cpus)
    return None


def record_started(proc: subprocess.Popen | int, role: str,  # type: ignore[type-arg]
                   configured_cpus: Iterable[int] | None = None) -> None:
    """Note that the harness started ``proc`` as ``role`` (generator, serpensd, redis-server, ...).
    ``configured_cpus`` defaults to what its EAL arguments ask for."""
    pid = proc if isinstance(proc, int) else proc.pid
    if configured_cpus is None and not isinstance(proc, int) and isinstance(proc.args, (list, tuple)):
        configured_cpus = eal_cpus([str(a) for a in proc.args])
    argv0 = proc.args[0] if not isinstance(proc, int) and isinstance(proc.args, (list, tuple)) else None
    st = sysinfo.read_pid_stat(pid)   # the child exists from fork on; its starttime never changes
    entry = {"role": role, "command": Path(str(argv0)).name if argv0 else None, "started_at": time.time(),
             "configured_cpus": sorted(configured_cpus) if configured_cpus is not None else None,
             "comm": None, "cpus_allowed": None, "other_threads": [], "children": {},
             "read_back_at": None, "alive": st is not None}
    with _cond:
        _started[pid] = entry
        if st is not None:
            _tracked[pid] = (st.starttime, time.monotonic() + _READ_BACK_AFTER_S[0], 0)
        _ensure_sampler()
        _cond.notify()


def read_back(pid: int) -> None:
    """Read a started process's affinity now; mark it gone if it has exited (or its pid is reused)."""
    with _cond:
        track = _tracked.get(pid)
    if track is None:
        return
    starttime, _, step = track
    st = sysinfo.read_pid_stat(pid)
    facts = sysinfo.affinities([pid])[pid] if st is not None and st.starttime == starttime else None
    # what it started itself (serpensd's runtimes), as the OS has them; only those still alive are seen
    kids = sysinfo.affinities(sysinfo.descendants(pid)) if facts is not None and facts["alive"] else {}
    with _cond:
        entry = _started.get(pid)
        if entry is None or _tracked.get(pid, (None,))[0] != starttime:
            return
        if facts is not None and facts["cpus_allowed"] is not None:
            entry.update(comm=facts["comm"], cpus_allowed=facts["cpus_allowed"],
                         other_threads=facts["other_threads"], read_back_at=time.time())
            for child in entry["children"].values():
                child["alive"] = False
            entry["children"].update(kids)
        if facts is None or not facts["alive"]:
            entry["alive"] = False
            del _tracked[pid]
            return
        step += 1
        delay = (_READ_BACK_AFTER_S[step] - _READ_BACK_AFTER_S[step - 1] if step < len(_READ_BACK_AFTER_S)
                 else _READ_BACK_EVERY_S)
        _tracked[pid] = (starttime, time.monotonic() + delay, step)


def started_processes(since: float | None = None) -> dict[int, dict[str, Any]]:
    """Every process the harness started (since the wall-clock time ``since``), by pid: ``role``,
    ``command``, ``started_at``, ``configured_cpus``, and, read back from the OS while it ran, ``comm``,
    ``cpus_allowed``, ``other_threads`` (threads allowed elsewhere), ``children`` (what it started in
    turn, e.g. serpensd's runtimes, by pid, as :func:`sysinfo.affinities` reads them) and
    ``read_back_at``; ``alive``. The ones still running are read back again now."""
    with _cond:
        alive = list(_tracked)
    for pid in alive:
        read_back(pid)
    with _cond:
        return {pid: copy.deepcopy(e) for pid, e in _started.items()
                if since is None or e["started_at"] >= since}


def _ensure_sampler() -> None:
    global _sampler
    if _sampler is None or not _sampler.is_alive():
        _sampler = threading.Thread(target=_sample, name="affinity-read-back", daemon=True)
        _sampler.start()


def _sample() -> None:
    while True:
        with _cond:
            now = time.monotonic()
            due = [pid for pid, (_, at, _) in _tracked.items() if at <= now]
            if not due:
                nxt = min((at for _, at, _ in _tracked.values()), default=None)
                _cond.wait(None if nxt is None else nxt - now)
                continue
        for pid in due:
            read_back(pid)
