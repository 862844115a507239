"""serpensd on an inventory host: started over SSH, controlled through its Unix control socket over SSH.

* :class:`RemoteController` — the harness's :class:`~harness.serpens.controller.Controller` with another
  transport: each request runs a tiny Python forwarder on the host (``python3 -c``) that connects to the
  control socket, writes the request's JSON line and prints serpensd's reply line. The request and reply
  format, the size limit and the errors are the Controller's own (``encode``, ``parse_reply``). A request
  too long for a command line goes to the host as a file first (NAT's pool share is ~200 KB).
* :class:`RemoteServerd` — a :class:`~harness.serpens.platform.DesignPlatform` whose serpensd runs on a
  host: its command line is the one-machine one (the same design options, sizes, NF objects) with the host's
  tree, its own EAL ports (net_af_packet on the host's NICs), control socket, NF directory and log; deploy,
  instances and stats go through the RemoteController. ``extra`` carries the ``--link`` options that make
  it a gateway or a worker (docs/multiserver.md).

Paths the harness names in requests (deploy_nf's NF object) are its own tree's; on the host the same files
are in the host's tree (``<install_root>/src/current``, shipped and built by ``harness testbed provision``),
so the controller maps one prefix to the other.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

from harness.config import REPO_ROOT, Config
from harness.native import NativeError, RunDir
from harness.platforms.base import PlatformError
from harness.platforms.designs import Design
from harness.serpens.controller import (
    DEFAULT_REQUEST_TIMEOUT_S,
    Controller,
    SerpensConnectionError,
    SerpensError,
)
from harness.serpens.platform import DesignPlatform
from harness.serpens.sfc import SfcSpec
from testbed.remote import HostError, Remote, ready_script

# Requests up to this many bytes ride on the forwarder's command line (Linux: 128 KiB per argument).
INLINE_MAX = 64 * 1024

# argv: socket, the request line (or @file holding it), timeout in s. Exit 2: cannot connect; 3: closed
# without a reply; 4: no reply in time.
FORWARDER = """import socket, sys
path, arg, limit = sys.argv[1], sys.argv[2], float(sys.argv[3])
line = open(arg[1:], 'rb').read() if arg.startswith('@') else arg.encode()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(path)
except OSError as e:
    sys.stderr.write(str(e.strerror or e) + '\\n'); sys.exit(2)
s.settimeout(limit)
s.sendall(line)
try:
    r = s.makefile('rb').readline()
except OSError:
    sys.exit(4)
if not r:
    sys.exit(3)
sys.stdout.buffer.write(r)
"""


class RemoteController(Controller):
    """A Controller whose requests reach serpensd's control socket on ``remote``'s host over SSH."""

    def __init__(self, remote: Remote, socket_path: str, tree: str,
                 request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S) -> None:
        super().__init__(socket_path, request_timeout_s=request_timeout_s)
        self.r = remote
        self.tree = tree
        self.python = remote.host.python or "python3"
        self.request_file = f"{socket_path}.request"
        self._open = False

    def connect(self, timeout_s: float | None = None) -> Controller:
        self._open = True   # each request is a connection of its own
        return self

    def close(self) -> None:
        self._open = False

    @property
    def connected(self) -> bool:
        return self._open

    def _where(self) -> str:
        return f"{self.r.host.name}:{self.socket_path}"

    def request(self, cmd: str, _timeout_s: float | None = None, **fields: Any) -> dict[str, Any]:
        if cmd == "deploy_nf" and str(fields.get("path", "")).startswith(str(REPO_ROOT) + "/"):
            fields["path"] = self.tree + str(fields["path"])[len(str(REPO_ROOT)):]
        req, line = self.encode(cmd, fields)
        limit = _timeout_s or self.request_timeout_s
        q = shlex.quote
        try:
            if len(line) <= INLINE_MAX:
                arg = line.decode()
            else:
                self.r.put_bytes(line, self.request_file)
                arg = "@" + self.request_file
            code, out, err = self.r.run(f"{q(self.python)} -c {q(FORWARDER)} {q(self.socket_path)} {q(arg)} "
                                        f"{limit:g}", timeout=limit + 30, check=False, what=f"serpensd {cmd}")
        except HostError as exc:
            raise SerpensConnectionError(f"serpensd's control socket {self._where()} during {cmd!r}: "
                                         f"{exc}") from None
        if code == 2:
            raise SerpensConnectionError(f"cannot connect to serpensd's control socket {self._where()} "
                                         f"({err.strip()}): serpensd is not running")
        if code == 3:
            raise SerpensConnectionError(f"serpensd closed its control socket {self._where()} during "
                                         f"{cmd!r}: serpensd is not running any more (see its log)")
        if code == 4:
            raise SerpensConnectionError(f"serpensd did not answer {cmd!r} on {self._where()} within "
                                         f"{limit:g} s")
        if code != 0:
            last = (err.strip().splitlines() or ["(no output)"])[-1]
            raise SerpensConnectionError(f"the control forwarder on {self.r.host.name} failed (exit {code}) "
                                         f"during {cmd!r}: {last}")
        return self.parse_reply(cmd, out.encode(), req)


def _eal_end(cmd: list[str]) -> int:
    return cmd.index("--")


class RemoteServerd(DesignPlatform):
    """serpensd on ``remote``'s host: its ports ``vdevs`` (port 0 first), ``extra`` after its options."""

    def __init__(self, config: Config, run_dir: RunDir, remote: Remote, k: int, lcore: int,
                 vdevs: Sequence[str], extra: Sequence[str], design: str | Design,
                 sfcs: Sequence[SfcSpec], pool: int | None = None) -> None:
        super().__init__(config, run_dir, design=design, sfc=list(sfcs))
        self.r = remote
        self.host = remote.host
        self.k = k
        self.lcore = lcore
        self.vdevs = list(vdevs)
        self.extra = list(extra)
        # the gateway's Router places every instance: no server starts one at deployment
        self.settings = {**self.settings, "instances": 0,
                         **({"pool": pool} if pool is not None else {})}
        self.tree = self.host.path("src", "current")
        rdir = self.host.path("run")
        tag = run_dir.tag
        self.prefix = f"serpens-{self.host.name}-{tag}"
        self.remote_socket = f"{rdir}/serpensd-{tag}.sock"
        self.remote_log = f"{rdir}/serpensd-{tag}.log"
        self.pid_file = f"{rdir}/serpensd-{tag}.pid"
        self.nf_dir = f"{rdir}/nfs-{tag}"
        self.running = False

    def command(self) -> list[str]:
        """The one-machine command line (super().command(): the design's options, checked against the
        harness's own build of the same tree) moved to the host: its tree, EAL, socket, NF directory."""
        local = super().command()
        end = _eal_end(local)
        eal = ["-l", str(self.lcore), "--no-pci", "--no-telemetry", "--log-level=*:warning",
               "--file-prefix", self.prefix]
        for v in self.vdevs:
            eal += ["--vdev", v]
        opts = local[end + 1:]
        out: list[str] = []
        i = 0
        while i < len(opts):
            o = opts[i]
            if o == "--tsc-hz":     # this machine's TSC, not the host's: serpensd calibrates its own
                i += 2
                continue
            if o in ("--control", "--nf-dir"):
                out += [o, self.remote_socket if o == "--control" else self.nf_dir]
                i += 2
                continue
            out.append(o.replace(str(REPO_ROOT), self.tree))
            i += 1
        return [local[0].replace(str(REPO_ROOT), self.tree), *eal, "--", *out, *self.extra]

    def start(self) -> None:
        if self.running:
            return
        try:
            cmd = self.command_line = self.command()
        except NativeError as exc:
            raise PlatformError(str(exc)) from exc
        q = shlex.quote
        timeout = self.settings["ready_timeout_s"]
        argv = " ".join(q(a) for a in cmd)
        script = ready_script("serpensd", argv, self.pid_file, self.remote_log, timeout,
                              before=f"rm -f {q(self.remote_socket)} {q(self.pid_file)}; "
                                     f"mkdir -p {q(self.nf_dir)}\ncd {q(self.tree)} || exit 1")
        try:
            self.r.run(script, timeout=timeout + 15, what="start serpensd")
            self.running = True
            self.controller = RemoteController(self.r, self.remote_socket, self.tree)
            for spec in self.sfcs:
                self.deploy(spec)
            self.deployed = True
        except (HostError, PlatformError) as exc:
            log = self.log_tail()
            try:
                self.stop()
            except PlatformError:
                pass
            msg = f"{self.host.name}: {exc}" + (f"\nserpensd log:\n{log}" if log else "")
            if isinstance(exc, SerpensError):
                raise SerpensError(msg, exc.request) from None
            raise PlatformError(msg) from None

    def log_tail(self, lines: int = 10) -> str:
        try:
            return self.r.out(f"tail -n {lines} {shlex.quote(self.remote_log)} 2>/dev/null; true",
                              what="tail", timeout=30)
        except HostError:
            return ""

    def _running(self) -> Controller:
        if not self.running or self.controller is None:
            raise PlatformError(f"serpensd on {self.host.name} is not running")
        return self.controller

    def _stop_serpensd(self) -> dict[str, Any]:
        final: dict[str, Any] = {}
        if self.running and self.controller is not None:
            try:
                final = self.controller.stats()
                self.controller.shutdown(timeout_s=10.0)
            except PlatformError:
                pass
        self.running = False
        self.controller = None
        q = shlex.quote
        # serpensd exits by itself after shutdown; what is left of its session (runtime processes) goes too
        script = f"""pid=$(cat {q(self.pid_file)} 2>/dev/null) && {{
  i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
  kill -TERM -- -"$pid" 2>/dev/null
  i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 40 ]; do sleep 0.05; i=$((i+1)); done
  kill -KILL -- -"$pid" 2>/dev/null; }}
rm -f {q(self.pid_file)} {q(self.remote_socket)} {q(self.remote_socket)}.request
rm -rf /var/run/dpdk/{self.prefix} /dev/hugepages/{self.prefix}map_* {q(self.nf_dir)}
true"""
        try:
            self.r.run(script, timeout=60, what="stop serpensd", check=False)
        except HostError as exc:
            raise PlatformError(str(exc)) from None
        return final

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({"host": self.host.name, "address": self.host.address, "server": self.k,
                  "serpensd_command": " ".join(shlex.quote(a) for a in self.command_line),
                  "link": ", ".join(self.vdevs), "control": f"{self.remote_socket} over SSH"})
        return d

    def fetch_log(self, dest: Any) -> None:
        """The host's serpensd log beside the results (``dest``: a local path)."""
        try:
            self.r.get(self.remote_log, dest)
        except HostError:
            pass

