"""One SSH connection to one inventory host (Fabric 3): commands with a timeout, files in and out.

Every remote command has a timeout (the host's ``command_timeout_s`` unless the caller gives one) and every
failure — unreachable address, refused key, a command that failed or hung — is a :class:`HostError` whose
message is one line naming the host, so the runner can report a failing host and let the others finish.
``sudo: true`` in the inventory prefixes commands with ``sudo -n`` (never a password prompt that would hang).
"""

from __future__ import annotations

import io
import logging
import os
import shlex
import socket
import uuid
from pathlib import Path
from typing import Any

import paramiko
from fabric import Connection
from invoke.exceptions import CommandTimedOut, UnexpectedExit

from testbed.inventory import Host

# paramiko's transport thread logs every failure it sees (a traceback one record per line); with no handler
# configured, Python's last-resort handler would print them on stderr beside our one line per host. The
# error itself reaches the caller as an exception and is reported there.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


class HostError(RuntimeError):
    """Something failed on (or on the way to) one host; the message is one line and names the host."""


def _one_line(text: str, limit: int = 300) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    line = lines[-1] if lines else ""
    return line if len(line) <= limit else line[:limit] + "…"


class Remote:
    """Run commands on one host. Use as a context manager (closes the connection)."""

    def __init__(self, host: Host) -> None:
        self.host = host
        connect_kwargs: dict[str, Any] = {"allow_agent": False, "look_for_keys": False,
                                          "banner_timeout": host.connect_timeout_s,
                                          "auth_timeout": host.connect_timeout_s}
        if host.key_file:
            connect_kwargs["key_filename"] = os.path.expanduser(host.key_file)
        self.conn = Connection(host.address, user=host.user, port=host.port,
                               connect_timeout=host.connect_timeout_s, connect_kwargs=connect_kwargs)
        if host.known_hosts:
            # host keys are checked: an unknown or changed key is refused, not silently added
            self.conn.client.load_host_keys(os.path.expanduser(host.known_hosts))
            self.conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:   # closing a connection that never opened: nothing to release
            pass

    def _fail(self, what: str) -> HostError:
        return HostError(f"{self.host.name} ({self.host.address}): {what}")

    def open(self) -> None:
        """Connect now, so that a connection failure is reported as such (not as a command's)."""
        if self.conn.is_connected:
            return
        key = self.host.key_file
        if key and not os.path.isfile(os.path.expanduser(key)):
            raise self._fail(f"key_file {key}: no such file")
        try:
            self.conn.open()
        except paramiko.AuthenticationException as exc:
            raise self._fail(f"SSH authentication as {self.host.user} failed ({exc}): check user and "
                             f"key_file") from None
        except paramiko.SSHException as exc:
            hint = " (is it an SSH server on that port?)" if "banner" in str(exc) else ""
            raise self._fail(f"SSH failed: {exc}{hint}") from None
        except TimeoutError:
            raise self._fail(f"cannot connect to port {self.host.port}: timed out after "
                             f"{self.host.connect_timeout_s:g} s") from None
        except socket.gaierror as exc:
            raise self._fail(f"cannot resolve the address: {exc.strerror}") from None
        except FileNotFoundError as exc:
            raise self._fail(f"key_file {exc.filename}: no such file") from None
        except OSError as exc:
            raise self._fail(f"cannot connect to port {self.host.port}: {exc.strerror or exc}") from None

    def run(self, cmd: str, timeout: float | None = None, check: bool = True, sudo: bool = True,
            what: str | None = None) -> tuple[int, str, str]:
        """Run ``cmd`` (a shell command line); return (exit status, stdout, stderr). ``check``: a non-zero
        exit is a :class:`HostError` with the last line of its stderr."""
        self.open()
        line = f"sudo -n sh -c {shlex.quote(cmd)}" if sudo and self.host.sudo else cmd
        limit = timeout if timeout is not None else self.host.command_timeout_s
        try:
            r = self.conn.run(line, hide=True, warn=True, timeout=limit, in_stream=False)
        except CommandTimedOut:
            raise self._fail(f"{what or cmd.split()[0]} did not finish within {limit:g} s") from None
        except UnexpectedExit as exc:   # only with warn=False; kept for safety
            r = exc.result
        except (OSError, paramiko.SSHException) as exc:
            raise self._fail(f"{what or cmd.split()[0]}: the connection failed: {exc}") from None
        if check and r.exited != 0:
            why = _one_line(r.stderr) or _one_line(r.stdout) or "(no output)"
            raise self._fail(f"{what or cmd.split()[0]} failed (exit {r.exited}): {why}")
        return r.exited, r.stdout, r.stderr

    def out(self, cmd: str, **kw: Any) -> str:
        """stdout of a command that must succeed, stripped."""
        return self.run(cmd, **kw)[1].strip()

    def ok(self, cmd: str, **kw: Any) -> bool:
        """Whether a (check) command exits 0."""
        return self.run(cmd, check=False, **kw)[0] == 0

    def _sftp(self) -> None:
        """Open the SFTP session with the command timeout on its channel: a transfer that stalls fails as a
        timeout instead of hanging the host's thread."""
        self.open()
        try:
            self.conn.sftp().get_channel().settimeout(self.host.command_timeout_s)
        except (OSError, paramiko.SSHException) as exc:
            raise self._fail(f"cannot open SFTP: {exc}") from None

    def put_bytes(self, data: bytes, path: str) -> None:
        """Write ``path`` atomically (a temporary name, then rename): an interrupted copy leaves no half file
        under the real name. With ``sudo``, SFTP (which runs as the login user) writes to the user's own
        temporary file and the copy into place runs under sudo."""
        self._sftp()
        tmp = f"{path}.part"
        upload = f"/tmp/.serpens-testbed-{uuid.uuid4().hex}" if self.host.sudo else tmp
        try:
            self.conn.put(io.BytesIO(data), remote=upload)
        except (OSError, paramiko.SSHException) as exc:
            raise self._fail(f"cannot copy to {path}: {exc}") from None
        if self.host.sudo:
            self.run(f"install -m 0644 {shlex.quote(upload)} {shlex.quote(tmp)}; rc=$?; "
                     f"rm -f {shlex.quote(upload)}; [ $rc -eq 0 ]", what="install")
        self.run(f"mv -f {shlex.quote(tmp)} {shlex.quote(path)}", what="mv")

    def put(self, local: str | Path, path: str) -> None:
        self.put_bytes(Path(local).read_bytes(), path)

    def get_bytes(self, path: str) -> bytes:
        self._sftp()
        buf = io.BytesIO()
        try:
            self.conn.get(path, local=buf)
        except FileNotFoundError:
            raise self._fail(f"cannot fetch {path}: no such file") from None
        except (OSError, paramiko.SSHException) as exc:
            raise self._fail(f"cannot fetch {path}: {exc}") from None
        return buf.getvalue()

    def get(self, path: str, local: str | Path) -> Path:
        data = self.get_bytes(path)
        dest = Path(local)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        return dest

    def read(self, path: str) -> str | None:
        """A small remote text file, or None when it does not exist."""
        code, out, _ = self.run(f"cat {shlex.quote(path)} 2>/dev/null", check=False, what="cat")
        return out if code == 0 else None


def ready_script(name: str, command: str, pid_file: str, log_file: str, timeout_s: float,
                 before: str = "") -> str:
    """A shell script that starts ``command`` (already quoted) in a session of its own, its pid in
    ``pid_file`` and its output in ``log_file``, and waits until the log says READY: exit 0; exit 1 with one
    line when it died first (the log's last non-EAL lines) or was not ready within ``timeout_s``.
    ``before``: shell lines run first (removing stale files)."""
    q = shlex.quote
    inner = f"echo $$ > {q(pid_file)}; exec {command}"
    died = f"$(grep -v '^EAL' {q(log_file)} | tail -n 2 | tr '\\n' ' ')"
    return f"""{before}
setsid sh -c {q(inner)} </dev/null >{q(log_file)} 2>&1 &
i=0
while [ $i -lt {int(timeout_s * 20)} ]; do
  sleep 0.05; i=$((i+1))
  grep -q READY {q(log_file)} && exit 0
  pid=$(cat {q(pid_file)} 2>/dev/null) || continue
  kill -0 "$pid" 2>/dev/null || {{ echo "{name} exited: {died}" >&2; exit 1; }}
done
echo "{name} not ready within {timeout_s:g} s" >&2; exit 1"""


def fetch_all(dest: Path, files: Any) -> None:
    """Copy each host's files, ``[(remote, [path, ...]), ...]``, into ``dest`` as ``<host>-<name>``; a file
    that is not there (a daemon that never started) is skipped."""
    dest.mkdir(parents=True, exist_ok=True)
    for r, paths in files:
        for f in paths:
            try:
                r.get(f, dest / f"{r.host.name}-{Path(f).name}")
            except HostError:
                pass
