"""`harness testbed run -i INVENTORY figure-15`: the SFC FW→MON→NAT across servers (paper Fig. 15, Serpens'
own design), with the generator, the gateway and the worker(s) on different hosts.

* the generator host runs serpens-gen per trial (:class:`~testbed.run.RemoteGenerator`) on its NIC cabled
  to the gateway;
* the gateway host runs serpensd ``--link gateway``: port 0 is its NIC cabled to the generator, the link
  port (``--link-port net_af_packet1``) its NIC cabled to the first worker; every worker's peer entry is that
  worker's NIC address (MAC) with its server address (198.18.0.(1+k), only ever in VXLAN headers);
* each worker host runs serpensd ``--link worker`` on its NIC cabled to the gateway.

One worker: serpensd's link is one port, and the inventory's ``peer`` is a point-to-point cable, so a second
worker would need a switch behind the gateway's link NIC, which the inventory cannot describe yet. The run
takes the first host with the worker role (and says so when there are more).

The steps after the processes are up are :class:`~harness.serpens.multiserver.GatewayPlacement`'s, the ones
one machine uses: every NF and SFC on every server (the ids must agree: the tag is the id), the worker's
share of every release pool moved from the gateway's State Manager before its instance starts, the SFC's
buckets routed to it. The measurement is the one-machine point (:func:`~harness.traffic.measure.
measure_point`: MLRsearch and a latency trial, or one fixed-rate trial with ``--rate-mpps``); the row goes
to ``figure-15-servers2-testbed`` CSV with a sidecar that has the per-hop table
(:func:`~harness.serpens.multiserver.per_hop`) of every packet the generator sent during the run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.config import Config, ConfigError
from harness.native import RunDir
from harness.platforms import designs
from harness.platforms.base import PlatformError
from harness.serpens.multiserver import GATEWAY_IP, GatewayPlacement, per_hop, server_ip
from harness.serpens.sfc import SfcSpec
from harness.traffic.base import GeneratorError
from testbed.inventory import Host, Inventory, Nic
from testbed.remote import HostError, Remote, fetch_all
from testbed.remote_serpensd import RemoteServerd
from testbed.run import RemoteGenerator, RunError, _lcore, measure_on_hosts, placement

SFC = "fw,mon,nat"
DESIGN = "serpens"
LINK_PORT = "net_af_packet1"     # the gateway's link port; port 0 (net_af_packet0) faces the generator


def _af_packet(index: int, nic: Nic) -> str:
    # framecnt: a server off the CPU for a few ms must not find its ring overflowed (multiserver.RING_FRAMES)
    return f"net_af_packet{index},iface={nic.iface},qpairs=1,framecnt=4096"


class RemoteGateway(GatewayPlacement, RemoteServerd):
    """The gateway serpensd on its host, with its workers on theirs; starts them all and places each SFC's
    instance on worker 1."""

    def __init__(self, config: Config, run_dir: RunDir, remote: Remote, gen_nic: Nic, link_nic: Nic,
                 workers: Sequence[RemoteServerd], worker_macs: Sequence[str],
                 sfcs: Sequence[SfcSpec]) -> None:
        extra = ["--link", "gateway", "--link-ip", GATEWAY_IP, "--link-port", LINK_PORT]
        for w, mac in zip(workers, worker_macs, strict=True):
            extra += ["--link-peer", f"{server_ip(w.k)},{mac}"]
        pool = min(1, config["platforms"]["serpens"]["pool"])   # the gateway runs no instance
        super().__init__(config, run_dir, remote, 0, _lcore(remote.host, "platform"),
                         [_af_packet(0, gen_nic), _af_packet(1, link_nic)], extra, DESIGN, sfcs, pool=pool)
        self.workers = list(workers)
        self.placements: list[dict[str, Any]] = []

    def start(self) -> None:
        if self.running:
            return
        try:
            self.start_servers(super().start)
        except BaseException:
            try:
                self.stop()
            except PlatformError:
                pass
            raise

    def stats(self) -> dict[str, Any]:
        return self.servers_stats(super().stats())

    def stop(self) -> dict[str, Any]:
        return self.stop_servers(super().stop)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({"servers": 1 + len(self.workers),
                  "topology": (f"gateway {self.host.name} ({GATEWAY_IP}) + workers "
                               + ", ".join(f"{w.host.name} ({server_ip(w.k)})" for w in self.workers)
                               + ": net_af_packet on the inventory's NICs, VXLAN-GBP (UDP 4789, Group Policy "
                               "ID = SFC id, VNI = Router bucket)"),
                  "workers": [w.describe() for w in self.workers], "placements": self.placements})
        return d


NIC_COUNTERS = ("rx_packets", "tx_packets", "rx_dropped", "tx_dropped")


def _nic_counters(r: Remote, nics: Sequence[Nic]) -> dict[str, dict[str, int]]:
    """The host kernel's counters of its NICs (/sys/class/net/IF/statistics). They see every frame on the
    NIC, also those no DPDK counter sees: a frame that reached the generator host's kernel after serpens-gen
    stopped reading, or that its af_packet ring had no room for."""
    out: dict[str, dict[str, int]] = {}
    for nic in nics:
        d = f"/sys/class/net/{nic.iface}/statistics"
        try:
            values = r.out(" ".join(f"cat {d}/{c};" for c in NIC_COUNTERS), what="nic counters").split()
            out[nic.iface] = dict(zip(NIC_COUNTERS, (int(v) for v in values), strict=True))
        except (HostError, ValueError):
            pass
    return out


def _delta(after: dict[str, dict[str, int]], before: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {i: {c: v - before.get(i, {}).get(c, 0) for c, v in cs.items()} for i, cs in after.items()}


def _link(inv: Inventory, a: Host, b: Host, why: str) -> tuple[Nic, Nic]:
    links = inv.links(a, b)
    if not links:
        raise RunError(f"{inv.source}: no NIC of {a.name} is cabled to {b.name} ({why}; give one NIC a "
                       f"peer: {b.name}:IFACE)")
    return links[0]


def run_figure_15(inv: Inventory, config: Config, out_dir: Path, frame_size: int = 64,
                  rate_mpps: float | None = None, duration: float | None = None,
                  echo: Callable[[str], Any] = print) -> list[Path]:
    """FW→MON→NAT on Serpens across the inventory's generator, gateway and (first) worker hosts."""
    from harness.results import ResultWriter
    from harness.results import run_id as make_run_id
    from harness.traffic.measure import POINT_COLUMNS, point_row
    from harness.trial_log import TrialLogWriter, trials_path

    where = placement(inv, ("generator", "gateway", "worker"))
    gen_host, gw_host, wk_host = where["generator"][0], where["gateway"][0], where["worker"][0]
    names = [gen_host.name, gw_host.name, wk_host.name]
    if len(set(names)) != 3:
        raise RunError(f"{inv.source}: figure-15 across servers needs the generator, the gateway and a "
                       f"worker on three hosts, not {', '.join(names)}")
    if len(where["worker"]) > 1:
        echo(f"figure-15: {len(where['worker'])} workers in the inventory; this run places the SFC on the "
             f"first, {wk_host.name}")
    gen_nic, gw_gen_nic = _link(inv, gen_host, gw_host, "the generator's port")
    gw_link_nic, wk_nic = _link(inv, gw_host, wk_host, "the link between the servers")
    if duration is not None:
        config["measurement"]["latency_duration_s"] = duration
    flows = config["traffic"]["flows"]
    sfcs = [SfcSpec.linear(SFC)]
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"{make_run_id('figure-15-servers2-testbed')}.csv"
    log_path = trials_path(csv_path)
    fetched = out_dir / csv_path.stem
    run_dir = RunDir(config, "testbed-fig15")
    echo(f"figure-15: serpens-gen on {gen_host.name} ({gen_nic.iface}) ⇄ gateway serpensd on "
         f"{gw_host.name} ({gw_gen_nic.iface}; link {gw_link_nic.iface}) ⇄ worker serpensd on "
         f"{wk_host.name} ({wk_nic.iface}), {SFC}, {frame_size} B frames, {flows} flows")
    sent = {"tx": 0, "rx": 0, "trials": 0}
    hops: list[dict[str, Any]] = []
    final: dict[str, Any] = {}
    try:
        with Remote(gen_host) as rg, Remote(gw_host) as rw, Remote(wk_host) as rk:
            worker = RemoteServerd(config, run_dir, rk, 1, _lcore(wk_host, "platform"),
                                   [_af_packet(0, wk_nic)],
                                   ["--link", "worker", "--link-ip", server_ip(1),
                                    "--link-peer", f"{GATEWAY_IP},{gw_link_nic.mac}"], DESIGN, sfcs)
            platform = RemoteGateway(config, run_dir, rw, gw_gen_nic, gw_link_nic, [worker], [wk_nic.mac],
                                     sfcs)
            generator = RemoteGenerator(config, run_dir, rg, gen_nic)
            cores = {"generator": f"{gen_host.name} cpu {generator.lcore}",
                     "platform_data_plane": f"{gw_host.name} cpu {platform.lcore}",
                     "worker": f"{wk_host.name} cpu {worker.lcore}"}
            extra = {"testbed": {"inventory": inv.source,
                                 "placement": {"generator": gen_host.name, "gateway": gw_host.name,
                                               "worker": [wk_host.name]},
                                 "links": [[f"{gen_host.name}:{gen_nic.iface}",
                                            f"{gw_host.name}:{gw_gen_nic.iface}"],
                                           [f"{gw_host.name}:{gw_link_nic.iface}",
                                            f"{wk_host.name}:{wk_nic.iface}"]]},
                     "servers": 2, "repetitions": 1, "trials_file": log_path.name}
            nic_sets = ((rg, [gen_nic]), (rw, [gw_gen_nic, gw_link_nic]), (rk, [wk_nic]))
            before = {r.host.name: _nic_counters(r, nics) for r, nics in nic_sets}
            try:
                with platform, generator, \
                        ResultWriter(csv_path, "figure-15", POINT_COLUMNS, config, cores=cores,
                                     extra=extra) as writer, \
                        TrialLogWriter(log_path, writer.run_id) as log:
                    writer.note("rig", {"platform": platform.describe(), "generator": "serpens-gen (remote)"})
                    def count(result: Any) -> None:
                        sent["tx"] += result.tx_packets
                        sent["rx"] += result.rx_packets
                        sent["trials"] += 1

                    record, point_id = measure_on_hosts(generator, platform, config, log, frame_size, flows,
                                                        rate_mpps, echo, each_trial=count)
                    # every counter since the servers started against every packet of every trial
                    hops = per_hop(platform.stats(), sent["tx"], sent["rx"])
                    nic_delta = {r.host.name: _delta(_nic_counters(r, nics), before[r.host.name])
                                 for r, nics in nic_sets}
                    writer.note("per_hop", {"generator_trials": sent["trials"], "hops": hops,
                                            "nic_counters": nic_delta})
                    record.update(platform=DESIGN, **designs.row_identity(DESIGN), workload=SFC, trial=0,
                                  point_id=point_id, trials_file=log_path.name)
                    log.point(point_id, record)
                    writer.write(point_row(record))
                    final = platform.stop()
            finally:
                fetch_all(fetched, ((rg, (generator.remote_report, generator.remote_streams)),
                                    (rw, (platform.remote_log,)), (rk, (worker.remote_log,))))
    except (HostError, PlatformError, GeneratorError, ConfigError, OSError) as exc:
        raise RunError(str(exc).splitlines()[0]) from None
    finally:
        run_dir.remove()
    (fetched / "final-stats.json").write_text(json.dumps(final, indent=1))
    (fetched / "per-hop.json").write_text(json.dumps(hops, indent=1))
    for h in hops:
        echo(f"  {h['hop']:26} sent {h['sent']:>9} received {h['received']:>9} dropped {h['dropped']:>7} "
             f"unaccounted {h['unaccounted']}")
    return [csv_path, csv_path.with_suffix(".json"), log_path, fetched]
