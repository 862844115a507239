"""Serpens across servers on one machine (docs/multiserver.md): a gateway serpensd and N worker serpensds,
each its own DPDK primary (own ``--file-prefix``, control socket, log), linked by veth pairs on a Linux
bridge and DPDK's ``net_af_packet`` driver, packets between them VXLAN-encapsulated with the SFC tag
(native/serpens/vxlan.h, server_link.c).

* :class:`ServerLink` — the bridge and one veth pair per server, in the root namespace with no addresses
  (af_packet needs none; the outer addresses, 198.18.0.0/15, live only in the VXLAN headers), IPv6 off so
  that the kernel puts no frames of its own on the link.
* :class:`WorkerServer` — a worker: serpensd with the link as its only port (``--link worker``).
* :class:`MultiServerPlatform` — the gateway (the memif server of the generator, as on one server, plus
  the link: ``--link gateway``) and its controller side: it deploys every NF and SFC on every server (the
  SFC ids must agree: the tag is the id), starts no instance on the gateway, and places each SFC's
  instance on worker 1; :meth:`scale_out` adds an instance on another worker for new flows. Before an
  instance starts on a worker, that worker's State Manager gets its share of every release pool from the
  gateway's (share_export / share_import), so no two servers can hand out the same item (NAT port).
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import Config
from harness.native import RunDir
from harness.platforms.base import PlatformError
from harness.platforms.designs import Design
from harness.serpens.controller import Controller
from harness.serpens.platform import DesignPlatform
from harness.serpens.sfc import SfcSpec

GATEWAY_IP = "198.18.0.1"          # server 0; worker k is 198.18.0.(1 + k)
MAX_SERVERS = 9                    # the gateway and 8 workers (serpensd's SL_MAX_PEERS)
LINK_VDEV = "net_af_packet0"       # server_link.c looks the link port up by this name


def server_ip(k: int) -> str:
    return f"198.18.0.{1 + k}"


def link_id(tag: str) -> str:
    """The 6 hex digits that name a run's link devices (Linux allows 15 characters per name)."""
    return hashlib.sha1(tag.encode()).hexdigest()[:6]


def _ip(*args: str) -> None:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if r.returncode != 0:
        raise PlatformError(f"ip {' '.join(args)}: {r.stderr.strip() or r.returncode}")


class ServerLink:
    """A bridge ``sp<id>br`` and, per server k, a veth pair ``sp<id>s<k>`` (the server's af_packet
    interface) — ``sp<id>b<k>`` (in the bridge). ``id`` comes from the run's tag, so two runs never share
    names."""

    def __init__(self, tag: str, n_servers: int) -> None:
        self.id = link_id(tag)
        self.n = n_servers
        self.bridge = f"sp{self.id}br"
        self.created: list[str] = []

    def iface(self, k: int) -> str:
        return f"sp{self.id}s{k}"

    def bridge_port(self, k: int) -> str:
        return f"sp{self.id}b{k}"

    def mac(self, k: int) -> str:
        return Path(f"/sys/class/net/{self.iface(k)}/address").read_text().strip()

    @staticmethod
    def _quiet(dev: str) -> None:
        # no IPv6 (router solicitations, ND): the only frames on the link are the servers' tunnel frames
        Path(f"/proc/sys/net/ipv6/conf/{dev}/disable_ipv6").write_text("1\n")

    @staticmethod
    def reclaim_stale(runtime_dir: Path) -> list[str]:
        """Delete the links of runs that are gone (a SIGKILLed harness leaves its bridge and veths behind):
        every ``sp<id>br`` whose id is no run directory's under ``runtime_dir`` — a live run's directory
        exists from before its link is made until after it is removed — with its ``sp<id>s*`` veths."""
        try:
            live = {link_id(p.name) for p in runtime_dir.iterdir() if p.is_dir()}
            devices = [d.name for d in Path("/sys/class/net").iterdir()]
        except OSError:
            return []
        stale = {m.group(1) for d in devices if (m := re.fullmatch(r"sp([0-9a-f]{6})br", d))} - live
        removed = [d for d in devices if re.fullmatch(r"sp([0-9a-f]{6})(br|s\d+)", d) and d[2:8] in stale]
        for dev in removed:   # a veth's peer (sp<id>b<k>) goes with it
            subprocess.run(["ip", "link", "del", dev], capture_output=True, timeout=10)
        return removed

    def create(self) -> None:
        try:
            _ip("link", "add", self.bridge, "type", "bridge", "stp_state", "0")
            self.created.append(self.bridge)
            self._quiet(self.bridge)
            for k in range(self.n):
                _ip("link", "add", self.iface(k), "mtu", "9000", "type", "veth", "peer", "name",
                    self.bridge_port(k), "mtu", "9000")
                self.created.append(self.iface(k))
                for dev in (self.iface(k), self.bridge_port(k)):
                    self._quiet(dev)
                _ip("link", "set", self.bridge_port(k), "master", self.bridge)
                _ip("link", "set", self.bridge_port(k), "up")
                _ip("link", "set", self.iface(k), "up")
            _ip("link", "set", self.bridge, "up")
        except (PlatformError, OSError) as exc:
            self.remove()
            raise PlatformError(f"cannot create the link between the servers: {exc} (needs root)") from None

    def remove(self) -> None:
        for dev in reversed(self.created):   # a veth's peer goes with it
            subprocess.run(["ip", "link", "del", dev], capture_output=True, timeout=10)
        self.created = []


def _with_vdevs(cmd: list[str], replace: str | None, add: str | None) -> list[str]:
    """serpensd's command line with its memif vdev replaced by ``replace`` and/or ``add`` after it."""
    i = cmd.index("--vdev")
    out = list(cmd)
    if replace is not None:
        out[i + 1] = replace
    if add is not None:
        out[i + 2:i + 2] = ["--vdev", add]
    return out


# Frames in each af_packet ring (the PMD's default is 512): three DPDK processes share this machine's cores,
# and a server that is off the CPU for a few ms must not find its ring overflowed (the kernel drops those
# frames: stats.link.ring_drops). 4096 frames of 2 KiB: 8 MiB of kernel memory per ring.
RING_FRAMES = 4096


def _ranges(ports: list[int]) -> list[tuple[int, int]]:
    """Sorted inclusive ranges covering ``ports``: [1, 2, 3, 7] -> [(1, 3), (7, 7)]."""
    out: list[tuple[int, int]] = []
    for p in sorted(set(ports)):
        if out and p == out[-1][1] + 1:
            out[-1] = (out[-1][0], p)
        else:
            out.append((p, p))
    return out


def _af_packet(iface: str) -> str:
    return f"{LINK_VDEV},iface={iface},qpairs=1,framecnt={RING_FRAMES}"


class WorkerServer(DesignPlatform):
    """Worker k: serpensd whose only port is the link; everything it receives is VXLAN from the gateway."""

    def __init__(self, config: Config, run_dir: RunDir, k: int, link: ServerLink, design: str | Design,
                 sfcs: Sequence[SfcSpec]) -> None:
        super().__init__(config, run_dir, design=design, sfc=list(sfcs))
        self.k = k
        self.server_link = link
        self.settings = {**self.settings, "instances": 0}   # the gateway's Router places instances
        self.prefix = f"serpens-w{k}-{run_dir.tag}"
        self.control_socket = run_dir / f"serpensd-w{k}.sock"
        self.log_file = run_dir / f"serpensd-w{k}.log"

    def command(self) -> list[str]:
        cmd = _with_vdevs(super().command(), _af_packet(self.server_link.iface(self.k)), None)
        cmd[cmd.index("--nf-dir") + 1] = str(self.run_dir / f"nfs-w{self.k}")   # its own NF copies
        return cmd + ["--link", "worker", "--link-ip", server_ip(self.k),
                      "--link-peer", f"{GATEWAY_IP},{self.server_link.mac(0)}"]


class GatewayPlacement:
    """The gateway's side of placement, whatever carries its requests: the gateway is a
    :class:`DesignPlatform` (``_running()`` its controller, ``deployed_nfs``, ``sfcs``, ``sfc_ids``) with
    ``workers``, each a DesignPlatform with its server number ``k``. On one machine that is
    :class:`MultiServerPlatform`; on a testbed (testbed/run_sfc.py) the same steps reach serpensds on other
    hosts over SSH."""

    workers: Sequence[Any]
    placements: list[dict[str, Any]]
    deployed_nfs: dict[str, dict[str, Any]]
    sfcs: list[SfcSpec]
    sfc_ids: dict[str, int]

    def start_servers(self, start_gateway: Any) -> None:
        """The workers, then the gateway (``start_gateway``: its own start), then every SFC placed on the
        first worker; the caller stops what was started if this raises."""
        for w in self.workers:
            w.start()
        start_gateway()
        for spec in self.sfcs:
            self._check_ids(spec.name)
            self.place(spec.name, 1)

    def stop_servers(self, stop_gateway: Callable[[], dict[str, Any]],
                     cleanup: Callable[[], None] = lambda: None) -> dict[str, Any]:
        """The gateway (``stop_gateway``: its own stop), then every worker, then ``cleanup``: a failure is
        reported with the others at the end and keeps nothing else from stopping. The gateway's final
        stats, with each worker's under ``servers``."""
        errors: list[str] = []
        final: dict[str, Any] = {}
        finals = []
        try:
            final = stop_gateway()
        except PlatformError as exc:
            errors.append(f"gateway: {exc}")
        for w in self.workers:
            try:
                finals.append(w.stop())
            except PlatformError as exc:
                errors.append(f"worker {w.k}: {exc}")
        cleanup()
        if errors:
            raise PlatformError("; ".join(errors))
        if final:
            final["servers"] = finals
        return final

    if TYPE_CHECKING:   # DesignPlatform's, which comes after this class in the MRO
        def _running(self) -> Controller: ...

    def _check_ids(self, sfc: str) -> None:
        """The tag is the SFC id: every server must know the SFC under the gateway's id."""
        for w in self.workers:
            if w.sfc_ids.get(sfc) != self.sfc_ids.get(sfc):
                raise PlatformError(f"SFC {sfc!r} has id {self.sfc_ids.get(sfc)} on the gateway but "
                                    f"{w.sfc_ids.get(sfc)} on worker {w.k}: the tag would name another SFC")

    def _give_share(self, worker: Any, fraction: float) -> list[dict[str, Any]]:
        """Move ``fraction`` of what is left of each of the gateway's release pools to the worker's State
        Manager, replacing the worker's own copy (it must have no instance yet). Returns what moved."""
        gw, moved = self._running(), []
        for pool in gw.share_list():
            count = max(1, int(pool["nfree"] * fraction))
            items = gw.share_export(pool["table"], pool["key"], count)
            nfree = worker._running().share_import(pool["table"], pool["key"], items, replace=True)
            steered = self._steer_nat_share(pool["table"], items, worker.k)
            moved.append({"table": pool["table"], "key": pool["key"], "items": len(items),
                          "worker_nfree": nfree, "steered_ports": steered})
        return moved

    def _steer_nat_share(self, table: str, items: list[int], server: int) -> int:
        """A NAT's pool items are its external (address index << 16 | port) pairs: replies from outside to
        one of them must reach the worker whose share gave it out, which holds the flow's mapping. Steer
        those ports of every SFC that runs this NAT to the worker. Other pools: nothing (0)."""
        dname, _, name = table.rpartition("/")
        nf = self.deployed_nfs.get(dname)
        if name != "nat_pool" or nf is None or nf["type"] != "nat":
            return 0
        addresses = [a.strip() for a in str(nf["args"]["external_ip"]).split(",")]
        by_ip: dict[int, list[int]] = {}
        for item in items:
            by_ip.setdefault(item >> 16, []).append(item & 0xFFFF)
        steered = 0
        for spec in self.sfcs:
            if dname not in spec.nfs:
                continue
            for ip_index, ports in by_ip.items():
                steered += self._running().link_steer(spec.name, addresses[ip_index], server, _ranges(ports))
        return steered

    def place(self, sfc: str, server: int, buckets: Sequence[int] | None = None,
              share: float = 0.5) -> dict[str, Any]:
        """Put an instance of ``sfc`` on worker ``server`` and route ``buckets`` (all if None) of the SFC
        there; flows the gateway has seen stay where they are. The worker gets ``share`` of what is left of
        every release pool before its instance starts (a worker's first instance only)."""
        if not 1 <= server <= len(self.workers):
            raise PlatformError(f"server {server}: the workers are 1..{len(self.workers)}")
        worker = self.workers[server - 1]
        had = any(i["sfc"] == sfc for i in worker.instances.values())
        shares = [] if had else self._give_share(worker, share)
        reply = worker.start_instance(sfc)
        routed = self._running().link_route(sfc, server, None if buckets is None else list(buckets))
        record = {"sfc": sfc, "server": server, "instance": reply["instance"], "buckets_moved": routed,
                  "shares": shares, "startup_us": reply.get("startup_us")}
        self.placements.append(record)
        return record

    def scale_out(self, sfc: str, server: int, buckets: Sequence[int] | None = None,
                  share: float = 0.5) -> dict[str, Any]:
        """Inter-server scale-out: new flows of ``buckets`` (default: the upper half) go to an instance on
        ``server``; old flows stay."""
        return self.place(sfc, server, buckets if buckets is not None else range(128, 256), share)

    def servers_stats(self, gateway: dict[str, Any]) -> dict[str, Any]:
        """The gateway's stats with ``servers``: each worker's stats (``link`` has the per-hop counters)."""
        gateway["servers"] = [w.stats() for w in self.workers]
        return gateway


class MultiServerPlatform(GatewayPlacement, DesignPlatform):
    """The gateway of ``servers`` servers (1 gateway + servers-1 workers); the generator talks to it."""

    def __init__(self, config: Config, run_dir: RunDir, design: str | Design = "serpens",
                 sfc: SfcSpec | Sequence[SfcSpec] | str | None = None, servers: int | None = None) -> None:
        super().__init__(config, run_dir, design=design, sfc=sfc)
        if servers is None:
            servers = self.settings.get("servers", 2)
        if not isinstance(servers, int) or not 2 <= servers <= MAX_SERVERS:
            raise PlatformError(f"servers must be 2..{MAX_SERVERS} (a gateway and 1..{MAX_SERVERS - 1} "
                                f"workers), not {servers!r}")
        if self.design.chaining != "consolidated":
            raise PlatformError(f"{self.name}: across servers each worker runs whole SFC instances "
                                f"(consolidated chaining); this design has {self.design.chaining}")
        if self.design.needs_redis:
            raise PlatformError(f"{self.name}: across servers the state is each server's State Manager; "
                                "a remote-store design is not supported")
        self.n_servers = servers
        self.server_link = ServerLink(run_dir.tag, servers)
        # the gateway runs no instance (it routes to the workers): the smallest pool the startup method takes
        self.settings = {**self.settings, "instances": 0, "pool": min(1, self.settings["pool"])}
        self.workers = [WorkerServer(config, run_dir, k, self.server_link, design, self.sfcs)
                        for k in range(1, servers)]
        self.placements: list[dict[str, Any]] = []

    def command(self) -> list[str]:
        cmd = _with_vdevs(super().command(), None, _af_packet(self.server_link.iface(0)))
        cmd += ["--link", "gateway", "--link-ip", GATEWAY_IP]
        for w in self.workers:
            cmd += ["--link-peer", f"{server_ip(w.k)},{self.server_link.mac(w.k)}"]
        return cmd

    def start(self) -> None:
        if self.proc is not None:
            return
        ServerLink.reclaim_stale(self.run_dir.path.parent)
        self.server_link.create()
        try:
            self.start_servers(super().start)
        except BaseException:
            self.stop()
            raise

    def stats(self) -> dict[str, Any]:
        """The gateway's stats with ``servers``: each worker's stats (``link`` has the per-hop counters)."""
        return self.servers_stats(super().stats())

    def stop(self) -> dict[str, Any]:
        return self.stop_servers(super().stop, self.server_link.remove)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({"servers": self.n_servers,
                  "topology": (f"gateway {GATEWAY_IP} + workers "
                               + ", ".join(server_ip(w.k) for w in self.workers)
                               + f": veth pairs on bridge {self.server_link.bridge}, net_af_packet, "
                               "VXLAN-GBP (UDP 4789, Group Policy ID = SFC id, VNI = Router bucket)"),
                  "workers": [{"server": w.k, "serpensd_command": w.command_line} for w in self.workers],
                  "placements": self.placements})
        return d


def design_platform(config: Config, run_dir: RunDir, design: str | Design = "serpens",
                    sfc: SfcSpec | Sequence[SfcSpec] | str | None = None) -> DesignPlatform:
    """A registered design's platform: one serpensd, or with ``platforms.serpens.servers`` > 1 (and an SFC
    to place) a gateway and its workers."""
    servers = config["platforms"]["serpens"].get("servers", 1)
    if servers > 1 and sfc is not None:
        return MultiServerPlatform(config, run_dir, design=design, sfc=sfc, servers=servers)
    return DesignPlatform(config, run_dir, design=design, sfc=sfc)


def per_hop(stats: dict[str, Any], gen_tx: int, gen_rx: int, gen_refused: int = 0) -> list[dict[str, Any]]:
    """Per hop of generator → gateway → worker(s) → gateway → generator: packets sent by one side, received
    by the other, dropped in between or at the receiver (with the reason's counter), and ``unaccounted``
    = sent − received − dropped, which is 0 when every packet is accounted for. ``stats`` is
    :meth:`MultiServerPlatform.stats` (counters since start), gen_tx/gen_rx the generator's totals and
    gen_refused the packets the gateway's memif ring refused (the generator's ``dut_rx_full``)."""
    gw = stats["link"]
    gw_drops = gw["port_stats"]["imissed"] + gw["ring_drops"]
    # port 0's ring_drops: the kernel's full-ring drops when port 0 is af_packet (a testbed NIC), else 0
    rows = [{"hop": "generator -> gateway", "sent": gen_tx, "received": stats["port"]["rx_packets"],
             "dropped": stats["port"].get("imissed", 0) + stats["port"].get("ring_drops", 0) + gen_refused}]
    (sfc,) = stats["sfcs"]
    rows.append({"hop": "gateway router -> link", "sent": stats["port"]["rx_packets"],
                 "received": sum(p["sent"] for p in gw["peers"]),
                 "dropped": stats["gateway"]["miss"] + sum(p["dropped"] for p in gw["peers"])
                 + sfc.get("no_instance", 0) + sfc.get("ring_full", 0)})
    for peer, w in zip(gw["peers"], stats["servers"], strict=True):
        link, k = w["link"], peer["server"]
        rx = link["rx"]
        (wsfc,) = w["sfcs"]
        rows.append({"hop": f"gateway -> worker {k}", "sent": peer["sent"], "received": rx["decapsulated"],
                     "dropped": rx["bad"] + rx["unknown_sfc"] + rx["tag_mismatch"]
                     + link["port_stats"]["imissed"] + link["ring_drops"]})
        nf_drops = sum(i["nf_drops"] for i in w["instances"] if i["sfc_name"] == wsfc["name"])
        rows.append({"hop": f"worker {k} SFC", "sent": wsfc["rx_packets"], "received": wsfc["tx_packets"],
                     "dropped": wsfc["no_instance"] + wsfc["ring_full"] + wsfc["stranded"] + nf_drops})
        # the gateway's ring drops cannot be told apart by worker: with one worker they are its, with more
        # they are in the row after these
        rows.append({"hop": f"worker {k} -> gateway", "sent": link["tx"]["sent"],
                     "received": peer["received"],
                     "dropped": gw_drops if len(gw["peers"]) == 1 else 0})
    if len(gw["peers"]) > 1:
        rows.append({"hop": "workers -> gateway",
                     "sent": sum(w["link"]["tx"]["sent"] for w in stats["servers"]),
                     "received": gw["rx"]["decapsulated"], "dropped": gw_drops})
    rows.append({"hop": "gateway -> generator", "sent": gw["out"]["sent"] + gw["out"]["dropped"],
                 "received": gen_rx, "dropped": gw["out"]["dropped"]})
    for r in rows:
        r["unaccounted"] = r["sent"] - r["received"] - r["dropped"]
    return rows
