"""Namespace test hosts: N network namespaces on a bridge, each with its own sshd, on this machine.

Each host is a network namespace joined to a bridge by a veth pair, addressed from 198.18.0.0/15 only (the
benchmarking range, RFC 2544; DESIGN.md section 8): the bridge is 198.18.K.1/24 and host i is 198.18.K.(10+i),
with K chosen so that no other interface of this machine uses 198.18.K.0/24. Each host runs an sshd of its
own in its namespace, listening only on its address, with a host key, a config and a pid file of its own and
the sftp subsystem; one per-run client key logs in as root. A generated inventory (``inventory.yaml`` in the
run's directory) names them, their known host keys, their install roots (``<dir>/hosts/<name>/root``, also
their system root: the namespaces share this machine's /etc) and the data links.

Data links (``links``): a veth pair between two hosts, outside the bridge (``dp0``, ``dp1``, ... inside each
namespace), with fixed MACs and IPv6 off, so the only frames on it are the ones DPDK sends (net_af_packet on
each end). Each link's NICs name each other as ``peer`` in the inventory.

Everything a run makes is named ``sptb<id>`` (namespaces ``sptb<id>-<host>``, bridge and veths
``sptb<id>...``) and recorded in ``/run/serpens-testbed/<id>.json`` *before* it is made: :func:`destroy`
removes a run by its record, and :func:`reclaim` removes runs whose owner process died (a crashed test)
and anything named ``sptb*`` with no record at all.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REGISTRY = Path("/run/serpens-testbed")
PREFIX = "sptb"
SSHD = "/usr/sbin/sshd"
NET = ipaddress.ip_network("198.18.0.0/15")


class LocalHostsError(RuntimeError):
    """The namespace hosts could not be made or removed; one line saying why."""


def _run(cmd: list[str], check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalHostsError(f"{' '.join(cmd)}: {exc}") from None
    if check and p.returncode != 0:
        raise LocalHostsError(f"{' '.join(cmd)} failed: {(p.stderr or p.stdout).strip().splitlines()[-1:]}")
    return p


@dataclass
class Spec:
    """What to make: host names with their roles, the data links between hosts."""

    roles: dict[str, list[str]]
    links: list[tuple[str, str]] = field(default_factory=list)
    cores: dict[str, list[int]] = field(default_factory=dict)
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)   # more inventory keys per host


def default_spec(n: int) -> Spec:
    """h1 generator, h2 gateway, h3.. workers; data links h1-h2 (h2's dp0) and h2-hK for each worker (h2's
    dp1, dp2, ...; the worker's dp0). On this 2-vCPU machine the generator runs on CPU 1 and every platform
    on CPU 0 (cores.generator / cores.platform's defaults)."""
    if not 1 <= n <= 16:
        raise LocalHostsError(f"the number of namespace hosts must be in 1..16, got {n}")
    roles = {f"h{i + 1}": ["generator"] if i == 0 else ["gateway"] if i == 1 else ["worker"]
             for i in range(n)}
    cores = {name: [1] if r == ["generator"] else [0] for name, r in roles.items()}
    links = [("h1", "h2")] if n >= 2 else []
    links += [("h2", f"h{i + 1}") for i in range(2, n)]
    return Spec(roles=roles, links=links, cores=cores)


def _in_use_subnets() -> set[int]:
    out = _run(["ip", "-o", "-4", "addr", "show"]).stdout
    used = set()
    for m in re.finditer(r"inet (198\.1[89]\.\d+\.\d+)/", out):
        addr = ipaddress.ip_address(m.group(1))
        if addr in NET:
            used.add(int(addr) >> 8 & 0x1FF)
    return used


@dataclass
class Hosts:
    """A made set of namespace hosts (what :func:`create` returns)."""

    id: str
    dir: Path
    inventory: Path
    addresses: dict[str, str]
    namespaces: dict[str, str]

    def ns_exec(self, host: str, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.namespaces[host], *cmd]


def _record(run_id: str) -> Path:
    return REGISTRY / f"{run_id}.json"


def _write_record(run_id: str, data: dict[str, Any]) -> None:
    REGISTRY.mkdir(parents=True, exist_ok=True)
    tmp = _record(run_id).with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(_record(run_id))


def create(directory: str | Path, spec: Spec, owner_pid: int | None = None, python: str | None = None,
           build_cache: str | None = None) -> Hosts:
    """Make the hosts of ``spec`` with their run files in ``directory`` (made; it must not exist or be
    empty). ``owner_pid``: the hosts die with that process (reclaim removes them once it is gone); None:
    they stay until :func:`destroy`."""
    if os.geteuid() != 0:
        raise LocalHostsError("namespace hosts need root (ip netns, sshd)")
    for tool in ("ip", "ssh-keygen", SSHD):
        if shutil.which(tool) is None:
            raise LocalHostsError(f"{tool} not found (packages iproute2, openssh-server)")
    reclaim()
    d = Path(directory).resolve()
    if d.exists() and any(d.iterdir()):
        raise LocalHostsError(f"{d}: exists and is not empty")
    run_id = secrets.token_hex(3)
    names = list(spec.roles)
    for n in names:   # interface names are at most 15 characters: sptb<id><host>i
        if not re.fullmatch(r"[a-z][a-z0-9]{0,3}", n):
            raise LocalHostsError(f"namespace host name {n!r}: 1-4 of a-z 0-9, starting with a letter")
    for a, b in spec.links:
        if a not in spec.roles or b not in spec.roles or a == b:
            raise LocalHostsError(f"link {a}-{b}: both ends must be two different hosts of {names}")
    used = _in_use_subnets()
    third = next((k for k in range(16 + int(run_id, 16) % 200, 500) if k not in used), None)
    if third is None:
        raise LocalHostsError("no free /24 left in 198.18.0.0/15")
    base = int(NET.network_address) + (third << 8)
    bridge_ip = ipaddress.ip_address(base + 1)
    addresses = {n: str(ipaddress.ip_address(base + 10 + i)) for i, n in enumerate(names)}
    namespaces = {n: f"{PREFIX}{run_id}-{n}" for n in names}
    bridge = f"{PREFIX}{run_id}"
    record = {"id": run_id, "dir": str(d), "owner_pid": owner_pid,
              "owner_start": _start_time(owner_pid) if owner_pid else None,
              "namespaces": list(namespaces.values()), "links": [bridge] +
              [f"{PREFIX}{run_id}{n}" for n in names]
              + [f"{PREFIX}{run_id}l{i}a" for i in range(len(spec.links))]}
    _write_record(run_id, record)   # before anything exists: a crash from here on is reclaimable
    try:
        d.mkdir(parents=True, exist_ok=True)
        _run(["ip", "link", "add", bridge, "type", "bridge"])
        _run(["ip", "addr", "add", f"{bridge_ip}/24", "dev", bridge])
        _run(["ip", "link", "set", bridge, "up"])
        for n in names:
            ns, outer = namespaces[n], f"{PREFIX}{run_id}{n}"
            _run(["ip", "netns", "add", ns])
            _run(["ip", "link", "add", outer, "type", "veth", "peer", "name", f"{outer}i"])
            _run(["ip", "link", "set", f"{outer}i", "netns", ns])
            _run(["ip", "-n", ns, "link", "set", f"{outer}i", "name", "eth0"])
            _run(["ip", "-n", ns, "addr", "add", f"{addresses[n]}/24", "dev", "eth0"])
            _run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            _run(["ip", "-n", ns, "link", "set", "lo", "up"])
            _run(["ip", "link", "set", outer, "master", bridge])
            _run(["ip", "link", "set", outer, "up"])
        nics: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
        for i, (a, b) in enumerate(spec.links):
            ends = ((a, f"{PREFIX}{run_id}l{i}a", f"dp{len(nics[a])}"),
                    (b, f"{PREFIX}{run_id}l{i}b", f"dp{len(nics[b])}"))
            _run(["ip", "link", "add", ends[0][1], "type", "veth", "peer", "name", ends[1][1]])
            for side, (host, veth, iface) in enumerate(ends):
                ns = namespaces[host]
                mac = f"02:5e:{third >> 8:02x}:{third & 0xFF:02x}:{i:02x}:{side + 1:02x}"
                _run(["ip", "link", "set", veth, "netns", ns])
                _run(["ip", "-n", ns, "link", "set", veth, "name", iface])
                _run(["ip", "-n", ns, "link", "set", iface, "address", mac])
                # no IPv6 (router solicitations, DAD) and no address: only DPDK's frames cross the link
                _run(["ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{iface}.disable_ipv6=1"])
                _run(["ip", "-n", ns, "link", "set", iface, "mtu", "9000"])
                _run(["ip", "-n", ns, "link", "set", iface, "up"])
                other_host, _, other_iface = ends[1 - side]
                nics[host].append({"iface": iface, "mac": mac, "peer": f"{other_host}:{other_iface}"})
        key = d / "id_ed25519"
        _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"serpens-testbed-{run_id}", "-f",
              str(key)])
        known = []
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)   # sshd's privilege-separation directory
        for n in names:
            hd = d / "hosts" / n
            (hd / "ssh").mkdir(parents=True)
            (hd / "root").mkdir()
            hk = hd / "ssh" / "host_ed25519"
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", n, "-f", str(hk)])
            (hd / "ssh" / "authorized_keys").write_text(key.with_suffix(".pub").read_text())
            cfg = hd / "ssh" / "sshd_config"
            cfg.write_text("\n".join([
                f"ListenAddress {addresses[n]}", "Port 22", f"HostKey {hk}",
                f"PidFile {hd / 'ssh' / 'sshd.pid'}", f"AuthorizedKeysFile {hd / 'ssh' / 'authorized_keys'}",
                "PermitRootLogin prohibit-password", "PasswordAuthentication no",
                "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "PrintMotd no",
                "Subsystem sftp internal-sftp", "MaxStartups 50", "MaxSessions 50", "LogLevel ERROR", ""]))
            _run(["ip", "netns", "exec", namespaces[n], SSHD, "-f", str(cfg), "-E",
                  str(hd / "ssh" / "sshd.log")])
            known.append(f"{addresses[n]} {hk.with_suffix('.pub').read_text().split()[0]} "
                         f"{hk.with_suffix('.pub').read_text().split()[1]}")
        (d / "known_hosts").write_text("\n".join(known) + "\n")
        inv = _inventory(spec, d, addresses, nics, python or sys.executable, build_cache)
        (d / "inventory.yaml").write_text(inv)
        _wait_sshd(addresses, namespaces)
    except BaseException:
        destroy_id(run_id)
        raise
    return Hosts(id=run_id, dir=d, inventory=d / "inventory.yaml", addresses=addresses, namespaces=namespaces)


def _inventory(spec: Spec, d: Path, addresses: dict[str, str], nics: dict[str, list[dict[str, Any]]],
               python: str, build_cache: str | None) -> str:
    defaults: dict[str, Any] = {"user": "root", "port": 22, "key_file": str(d / "id_ed25519"),
                                "known_hosts": str(d / "known_hosts"), "python": python, "hugepages": 256,
                                "connect_timeout_s": 10, "command_timeout_s": 120}
    if build_cache:
        defaults["build_cache"] = build_cache
    hosts: dict[str, Any] = {}
    for n, roles in spec.roles.items():
        root = str(d / "hosts" / n / "root")
        h: dict[str, Any] = {"address": addresses[n], "roles": roles, "install_root": root,
                             "system_root": root, "cores": spec.cores.get(n, [0])}
        if nics[n]:
            h["nics"] = [{k: v for k, v in nic.items() if v is not None} for nic in nics[n]]
        h.update(spec.extra.get(n, {}))
        hosts[n] = h
    head = ("# namespace test hosts made by testbed/local (harness testbed local up); removed by\n"
            "# `harness testbed local down`. Schema: docs/testbed.md\n")
    return head + yaml.safe_dump({"defaults": defaults, "hosts": hosts}, sort_keys=False)


def _wait_sshd(addresses: dict[str, str], namespaces: dict[str, str], timeout_s: float = 10.0) -> None:
    """sshd forks into the background before it listens: wait until each one accepts connections."""
    import socket
    deadline = time.monotonic() + timeout_s
    for n, addr in addresses.items():
        while True:
            try:
                with socket.create_connection((addr, 22), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise LocalHostsError(f"sshd of namespace host {n} ({addr}) does not listen") from None
                time.sleep(0.05)


def _start_time(pid: int | None) -> int | None:
    if not pid:
        return None
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int | None, start: int | None) -> bool:
    return pid is not None and _start_time(pid) is not None and _start_time(pid) == start


def _kill_namespace(ns: str) -> None:
    """Every process in the namespace (its sshd, sessions, DPDK processes a test left), by pid."""
    for _ in range(3):
        pids = [int(p) for p in _run(["ip", "netns", "pids", ns], check=False).stdout.split() if p.isdigit()]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


def _remove(namespaces: list[str], links: list[str]) -> None:
    for ns in namespaces:
        if ns in _namespaces():
            _kill_namespace(ns)
            _run(["ip", "netns", "del", ns], check=False)
    for link in links:
        _run(["ip", "link", "del", link], check=False)


def _namespaces() -> list[str]:
    out = _run(["ip", "netns", "list"], check=False).stdout
    return [ln.split()[0] for ln in out.splitlines() if ln.strip()]


def destroy_id(run_id: str) -> bool:
    """Remove one run's hosts (processes, namespaces, bridge, veths), its keys and directory; whether there
    was a record."""
    rec = _record(run_id)
    try:
        data = json.loads(rec.read_text())
    except (OSError, ValueError):
        data = None
    ours_ns = [ns for ns in _namespaces() if ns.startswith(f"{PREFIX}{run_id}-")]
    ours_links = [ln for ln in _links() if ln.startswith(f"{PREFIX}{run_id}")]
    _remove(sorted(set(ours_ns + (data or {}).get("namespaces", []))),
            sorted(set(ours_links + (data or {}).get("links", []))))
    if data and data.get("dir"):
        d = Path(data["dir"])
        for name in ("id_ed25519", "id_ed25519.pub", "known_hosts"):
            (d / name).unlink(missing_ok=True)
        shutil.rmtree(d / "hosts", ignore_errors=True)
        (d / "inventory.yaml").unlink(missing_ok=True)
    rec.unlink(missing_ok=True)
    return data is not None


def destroy(directory: str | Path) -> bool:
    """Remove the hosts made in ``directory``; whether there were any."""
    d = str(Path(directory).resolve())
    found = False
    for rec in REGISTRY.glob("*.json") if REGISTRY.is_dir() else []:
        try:
            if json.loads(rec.read_text()).get("dir") == d:
                found = destroy_id(rec.stem) or found
        except (OSError, ValueError):
            continue
    return found


def _links() -> list[str]:
    out = _run(["ip", "-o", "link", "show"], check=False).stdout
    return [m.group(1) for m in re.finditer(r"^\d+: ([^:@]+)[@:]", out, re.M)]


def reclaim(everything: bool = False) -> list[str]:
    """Remove runs whose owner process is gone, and ``sptb*`` namespaces and links no record names (a crash
    between making them and recording them cannot happen: the record comes first; a deleted record can).
    ``everything``: every run, owned or not. Returns the run ids removed."""
    removed = []
    recorded: set[str] = set()
    for rec in sorted(REGISTRY.glob("*.json")) if REGISTRY.is_dir() else []:
        try:
            data = json.loads(rec.read_text())
        except (OSError, ValueError):
            data = {}
        owner = data.get("owner_pid")
        if everything or (owner is not None and not _alive(owner, data.get("owner_start"))):
            destroy_id(rec.stem)
            removed.append(rec.stem)
        else:
            recorded.add(rec.stem)
    orphans_ns = [ns for ns in _namespaces() if ns.startswith(PREFIX) and ns[len(PREFIX):].split("-")[0]
                  not in recorded]
    orphans_links = [ln for ln in _links() if ln.startswith(PREFIX) and ln[len(PREFIX):len(PREFIX) + 6]
                     not in recorded]
    if orphans_ns or orphans_links:
        _remove(orphans_ns, orphans_links)
        removed += sorted({x[len(PREFIX):len(PREFIX) + 6] for x in orphans_ns + orphans_links})
    return removed
