"""Task ``nics``: every NIC of the inventory exists on its host with the inventory's MAC (and PCI address).

Check only: the testbed does not rename interfaces or change MACs (a wrong inventory must be fixed, not
applied), so a mismatch fails the host with one line naming the NIC. DPDK reaches the NICs through
``net_af_packet`` on the kernel interface (no driver binding; docs/testbed.md says why).
"""

from __future__ import annotations

import shlex

from testbed.remote import HostError, Remote
from testbed.runner import Context, Task


class Nics(Task):
    name = "nics"

    def applies(self, host) -> bool:   # type: ignore[no-untyped-def]
        return bool(host.nics)

    def check(self, r: Remote, ctx: Context) -> str | None:
        for nic in r.host.nics:
            mac = r.read(f"/sys/class/net/{nic.iface}/address")
            if mac is None:
                raise HostError(f"{r.host.name}: NIC {nic.iface} does not exist on the host (ip link shows "
                                "no such interface)")
            if mac.strip().lower() != nic.mac:
                raise HostError(f"{r.host.name}: NIC {nic.iface} has MAC {mac.strip()}, the inventory says "
                                f"{nic.mac}")
            if nic.pci:
                dev = f"/sys/bus/pci/devices/{nic.pci}"
                if not r.ok(f"test -e {shlex.quote(dev)}", what="test"):
                    raise HostError(f"{r.host.name}: NIC {nic.iface}: no PCI device {nic.pci}")
                link = r.out(f"readlink -f /sys/class/net/{nic.iface}/device || true", what="readlink")
                if not link.endswith(nic.pci):
                    raise HostError(f"{r.host.name}: NIC {nic.iface} is not PCI device {nic.pci} "
                                    f"(it is {link or 'not a PCI device'})")
        return None

    def apply(self, r: Remote, ctx: Context, why: str) -> str | None:
        return None
