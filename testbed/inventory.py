"""The testbed inventory: hosts, their SSH details, roles, cores, NICs and hugepages, validated strictly.

Like the configuration (harness/config), a typo is an error, never a silently ignored setting: an unknown
key, a wrong type or a value out of range is one :class:`InventoryError` line naming the file, the host and
the key, and what was expected. The versions the testbed installs are not in an inventory: they are
pinned once, in ``testbed/versions.yaml`` (:func:`versions`).

Schema (docs/testbed.md has the commented version)::

    defaults:                 # optional: any host key, applied to every host that does not set it
      user: root
    hosts:
      NAME:
        address: 198.18.0.10  # required: IP address or DNS name
        port: 22
        user: root
        key_file: ~/.ssh/id_ed25519
        known_hosts: PATH     # optional: host keys are checked against it (unknown keys refused)
        roles: [generator]    # required: generator, gateway, worker, redis, trex
        cores: [2, 3]
        nics: [{iface: enp3s0f0, mac: "02:00:00:00:00:01", pci: "0000:03:00.0"}]
        hugepages: 1024       # 2 MiB pages reserved on the host (raised to this, never lowered)
        ...
"""

from __future__ import annotations

import copy
import difflib
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import ConfigError, read_input_file, yaml_text

VERSIONS_FILE = Path(__file__).with_name("versions.yaml")
ROLES = ("generator", "gateway", "worker", "redis", "trex")


class InventoryError(ConfigError):
    """The inventory is wrong; the message names the file, the host and the key."""


@dataclass(frozen=True)
class Nic:
    iface: str
    mac: str
    pci: str | None = None
    peer: str | None = None    # "HOST:IFACE" this NIC is cabled to (TRex's dest_mac, the run's links)


@dataclass(frozen=True)
class Host:
    """One host of the inventory, every default filled in."""

    name: str
    address: str
    port: int
    user: str
    key_file: str | None
    known_hosts: str | None
    roles: tuple[str, ...]
    cores: tuple[int, ...]
    nics: tuple[Nic, ...]
    hugepages: int
    install_root: str
    system_root: str
    sudo: bool
    python: str | None
    packages: tuple[str, ...]
    build_cache: str
    trex_path: str | None
    connect_timeout_s: float
    command_timeout_s: float
    build_timeout_s: float
    harness: dict[str, Any] = field(default_factory=dict)

    def has(self, role: str) -> bool:
        return role in self.roles

    def path(self, *parts: str) -> str:
        """A path under the host's install root."""
        return "/".join([self.install_root.rstrip("/"), *parts])

    def system_path(self, path: str) -> str:
        """A system file (``/etc/trex_cfg.yaml``) under the host's system root: ``/`` on a real host, its
        install root on a namespace test host (which shares this machine's /etc)."""
        root = self.system_root.rstrip("/")
        return f"{root}{path}" if root else path


@dataclass(frozen=True)
class Inventory:
    source: str
    hosts: dict[str, Host]

    def with_role(self, role: str) -> list[Host]:
        return [h for h in self.hosts.values() if h.has(role)]

    def peer_of(self, host: Host, nic: Nic) -> tuple[Host, Nic] | None:
        """The host and NIC ``nic`` is cabled to, from either side's ``peer``."""
        if nic.peer:
            name, iface = nic.peer.split(":")
            other = self.hosts[name]
            return other, next(n for n in other.nics if n.iface == iface)
        for other in self.hosts.values():
            for n in other.nics:
                if n.peer == f"{host.name}:{nic.iface}":
                    return other, n
        return None

    def links(self, a: Host, b: Host) -> list[tuple[Nic, Nic]]:
        """The NIC pairs cabling host ``a`` to host ``b`` (a's NIC first)."""
        out = []
        for nic in a.nics:
            p = self.peer_of(a, nic)
            if p is not None and p[0].name == b.name:
                out.append((nic, p[1]))
        return out

    def one(self, role: str) -> Host:
        """The one host of a role an experiment places a component on (the first listed)."""
        hosts = self.with_role(role)
        if not hosts:
            raise InventoryError(f"{self.source}: no host has the role '{role}'")
        return hosts[0]


# Every host key, its type (checked like harness/config: a bool is not an int), its default (REQUIRED: must
# be given) and what the error says is expected.
REQUIRED = object()
_PKG = re.compile(r"[a-z0-9][a-z0-9+.-]+")
_MAC = re.compile(r"([0-9a-f]{2}:){5}[0-9a-f]{2}")
_PCI = re.compile(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]")
_IFACE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")

HOST_KEYS: dict[str, tuple[type | tuple[type, ...], Any, str]] = {
    "address": (str, REQUIRED, "an IP address or host name"),
    "port": (int, 22, "a TCP port 1..65535"),
    "user": (str, "root", "a user name"),
    "key_file": (str, None, "a path to a private key file"),
    "known_hosts": (str, None, "a path to a known_hosts file"),
    "roles": (list, REQUIRED, f"a non-empty list of roles from {', '.join(ROLES)}"),
    "cores": (list, [], "a list of CPU numbers (integers >= 0)"),
    "nics": (list, [], "a list of NICs, each a mapping with iface, mac and optionally pci"),
    "hugepages": (int, 1024, "a number of 2 MiB pages, 0..1048576"),
    "install_root": (str, "/opt/serpens", "an absolute path"),
    "system_root": (str, "/", "an absolute path (/ on a real host)"),
    "sudo": (bool, False, "true or false (prefix commands with sudo -n)"),
    "python": (str, None, "the path of a Python with the harness's requirements"),
    "packages": (list, [], "a list of Debian package names"),
    "build_cache": (str, "/var/cache/serpens-testbed", "an absolute path"),
    "trex_path": (str, None, "the absolute path of an unpacked TRex release"),
    "connect_timeout_s": ((int, float), 10.0, "a number of seconds in (0, 300]"),
    "command_timeout_s": ((int, float), 120.0, "a number of seconds in (0, 3600]"),
    "build_timeout_s": ((int, float), 1800.0, "a number of seconds in (0, 7200]"),
    "harness": (dict, {}, "a mapping of harness configuration keys (merged into the host's harness.yaml)"),
}
NIC_KEYS = ("iface", "mac", "pci", "peer")


def _type_ok(expected: type | tuple[type, ...], value: Any) -> bool:
    if isinstance(value, bool):
        return expected is bool
    return isinstance(value, expected)


def _unknown(where: str, key: Any, known: list[str]) -> InventoryError:
    close = difflib.get_close_matches(str(key), known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return InventoryError(f"{where}: unknown key '{key}'{hint}; known keys: {', '.join(known)}")


def _check_value(where: str, key: str, value: Any) -> None:
    """Ranges and formats a type alone does not say."""
    expect = HOST_KEYS[key][2]

    def bad(detail: str = "") -> InventoryError:
        return InventoryError(f"{where}: key '{key}' must be {expect}, got {value!r}{detail}")

    if key == "address":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if not _HOSTNAME.fullmatch(value):
                raise bad() from None
    elif key == "port" and not 1 <= value <= 65535:
        raise bad()
    elif key == "roles":
        if not value:
            raise bad()
        for role in value:
            if role not in ROLES:
                close = difflib.get_close_matches(str(role), ROLES, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise bad(f": unknown role {role!r}{hint}")
        if len(set(value)) != len(value):
            raise bad(": a role is listed twice")
    elif key == "cores":
        if any(isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= 4095 for c in value):
            raise bad()
    elif key == "hugepages" and not 0 <= value <= 1 << 20:
        raise bad()
    elif key in ("install_root", "system_root", "build_cache", "trex_path") and not value.startswith("/"):
        raise bad()
    elif key == "install_root" and value.rstrip("/") == "":
        raise bad(": not / itself (teardown removes what is under it)")
    elif key == "packages":
        if any(not isinstance(p, str) or not _PKG.fullmatch(p) for p in value):
            raise bad()
    elif key == "connect_timeout_s" and not 0 < value <= 300:
        raise bad()
    elif key == "command_timeout_s" and not 0 < value <= 3600:
        raise bad()
    elif key == "build_timeout_s" and not 0 < value <= 7200:
        raise bad()


def _nics(where: str, value: list[Any]) -> tuple[Nic, ...]:
    out: list[Nic] = []
    for i, item in enumerate(value):
        at = f"{where}: key 'nics[{i}]'"
        if not isinstance(item, dict):
            raise InventoryError(f"{at} must be a mapping with iface, mac and optionally pci, got {item!r}")
        for k in item:
            if k not in NIC_KEYS:
                raise _unknown(f"{where}, nics[{i}]", k, list(NIC_KEYS))
        for k in ("iface", "mac"):
            if k not in item:
                raise InventoryError(f"{at}: missing key '{k}'")
        iface, mac, pci = item["iface"], item["mac"], item.get("pci")
        if not isinstance(iface, str) or not _IFACE.fullmatch(iface):
            raise InventoryError(f"{at}.iface must be an interface name (1-15 of A-Z a-z 0-9 _ . -), "
                                 f"got {iface!r}")
        if not isinstance(mac, str) or not _MAC.fullmatch(mac.lower()):
            raise InventoryError(f"{at}.mac must be a MAC address like 02:00:00:00:00:01, got {mac!r}")
        if pci is not None and (not isinstance(pci, str) or not _PCI.fullmatch(pci.lower())):
            raise InventoryError(f"{at}.pci must be a PCI address like 0000:03:00.0 (or absent for a "
                                 f"virtual interface), got {pci!r}")
        peer = item.get("peer")
        if peer is not None and (not isinstance(peer, str) or peer.count(":") != 1):
            raise InventoryError(f"{at}.peer must be HOST:IFACE (the NIC this one is cabled to), "
                                 f"got {peer!r}")
        out.append(Nic(iface=iface, mac=mac.lower(), pci=pci.lower() if pci else None, peer=peer))
    if len({n.iface for n in out}) != len(out):
        raise InventoryError(f"{where}: key 'nics': an interface is listed twice")
    return tuple(out)


def _host(source: str, name: str, raw: Any, defaults: dict[str, Any]) -> Host:
    where = f"{source}: host '{name}'"
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InventoryError(f"{source}: host name {name!r} must be 1-32 of A-Z a-z 0-9 _ - "
                             "(it names the host in every report)")
    if not isinstance(raw, dict):
        raise InventoryError(f"{where} must be a mapping of host keys, got {raw!r}")
    merged = {**defaults, **raw}
    values: dict[str, Any] = {}
    for key in merged:
        if key not in HOST_KEYS:
            raise _unknown(where, key, list(HOST_KEYS))
    for key, (expected, default, expect) in HOST_KEYS.items():
        if key not in merged or merged[key] is None:
            if default is REQUIRED:
                raise InventoryError(f"{where}: missing key '{key}' ({expect})")
            values[key] = copy.deepcopy(default)
            continue
        value = merged[key]
        if not _type_ok(expected, value):
            raise InventoryError(f"{where}: key '{key}' must be {expect}, got {value!r}")
        if key != "nics" and key != "harness":
            _check_value(where, key, value)
        values[key] = value
    nics = _nics(where, values.pop("nics"))
    install_root = values["install_root"].rstrip("/")
    return Host(name=name, nics=nics, **{**values, "install_root": install_root,
                                         "roles": tuple(values["roles"]), "cores": tuple(values["cores"]),
                                         "packages": tuple(values["packages"]),
                                         "connect_timeout_s": float(values["connect_timeout_s"]),
                                         "command_timeout_s": float(values["command_timeout_s"]),
                                         "build_timeout_s": float(values["build_timeout_s"])})


def parse(data: Any, source: str) -> Inventory:
    """An inventory from parsed YAML; ``source`` names it in every error."""
    if not isinstance(data, dict):
        raise InventoryError(f"{source}: an inventory is a mapping with 'hosts' (and optionally "
                             f"'defaults'), got {type(data).__name__}")
    for key in data:
        if key not in ("hosts", "defaults"):
            raise _unknown(source, key, ["defaults", "hosts"])
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise InventoryError(f"{source}: key 'defaults' must be a mapping of host keys, got {defaults!r}")
    for key in defaults:
        if key not in HOST_KEYS:
            raise _unknown(f"{source}: defaults", key, list(HOST_KEYS))
    hosts = data.get("hosts")
    if not isinstance(hosts, dict) or not hosts:
        raise InventoryError(f"{source}: key 'hosts' must be a non-empty mapping of host name to host, "
                             f"got {hosts!r}")
    parsed = {str(name): _host(source, name, raw, defaults) for name, raw in hosts.items()}
    seen: dict[tuple[str, int], str] = {}
    for h in parsed.values():
        other = seen.setdefault((h.address, h.port), h.name)
        if other != h.name:
            raise InventoryError(f"{source}: host '{h.name}': key 'address' {h.address}:{h.port} is host "
                                 f"'{other}' already")
    for h in parsed.values():
        for nic in h.nics:
            if nic.peer is None:
                continue
            peer_host, peer_iface = nic.peer.split(":")
            other_host = parsed.get(peer_host)
            if other_host is None or peer_iface not in {n.iface for n in other_host.nics}:
                raise InventoryError(f"{source}: host '{h.name}': key 'nics' ({nic.iface}).peer {nic.peer!r} "
                                     "names no NIC of the inventory")
    return Inventory(source=source, hosts=parsed)


def load(path: str | Path) -> Inventory:
    """Read and validate an inventory file: every problem is one :class:`InventoryError` line."""
    p = Path(path)
    raw = read_input_file(p, "inventory")
    return parse(yaml_text(raw, str(p), "an inventory"), str(p))


def versions() -> dict[str, str]:
    """The pinned versions (testbed/versions.yaml): dpdk, trex, redis."""
    data = yaml_text(VERSIONS_FILE.read_bytes(), str(VERSIONS_FILE), "the pinned versions")
    if not isinstance(data, dict) or set(data) != {"dpdk", "trex", "redis"} or \
            not all(isinstance(v, str) for v in data.values()):
        raise InventoryError(f"{VERSIONS_FILE}: must map exactly dpdk, trex and redis to version strings")
    return data
