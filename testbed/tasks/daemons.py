"""Deploy: each role's long-running daemons, with pid files; a daemon restarts only when its configuration
changed.

A daemon is a command line plus an optional configuration file. Their hash is stored beside the pid file
(``<install_root>/run/<name>.hash``) when the daemon is started: the check finds a daemon wanting work when
its process is gone or the hash differs, and only then is it stopped (if alive) and started again. Every
daemon runs in a session of its own (setsid), its output in ``<install_root>/log/<name>.log``.

Roles → daemons:
  redis    redis-server on the host's address, port 6379, its pinned configuration
  gateway  serpensd (DPDK primary on the platform core; the host's first NIC through net_af_packet,
  worker   which serpensd must be linked with: docs/testbed.md)
  trex     TRex (``t-rex-64 -i``) when the inventory gives ``trex_path``, with the written trex_cfg.yaml
The built-in generator (serpens-gen) is one process per trial (harness/traffic/local.py): nothing to deploy.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass

from testbed.inventory import Host
from testbed.remote import HostError, Remote
from testbed.runner import Context, Task
from testbed.tasks import trex_config

REDIS_PORT = 6379


@dataclass(frozen=True)
class Daemon:
    name: str
    command: str                    # run with `exec` in the daemon's session
    config: str | None = None       # written to <install_root>/etc/<name>.conf before it starts
    cwd: str = "/"
    ready: str | None = None        # a command that succeeds once the daemon serves (else: it is alive)

    def digest(self) -> str:
        return hashlib.sha256(f"{self.command}\0{self.config or ''}\0{self.cwd}".encode()).hexdigest()[:16]


def _redis(host: Host) -> Daemon:
    conf = "\n".join([
        "# written by `harness testbed deploy` (testbed/tasks/daemons.py)",
        f"bind {host.address}", f"port {REDIS_PORT}", "protected-mode no", "daemonize no",
        "save \"\"", "appendonly no", f"dir {host.path('run')}", "loglevel warning", ""])
    path = host.path("etc", "redis-server.conf")
    return Daemon("redis-server", f"redis-server {shlex.quote(path)}", conf,
                  ready=f"redis-cli -h {host.address} -p {REDIS_PORT} ping | grep -q PONG")


def _serpensd(host: Host) -> Daemon:
    tree = host.path("src", "current")
    # the platform core harness-config gives the host's harness (the next core beside a generator)
    lcore = next((c for c in (host.cores[1:] if host.has("generator") else host.cores)), 0)
    nic = f" --vdev net_af_packet0,iface={host.nics[0].iface}" if host.nics else ""
    cmd = (f"{tree}/build/native/serpens/serpensd -l {lcore} --no-pci --no-telemetry "
           f"--file-prefix serpensd-{host.name}{nic} -- --control {host.path('run', 'serpensd.sock')} "
           f"--runtime {tree}/build/native/serpens/serpens-runtime --nf-dir {host.path('run', 'nfs')}")
    return Daemon("serpensd", cmd, None, cwd=host.path("run"),
                  ready=f"test -S {shlex.quote(host.path('run', 'serpensd.sock'))}")


def _trex(host: Host) -> Daemon:
    assert host.trex_path
    cfg = host.system_path(trex_config.PATH)
    return Daemon("trex", f"./t-rex-64 -i --cfg {shlex.quote(cfg)} --no-scapy-server",
                  cwd=host.trex_path)


def daemons(host: Host) -> list[Daemon]:
    out = []
    if host.has("redis"):
        out.append(_redis(host))
    if host.has("gateway") or host.has("worker"):
        out.append(_serpensd(host))
    if host.has("trex") and host.trex_path:
        out.append(_trex(host))
    return out


def _pid(r: Remote, d: Daemon) -> int | None:
    """The daemon's pid when it is alive, else None."""
    text = r.read(r.host.path("run", f"{d.name}.pid"))
    if not text or not text.strip().isdigit():
        return None
    pid = int(text.strip())
    return pid if r.ok(f"kill -0 {pid}", what="kill") else None


def stop(r: Remote, name: str, wait_s: float = 10.0) -> bool:
    """Stop the daemon ``name`` (its session: serpensd's runtime processes too) and remove its pid and hash
    files; whether one was running."""
    pidfile = shlex.quote(r.host.path("run", f"{name}.pid"))
    hashfile = shlex.quote(r.host.path("run", f"{name}.hash"))
    script = f"""pid=$(cat {pidfile} 2>/dev/null) || pid=
was=0
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
  was=1
  kill -TERM -- -"$pid" 2>/dev/null || kill -TERM "$pid"
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt {int(wait_s * 10)} ]; do sleep 0.1; i=$((i+1)); done
  kill -KILL -- -"$pid" 2>/dev/null || true
fi
rm -f {pidfile} {hashfile}
echo $was"""
    return r.out(script, what=f"stop {name}", timeout=wait_s + 30) == "1"


class Deploy(Task):
    """One task per host: all of its roles' daemons (each reported in the detail)."""

    name = "daemons"

    def applies(self, host: Host) -> bool:
        return bool(daemons(host))

    def _stale(self, r: Remote) -> list[tuple[Daemon, str]]:
        out = []
        for d in daemons(r.host):
            if _pid(r, d) is None:
                out.append((d, "not running"))
                continue
            have = r.read(r.host.path("run", f"{d.name}.hash"))
            if (have or "").strip() != d.digest():
                out.append((d, "configuration changed"))
        return out

    def check(self, r: Remote, ctx: Context) -> str | None:
        stale = self._stale(r)
        return "; ".join(f"{d.name} {why}" for d, why in stale) if stale else None

    def apply(self, r: Remote, ctx: Context, why: str) -> str | None:
        done = []
        for d, reason in self._stale(r):
            stop(r, d.name)
            if d.config is not None:
                r.put_bytes(d.config.encode(), r.host.path("etc", f"{d.name}.conf"))
            log = shlex.quote(r.host.path("log", f"{d.name}.log"))
            pidfile = shlex.quote(r.host.path("run", f"{d.name}.pid"))
            # the daemon writes its own pid (it becomes the session leader by exec), and every one of its
            # descriptors leaves the SSH channel: else the command would not end while the daemon runs
            inner = f"echo $$ > {pidfile}; exec {d.command}"
            r.run(f"cd {shlex.quote(d.cwd)} || exit 1; "
                  f"setsid sh -c {shlex.quote(inner)} </dev/null >{log} 2>&1 &",
                  what=f"start {d.name}", timeout=30)
            self._wait_ready(r, d)
            r.run(f"echo {d.digest()} > {shlex.quote(r.host.path('run', f'{d.name}.hash'))}", what="echo")
            done.append(f"{d.name} (re)started: {reason}")
        return "; ".join(done)

    def _wait_ready(self, r: Remote, d: Daemon, timeout_s: float = 20.0) -> None:
        pidfile = shlex.quote(r.host.path("run", f"{d.name}.pid"))
        log = shlex.quote(r.host.path("log", f"{d.name}.log"))
        ready = d.ready or "true"
        script = f"""i=0
while [ $i -lt {int(timeout_s * 10)} ]; do
  pid=$(cat {pidfile} 2>/dev/null)
  [ -n "$pid" ] || {{ sleep 0.1; i=$((i+1)); continue; }}
  kill -0 "$pid" 2>/dev/null || {{ echo "it exited: $(tail -n 2 {log} | tr '\\n' ' ')" >&2; exit 1; }}
  if {ready}; then sleep 0.2; kill -0 "$pid" 2>/dev/null && exit 0; fi
  sleep 0.1; i=$((i+1))
done
echo "not ready within {timeout_s:g} s" >&2; exit 1"""
        try:
            r.run(script, timeout=timeout_s + 15, what=f"{d.name} ready")
        except HostError:
            stop(r, d.name)
            raise
