"""harness/redis_server.py against the real redis-server (skipped where it is not installed), and the
state-backend settings of the Serpens-based platforms."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from harness import config as cfg
from harness import platforms
from harness.redis_server import RedisServer, RedisServerError, ping

needs_redis = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed")


def command(port: int, *args: str) -> bytes:
    """One RESP command, its raw reply."""
    wire = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(wire.encode())
        return s.recv(4096)


@needs_redis
def test_starts_with_the_pinned_configuration_and_stops(config: cfg.Config, tmp_path: Path) -> None:
    with RedisServer(config, tmp_path) as r:
        assert r.alive() and ping(r.port)
        assert r.address == f"127.0.0.1:{r.port}"
        assert b"\r\nappendonly\r\n$2\r\nno\r\n" in command(r.port, "CONFIG", "GET", "appendonly")
        assert command(r.port, "CONFIG", "GET", "save").endswith(b"$4\r\nsave\r\n$0\r\n\r\n")
        assert b"127.0.0.1" in command(r.port, "CONFIG", "GET", "bind")
        assert str(config["redis"]["maxmemory_mb"] * 1024 * 1024).encode() in \
            command(r.port, "CONFIG", "GET", "maxmemory")
        assert (tmp_path / "redis.log").is_file()
        proc, port = r.proc, r.port
    assert proc is not None and proc.poll() is not None
    assert not ping(port)


@needs_redis
def test_with_acl_the_default_user_may_only_ping_and_the_admin_everything(config: cfg.Config,
                                                                          tmp_path: Path) -> None:
    """The remote-state designs' Redis (docs/state-backends.md, "Who may touch which keys"): no key for
    anyone without a credential, the harness's PING still answered, the admin's password not in the file."""
    with RedisServer(config, tmp_path, acl=True) as r:
        assert r.alive() and ping(r.port)
        assert r.admin is not None
        user, _, password = r.admin.partition(":")
        assert password and password not in r.conf_file.read_text()
        assert command(r.port, "GET", "default:x").startswith(b"-NOPERM")
        assert command(r.port, "SET", "alice:x", "1").startswith(b"-NOPERM")
        assert command(r.port, "ACL", "SETUSER", "default", "~*", "+@all").startswith(b"-NOPERM")
        assert command(r.port, "AUTH", user, "wrong").startswith(b"-WRONGPASS")
        wire = "".join(f"*{len(c)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in c)
                       for c in (("AUTH", user, password), ("SET", "alice:x", "1")))
        with socket.create_connection(("127.0.0.1", r.port), timeout=2) as s:
            s.sendall(wire.encode())
            reply = b""
            while reply.count(b"\r\n") < 2:
                reply += s.recv(4096)
        assert reply == b"+OK\r\n+OK\r\n"
    with RedisServer(config, tmp_path / "open") as r:   # without ACLs (CHC's store): as before
        assert r.admin is None and command(r.port, "SET", "k", "1") == b"+OK\r\n"


@needs_redis
@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_is_stopped_on_an_exception_or_interrupt(config: cfg.Config, tmp_path: Path, exc: type) -> None:
    server = RedisServer(config, tmp_path)
    with pytest.raises(exc):
        with server:
            port = server.port
            raise exc("boom")
    assert server.proc is None and not ping(port)


@needs_redis
def test_a_slow_answer_is_not_a_dead_store_and_a_killed_one_is_named(config: cfg.Config,
                                                                     tmp_path: Path) -> None:
    """A Redis that cannot answer for a moment (it shares the platform's busy core; here SIGSTOP stands in
    for the scheduler) is alive if it answers within the patience; one that stays silent is "not
    answering"; a killed one is down at once, with the signal."""
    import os
    import signal
    import threading
    import time

    with RedisServer(config, tmp_path) as r:
        assert r.proc is not None
        os.kill(r.proc.pid, signal.SIGSTOP)
        try:
            assert not r.alive(patience_s=0.3) and r.down_reason() == "is not answering"
            threading.Timer(0.8, os.kill, (r.proc.pid, signal.SIGCONT)).start()
            assert r.alive(patience_s=5.0)    # one 0.5 s ping alone said "not answering" here
        finally:
            os.kill(r.proc.pid, signal.SIGCONT)
        r.kill()
        t0 = time.monotonic()
        assert not r.alive(patience_s=5.0) and time.monotonic() - t0 < 4.0   # not the patience out
        assert r.down_reason() == "died (killed by signal 9)"


def test_a_missing_binary_is_a_clear_error(config: cfg.Config, tmp_path: Path) -> None:
    config["redis"]["binary"] = "/nonexistent/redis-server"
    with pytest.raises(RedisServerError, match="redis-server not found.*redis.binary"):
        RedisServer(config, tmp_path).start()


def test_a_server_that_does_not_come_up_is_a_clear_error(config: cfg.Config, tmp_path: Path) -> None:
    config["redis"]["binary"] = shutil.which("false") or "/bin/false"
    config["redis"]["ready_timeout_s"] = 2.0
    server = RedisServer(config, tmp_path)
    with pytest.raises(RedisServerError, match="did not come up"):
        server.start()
    assert server.proc is None


def test_redis_settings_are_validated() -> None:
    with pytest.raises(cfg.ConfigError, match="redis.maxmemory_mb"):
        cfg.load(overrides=["redis.maxmemory_mb=lots"])


def test_designs_with_remote_state_pass_the_backend_and_the_redis_timeout(config: cfg.Config,
                                                                         tmp_path: Path) -> None:
    from harness.native import RunDir

    config["machine"]["runtime_dir"] = str(tmp_path)
    for name, backend in (("fission-state", "fission"), ("snf-state", "snf")):
        p = platforms.get(name)(config, RunDir(config, name), sfc="fw")
        assert p.backend == backend and p.runs_sfc and p.design.uses_remote_store
        cmd = p.command()
        assert cmd[cmd.index("--state-backend") + 1] == backend
        assert cmd[cmd.index("--redis-timeout-ms") + 1] == str(config["redis"]["timeout_ms"])
    serpens = platforms.get("serpens")(config, RunDir(config), sfc="fw")
    cmd = serpens.command()
    assert serpens.backend == "serpens" and cmd[cmd.index("--state-backend") + 1] == "serpens"
    assert "--redis" not in cmd
