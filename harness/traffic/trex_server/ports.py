"""TRex ports as the RPC server sees them: ownership, streams and the port state machine.

A port is one memif vdev of the platform (``--vdev`` of serpens-gen). States are TRex's: ``IDLE`` (no
streams), ``STREAMS``, ``TX`` (a trial runs). Ownership follows the spec's port state machine: ``acquire``
hands out a handler that every command changing the port must carry; ``force`` takes a port from another
session. ``PAUSE`` is never entered: serpens-gen cannot pause (``pause_traffic`` is refused).
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from harness.traffic.trex_server.rpc import RpcError
from harness.traffic.trex_server.stats import PortCounters
from harness.traffic.trex_server.trial import Runner, Trial

IDLE, STREAMS, TX = "IDLE", "STREAMS", "TX"
# memif has no line rate; the client treats speed 0 as "no utilisation figure"
SPEED_GBPS = 0


def new_handler() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def port_mac(index: int) -> str:
    # locally administered, like the profiles' own MACs: only a label, serpens-gen never writes it
    return f"02:00:00:00:01:{index:02x}"


@dataclass
class Port:
    index: int
    vdev: str
    runner: Runner
    owner: str = ""
    handler: str | None = None
    session_id: Any = None
    streams: dict[int, dict[str, Any]] = field(default_factory=dict)
    promiscuous: bool = False
    multicast: bool = False
    counters: PortCounters = field(default_factory=PortCounters)
    trial: Trial | None = None
    last_error: str = ""

    @property
    def state(self) -> str:
        if self.trial is not None:
            return TX
        return STREAMS if self.streams else IDLE

    def check_handler(self, params: dict[str, Any], method: str) -> None:
        if self.handler is None:
            raise RpcError(f"{method}: port {self.index} is not owned: acquire it first")
        if params.get("handler") != self.handler:
            raise RpcError(f"{method}: invalid handler for port {self.index} (owned by '{self.owner}')")

    def check_writeable(self, method: str) -> None:
        if self.state == TX:
            raise RpcError(f"{method}: port {self.index} is active: stop the traffic first")

    def acquire(self, user: str, session_id: Any, force: bool) -> str:
        if self.handler is not None and not force and session_id != self.session_id:
            raise RpcError(f"port {self.index} is already owned by '{self.owner}': use force to take it")
        self.owner, self.session_id, self.handler = user, session_id, new_handler()
        return self.handler

    def release(self) -> None:
        self.owner, self.session_id, self.handler = "", None, None

    def attr(self) -> dict[str, Any]:
        return {
            "speed": SPEED_GBPS,
            "link": {"up": True},
            "fc": {"mode": 0},
            "promiscuous": {"enabled": self.promiscuous},
            "multicast": {"enabled": self.multicast},
            "vlan": {"tags": []},
            "rx_filter_mode": "hw",
            "layer_cfg": {"ether": {"src": port_mac(self.index), "dst": "00:00:00:00:00:00",
                                    "state": "configured"},
                          "ipv4": {"state": "none"}},
        }

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "owner": self.owner, "max_stream_id": max(self.streams, default=0),
                "attr": self.attr(), "speed": SPEED_GBPS, "service": False,
                "rx_info": {"queue": {"is_active": False}, "grat_arp": {"is_active": False}},
                # not TRex's: why the port's last trial failed ("" if it did not), for a client that asks
                "last_error": self.last_error}

    def info(self) -> dict[str, Any]:
        """This port's entry of ``get_system_info``."""
        return {"index": self.index, "driver": "net_memif", "description": f"memif {self.vdev.split(',')[0]}",
                "pci_addr": "N/A", "numa": -1, "stack": "legacy", "hw_macaddr": port_mac(self.index),
                "src_macaddr": port_mac(self.index), "dst_macaddr": "00:00:00:00:00:00",
                "is_virtual": True, "is_fc_supported": False, "is_led_supported": False,
                "is_link_supported": False, "speed": SPEED_GBPS, "supp_speeds": [],
                "rx": {"caps": ["latency"], "counters": 127}}
