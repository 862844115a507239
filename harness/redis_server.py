"""A redis-server of the run's own, for the platforms that keep NF state remotely (Fission, SNF).

``RedisServer(config, run_dir)`` starts ``redis-server`` on a free loopback port with a pinned
configuration written into the run directory — no persistence (``save ""``, ``appendonly no``), bound to
127.0.0.1, protected mode off, ``maxmemory`` from ``redis.maxmemory_mb`` with ``noeviction`` (state must
never silently disappear), its log file in the run directory — waits until it answers PING, and always
stops it: on ``stop()``, on leaving the ``with`` block, on an exception or KeyboardInterrupt, and when it
fails to come up. The paper co-locates Redis with the NFs (Section V-B); so do we (loopback TCP), and
pin it — every thread it has, from before exec on — to ``redis.core``, by default ``cores.platform``, the
core the NFs it serves run on. :meth:`RedisServer.describe` reports the affinity read back from the OS.

With ``acl=True`` (the remote state backends: docs/security.md, "State in a remote store") every tenant
must stay out of every other tenant's keys, so nobody gets in without a credential: the ``default`` user
(no password) may only PING — what :func:`ping` and :meth:`RedisServer.alive` need — and an admin user
(:attr:`RedisServer.admin`, a random password made per start) may do everything. serpensd gets the admin
credential in its environment (``SERPENS_REDIS_ADMIN``, never on a command line, which every process can
read) and makes one ACL user per tenant from it. The configuration file holds only the password's SHA-256.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import sysinfo
from harness.config import Config
from harness.native import RunDir, die_with_parent, popen, record_started, tail, terminate
from harness.platforms.base import PlatformError


class RedisServerError(PlatformError):
    """redis-server is missing, did not come up, or died."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ping(port: int, timeout_s: float = 0.5) -> bool:
    """True if a Redis server answers PING on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_core(config: Config) -> int:
    """The CPU redis-server is pinned to: ``redis.core``, or ``cores.platform`` when that is null."""
    core = config["redis"]["core"]
    key = "redis.core"
    if core is None:
        core, key = config["cores"]["platform"], "cores.platform (redis.core is null)"
    try:
        return sysinfo.check_cpu(core, key)
    except sysinfo.PinError as exc:
        raise RedisServerError(str(exc)) from exc


def _pinned_to(core: int) -> Callable[[], None]:
    """A ``preexec_fn``: pin the child before it execs (so every thread Redis starts inherits it), and
    have it die with the harness."""
    def preexec() -> None:
        os.sched_setaffinity(0, {core})
        die_with_parent()
    return preexec


ADMIN_USER = "serpens-admin"


class RedisServer:
    def __init__(self, config: Config, run_dir: RunDir | Path, name: str = "redis",
                 acl: bool = False) -> None:
        self.settings = config["redis"]
        self.config = config
        self.dir = run_dir.path if isinstance(run_dir, RunDir) else Path(run_dir)
        self.name = name
        self.conf_file = self.dir / f"{name}.conf"
        self.log_file = self.dir / f"{name}.log"
        self.host = "127.0.0.1"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.acl = acl
        self._admin_pass = secrets.token_hex(16) if acl else ""

    @property
    def admin(self) -> str | None:
        """``USER:PASSWORD`` of the admin user (``SERPENS_REDIS_ADMIN`` for serpensd); None without ACLs."""
        return f"{ADMIN_USER}:{self._admin_pass}" if self.acl else None

    def acl_lines(self) -> list[str]:
        if not self.acl:
            return []
        digest = hashlib.sha256(self._admin_pass.encode()).hexdigest()
        return ["user default on nopass resetkeys resetchannels -@all +ping",
                f"user {ADMIN_USER} on #{digest} ~* &* +@all"]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def config_text(self) -> str:
        s = self.settings
        return "\n".join([
            f"port {self.port}",
            f"bind {self.host}",
            "protected-mode no",
            'save ""',
            "appendonly no",
            f"maxmemory {int(s['maxmemory_mb'])}mb",
            "maxmemory-policy noeviction",
            f"dir {self.dir}",
            f"logfile {self.log_file}",
            "daemonize no",
            "databases 1",
            *self.acl_lines(),
            "",
        ])

    def start(self) -> RedisServer:
        if self.proc is not None:
            return self
        binary = self.settings["binary"]
        path = binary if "/" in binary else shutil.which(binary)
        if not path or not Path(path).is_file():
            raise RedisServerError(f"redis-server not found (redis.binary = {binary!r}); install the "
                                   f"redis-server package (make setup does) or set redis.binary")
        core = redis_core(self.config)
        self.dir.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + float(self.settings["ready_timeout_s"])
        try:
            for _ in range(3):   # a port taken between choosing and binding: try another
                self.port = free_port()
                self.conf_file.write_text(self.config_text())
                self.log_file.write_text("")
                self.proc = popen([path, str(self.conf_file)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.STDOUT, start_new_session=True,
                                  preexec_fn=_pinned_to(core))
                record_started(self.proc, "redis-server", [core])
                while time.monotonic() < deadline and self.proc.poll() is None:
                    if ping(self.port):
                        return self
                    time.sleep(0.02)
                if self.proc.poll() is None:
                    break      # still running but not answering: a timeout
                self._reap()
            log = tail(self.log_file)
            self.stop()
            raise RedisServerError(f"redis-server ({path}) did not come up on {self.address} within "
                                   f"{self.settings['ready_timeout_s']} s; its log ({self.log_file}):\n{log}")
        except BaseException:
            self.stop()
            raise

    def _reap(self) -> None:
        if self.proc is not None:
            terminate(self.proc, timeout=5.0)
            self.proc = None

    def alive(self, patience_s: float | None = None) -> bool:
        """Running, and answering PING within ``patience_s`` (default ``redis.ready_timeout_s``). A Redis
        sharing the platform's busy core can take longer than one ping's timeout to answer after an
        overload trial (issue 13's check then failed a healthy run one time in three): a slow answer is
        retried; an exited process is down at once."""
        patience = self.settings["ready_timeout_s"] if patience_s is None else patience_s
        deadline = time.monotonic() + patience
        while self.proc is not None and self.proc.poll() is None:
            if ping(self.port, timeout_s=max(0.05, min(0.5, deadline - time.monotonic()))):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return False

    def down_reason(self) -> str:
        """Why :meth:`alive` said no, as words for an error."""
        code = None if self.proc is None else self.proc.poll()
        if code is None:
            return "is not answering" if self.proc is not None else "is not running"
        return f"died (killed by signal {-code})" if code < 0 else f"exited with code {code}"

    def kill(self) -> None:
        """SIGKILL it (tests: Redis crashing under a running platform)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5.0)

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL); nothing is saved. Safe to call twice."""
        self._reap()

    def cpus_allowed(self) -> list[int] | None:
        """The CPUs the running redis-server may use, read back from the OS; None when it is not running."""
        if self.proc is None or self.proc.poll() is not None:
            return None
        return sysinfo.affinities([self.proc.pid])[self.proc.pid]["cpus_allowed"]

    def describe(self) -> dict[str, Any]:
        core = redis_core(self.config)
        return {"binary": self.settings["binary"], "address": self.address,
                "access": ("an ACL user per tenant (made by serpensd); the default user may only PING"
                           if self.acl else "open (no ACL)"),
                "maxmemory_mb": self.settings["maxmemory_mb"], "persistence": "none",
                "core": core, "cpus_allowed": self.cpus_allowed(),
                "placement": f"same machine, loopback TCP, pinned to CPU {core}"
                             + (" with the NFs (cores.platform)" if core == self.config["cores"]["platform"]
                                else " (redis.core)")
                             + ": the paper co-locates Redis with the NFs"}

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def redis_server(config: Config, run_dir: RunDir | Path, name: str = "redis", acl: bool = False):  # noqa: ANN201
    with RedisServer(config, run_dir, name, acl) as r:
        yield r
