"""Task ``trex-config``: TRex's ``/etc/trex_cfg.yaml`` on a ``trex`` host, from the inventory's NICs and
cores.

The file is TRex's platform configuration (version 2): ``interfaces`` (PCI addresses, or ``--vdev`` strings
for a NIC without one, e.g. a veth through net_af_packet), ``port_info`` with each port's source MAC and the
MAC of the DUT NIC it is cabled to (the NIC's ``peer``), and ``platform``: the first core is TRex's master
thread, the second its latency thread, the rest its traffic threads (``c`` of them per port pair). TRex
drives ports in pairs: an odd number of NICs gets TRex's ``dummy`` port. On a namespace test host the file
is written under its system root (``system_root``: the install root), not this machine's /etc.
"""

from __future__ import annotations

from typing import Any

import yaml

from testbed.inventory import Host, Inventory, InventoryError
from testbed.remote import Remote
from testbed.runner import Context, Task

PATH = "/etc/trex_cfg.yaml"


def _interface(nic: Any, index: int) -> str:
    if nic.pci:
        domain, rest = nic.pci.split(":", 1)
        return rest if domain == "0000" else nic.pci   # TRex's own tools write the short form
    return f"--vdev=net_af_packet{index},iface={nic.iface}"


def config(inventory: Inventory, host: Host) -> list[dict[str, Any]]:
    """TRex's configuration (a one-element list, as TRex reads it) for ``host``."""
    where = f"{inventory.source}: host '{host.name}'"
    if not host.nics:
        raise InventoryError(f"{where}: role trex needs nics (TRex's ports)")
    if len(host.cores) < 3:
        raise InventoryError(f"{where}: role trex needs at least 3 cores (master, latency, one traffic "
                             f"thread), got {list(host.cores)}")
    interfaces, ports = [], []
    for i, nic in enumerate(host.nics):
        peer = inventory.peer_of(host, nic)
        if peer is None:
            raise InventoryError(f"{where}: NIC {nic.iface} has no peer (the DUT NIC it is cabled to): TRex "
                                 "needs that NIC's MAC as the port's dest_mac")
        interfaces.append(_interface(nic, i))
        ports.append({"src_mac": nic.mac, "dest_mac": peer[1].mac})
    if len(interfaces) % 2:
        interfaces.append("dummy")
    threads = list(host.cores[2:])
    return [{"version": 2, "c": len(threads), "interfaces": interfaces, "port_info": ports,
             "platform": {"master_thread_id": host.cores[0], "latency_thread_id": host.cores[1],
                          "dual_if": [{"socket": 0, "threads": threads}]}}]


def render(inventory: Inventory, host: Host) -> str:
    return (f"### written by `harness testbed provision` from {inventory.source} (host {host.name})\n"
            + yaml.safe_dump(config(inventory, host), sort_keys=False, default_flow_style=None))


class TrexConfig(Task):
    name = "trex-config"
    roles = ("trex",)

    def check(self, r: Remote, ctx: Context) -> str | None:
        want = render(ctx.inventory, r.host)
        path = r.host.system_path(PATH)
        return None if r.read(path) == want else f"{path} differs"

    def apply(self, r: Remote, ctx: Context, why: str) -> str | None:
        path = r.host.system_path(PATH)
        r.run(f"mkdir -p {path.rsplit('/', 1)[0]}", what="mkdir")
        r.put_bytes(render(ctx.inventory, r.host).encode(), path)
        return f"wrote {path}"
