"""The TRex-compatible RPC server for the built-in generator: TRex's stateless RPC methods over serpens-gen.

Built from TRex's published RPC specification (trex-core ``doc/trex_rpc_server_spec.asciidoc``, change log
up to 1.9) and, where the specification is silent (the ``publish_now`` barrier, the async message names,
``get_pgid_stats``'s layout, the port attributes the client reads), from what trex-stl-lib 0.3's client reads
(docs/trex.md, "The built-in TRex-compatible server"). It is protocol conformance for that client, not TRex:
the packets come from serpens-gen.

Threads: the RPC loop (one request at a time, the caller's thread), the publisher (``trex-global`` every
0.5 s), one waiter per running trial. ``lock`` guards the ports, streams and counters between them.
"""

from __future__ import annotations

import copy
import logging
import math
import re
import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import zmq

from harness import sysinfo
from harness.config import Config
from harness.traffic.trex_server.ports import Port, new_handler
from harness.traffic.trex_server.rpc import INVALID_PARAMS, Dispatcher, RpcError, need, optional
from harness.traffic.trex_server.stats import PgId, global_snapshot
from harness.traffic.trex_server.trial import (
    UNLIMITED_S,
    Runner,
    StreamCheckError,
    Trial,
    enabled,
    latency_pg_id,
    scale,
)
from harness.traffic.trex_server.wire import Publisher, RpcSocket

log = logging.getLogger(__name__)

VERSION = "serpens-builtin-1.0"
# API classes and versions answered by api_sync: trex-stl-lib 0.3 asks for 'core' 4.1; TRex v3 clients ask
# for 'STL' 5.x (that client is not used here: docs/trex.md)
API_VERSIONS = {"core": (4, 1), "STL": (5, 1)}
PUBLISH_INTERVAL_S = 0.5
STOP_TIMEOUT_S = 30.0

# TRex event ids (trex-stl-lib EventsHandler)
EV_STARTED, EV_STOPPED, EV_JOB_DONE, EV_ACQUIRED, EV_RELEASED, EV_ERROR, EV_ATTR = 0, 1, 4, 5, 6, 7, 8
EV_SERVER_STOPPED = 100

XSTATS = ["rx_good_packets", "tx_good_packets", "rx_good_bytes", "tx_good_bytes", "rx_errors", "tx_errors"]


def _canonical(stream: dict[str, Any]) -> dict[str, Any]:
    """The stream with its rate set to 1: what serpens-gen accepts does not depend on a positive rate, so a
    check holds for every rate (the measurer changes only the rate from trial to trial)."""
    out = copy.deepcopy(stream)
    rate = (out.get("mode") or {}).get("rate") if isinstance(out.get("mode"), dict) else None
    if isinstance(rate, dict):
        value = rate.get("value")
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) \
                and value > 0:
            rate["value"] = 1.0
    return out


class TRexServer:
    def __init__(self, config: Config, vdevs: Sequence[str], work_dir: Path, host: str = "127.0.0.1",
                 rpc_port: int = 4501, pub_port: int = 4500) -> None:
        if not vdevs:
            raise ValueError("the TRex-compatible server needs at least one vdev (one per port)")
        self.config = config
        self.host = host
        self.lock = threading.RLock()
        self.ports = {i: Port(i, v, Runner(config, v, Path(work_dir) / f"port{i}"))
                      for i, v in enumerate(vdevs)}
        self.pgids: dict[int, PgId] = {}
        self.pgid_owner: dict[int, tuple[int, int]] = {}   # pg_id -> (port, stream_id)
        self.ver_ids = 0
        self.api_handles: dict[str, str] = {}
        self.started_at = time.strftime("%b %d %Y @ %H:%M:%S")
        self.context = zmq.Context()
        self.rpc_sock = RpcSocket(self.context, host, rpc_port)
        self.publisher = Publisher(self.context, host, pub_port)
        self.dispatcher = Dispatcher()
        self._register()
        self._stop = threading.Event()
        self.shutdown_requested = False
        self._pub_thread = threading.Thread(target=self._publish_loop, name="trex-publisher", daemon=True)
        self._pub_thread.start()

    @property
    def rpc_port(self) -> int:
        return self.rpc_sock.port

    @property
    def pub_port(self) -> int:
        return self.publisher.port

    # --- lifecycle ------------------------------------------------------------------------------------

    def serve_forever(self) -> None:
        """Answer RPCs in this thread until :meth:`shutdown` (or the ``shutdown`` RPC)."""
        try:
            self.rpc_sock.serve(self.dispatcher.handle_text)
        finally:
            self.close()

    def shutdown(self) -> None:
        self._stop.set()
        self.rpc_sock.stop()

    def close(self) -> None:
        self._stop.set()
        self.rpc_sock.stop()
        for port in self.ports.values():
            trial = port.trial
            if trial is not None:
                trial.stop(STOP_TIMEOUT_S)
        self._pub_thread.join(2.0)
        self.rpc_sock.close()
        self.publisher.close()
        self.context.term()

    def _publish_loop(self) -> None:
        while not self._stop.wait(PUBLISH_INTERVAL_S):
            self.publish_global()

    def publish_global(self, baseline: bool = False) -> None:
        with self.lock:
            data = global_snapshot({i: p.counters for i, p in self.ports.items()})
        self.publisher.publish("trex-global", data, 0, baseline)

    def event(self, kind: int, data: dict[str, Any]) -> None:
        self.publisher.publish("trex-event", data, kind)

    # --- registration ---------------------------------------------------------------------------------

    def _register(self) -> None:
        d = self.dispatcher
        d.register("api_sync", self.api_sync, needs_api_h=False)
        d.register("ping", lambda p: {}, needs_api_h=False)
        for name in ("get_version", "get_system_info", "get_supported_cmds", "get_port_status", "get_owner",
                     "get_port_stats", "get_global_stats", "get_port_xstats_names", "get_port_xstats_values",
                     "get_utilization", "acquire", "release", "get_all_streams", "get_stream_list",
                     "get_stream", "add_stream", "remove_stream", "remove_all_streams", "start_traffic",
                     "stop_traffic", "pause_traffic", "resume_traffic", "update_traffic", "remove_rx_filters",
                     "set_port_attr", "set_rx_feature", "service", "get_active_pgids", "get_pgid_stats",
                     "publish_now"):
            d.register(name, getattr(self, name))
        d.register("shutdown", self.rpc_shutdown)

    # --- common -----------------------------------------------------------------------------------------

    def api_sync(self, p: dict[str, Any]) -> Any:
        vers = need(p, "api_vers", list, "api_sync")
        out = []
        for entry in vers:
            if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
                raise RpcError("api_sync: every api_vers entry needs a 'type'", INVALID_PARAMS)
            kind = entry["type"]
            if kind not in API_VERSIONS:
                raise RpcError(f"api_sync: unknown API class '{kind}' (this server has "
                               f"{', '.join(sorted(API_VERSIONS))})")
            major, minor = API_VERSIONS[kind]
            c_major, c_minor = entry.get("major"), entry.get("minor")
            if c_major != major or not isinstance(c_minor, int) or c_minor > minor:
                newer = "client" if isinstance(c_major, int) and c_major < major else "server"
                raise RpcError(f"RPC version mismatch: a newer {newer} version is required (API type "
                               f"'{kind}': - server: '{major}.{minor}', client: '{c_major}.{c_minor}')")
            handle = self.api_handles.get(kind) or new_handler()
            self.api_handles[kind] = handle
            self.dispatcher.api_handles.add(handle)
            out.append({"type": kind, "api_h": handle})
        return {"api_vers": out}

    def get_version(self, p: dict[str, Any]) -> Any:
        return {"version": VERSION, "build_date": "", "build_time": "", "built_by": "serpens-harness",
                "mode": "STL"}

    def get_system_info(self, p: dict[str, Any]) -> Any:
        with self.lock:
            return {"core_type": sysinfo.cpu_model(), "dp_core_count": 1, "dp_core_count_per_port": 1,
                    "hostname": socket.gethostname(), "uptime": self.started_at,
                    "port_count": len(self.ports), "ports": [port.info() for port in self.ports.values()]}

    def get_supported_cmds(self, p: dict[str, Any]) -> Any:
        return sorted(self.dispatcher.methods)

    def _port(self, p: dict[str, Any], method: str) -> Port:
        index = need(p, "port_id", int, method)
        port = self.ports.get(index)
        if port is None:
            raise RpcError(f"{method}: invalid port id {index} (this server has ports "
                           f"0..{len(self.ports) - 1})",
                           INVALID_PARAMS)
        return port

    def _owned(self, p: dict[str, Any], method: str) -> Port:
        port = self._port(p, method)
        port.check_handler(p, method)
        return port

    def get_port_status(self, p: dict[str, Any]) -> Any:
        with self.lock:
            return self._port(p, "get_port_status").status()

    def get_owner(self, p: dict[str, Any]) -> Any:
        with self.lock:
            return {"owner": self._port(p, "get_owner").owner}

    def get_port_stats(self, p: dict[str, Any]) -> Any:
        with self.lock:
            port = self._port(p, "get_port_stats")
            c = port.counters
            return {"status": {"TX": "transmitting", "IDLE": "idle", "STREAMS": "idle"}[port.state],
                    "tx_bps": c.tx_bps, "rx_bps": c.rx_bps, "tx_pps": c.tx_pps, "rx_pps": c.rx_pps,
                    "total_tx_pkts": c.opackets, "total_rx_pkts": c.ipackets, "total_tx_bytes": c.obytes,
                    "total_rx_bytes": c.ibytes, "tx_rx_error": c.oerrors + c.ierrors}

    def get_global_stats(self, p: dict[str, Any]) -> Any:
        with self.lock:
            cs = [port.counters for port in self.ports.values()]
            active = any(port.trial is not None for port in self.ports.values())
            owned = any(port.handler is not None for port in self.ports.values())
            return {"state": "active" if active else "owned" if owned else "unowned", "cpu_util": 0.0,
                    "tx_bps": sum(c.tx_bps for c in cs), "rx_bps": sum(c.rx_bps for c in cs),
                    "tx_pps": sum(c.tx_pps for c in cs), "rx_pps": sum(c.rx_pps for c in cs),
                    "total_tx_pkts": sum(c.opackets for c in cs),
                    "total_rx_pkts": sum(c.ipackets for c in cs),
                    "total_tx_bytes": sum(c.obytes for c in cs), "total_rx_bytes": sum(c.ibytes for c in cs),
                    "tx_rx_error": sum(c.oerrors + c.ierrors for c in cs)}

    def get_port_xstats_names(self, p: dict[str, Any]) -> Any:
        self._port(p, "get_port_xstats_names")
        return {"xstats_names": XSTATS}

    def get_port_xstats_values(self, p: dict[str, Any]) -> Any:
        with self.lock:
            c = self._port(p, "get_port_xstats_values").counters
            return {"xstats_values": [c.ipackets, c.opackets, c.ibytes, c.obytes, c.ierrors, c.oerrors]}

    def get_utilization(self, p: dict[str, Any]) -> Any:
        return {"cpu": [[0] * 20], "mbuf_stats": {}}

    # --- ownership --------------------------------------------------------------------------------------

    def acquire(self, p: dict[str, Any]) -> Any:
        with self.lock:
            port = self._port(p, "acquire")
            user = need(p, "user", str, "acquire")
            force = optional(p, "force", bool, False, "acquire")
            session_id = p.get("session_id")
            handler = port.acquire(user, session_id, force)
        self.event(EV_ACQUIRED, {"port_id": port.index, "who": user, "session_id": session_id,
                                 "force": force})
        return handler

    def release(self, p: dict[str, Any]) -> Any:
        with self.lock:
            port = self._owned(p, "release")
            who, session_id = port.owner, port.session_id
            port.release()
        self.event(EV_RELEASED, {"port_id": port.index, "who": who, "session_id": session_id})
        return {}

    # --- streams ----------------------------------------------------------------------------------------

    def get_all_streams(self, p: dict[str, Any]) -> Any:
        with self.lock:
            port = self._port(p, "get_all_streams")
            return {"streams": {str(i): s for i, s in sorted(port.streams.items())}}

    def get_stream_list(self, p: dict[str, Any]) -> Any:
        with self.lock:
            return sorted(self._port(p, "get_stream_list").streams)

    def get_stream(self, p: dict[str, Any]) -> Any:
        with self.lock:
            port = self._port(p, "get_stream")
            stream_id = need(p, "stream_id", int, "get_stream")
            if stream_id not in port.streams:
                raise RpcError(f"get_stream: stream {stream_id} does not exist on port {port.index}")
            return {"stream": port.streams[stream_id]}

    def add_stream(self, p: dict[str, Any]) -> Any:
        with self.lock:
            port = self._owned(p, "add_stream")
            port.check_writeable("add_stream")
            stream_id = need(p, "stream_id", int, "add_stream")
            stream = need(p, "stream", dict, "add_stream")
            if stream_id in port.streams:
                raise RpcError(f"add_stream: stream {stream_id} already exists on port {port.index}")
            pg_id = self._pg_id(stream)
            if pg_id is not None and pg_id in self.pgid_owner:
                owner_port, owner_stream = self.pgid_owner[pg_id]
                raise RpcError(f"add_stream: pg_id {pg_id} is already used by stream {owner_stream} on port "
                               f"{owner_port}")
        # serpens-gen's own verdict; outside the lock (a process start) but the RPC loop is single-threaded,
        # so nothing else changes this port's streams meanwhile
        self._check(port, [_canonical(stream)], "add_stream: serpens-gen refuses", {0: stream_id})
        with self.lock:
            port.streams[stream_id] = stream
            if pg_id is not None and enabled(stream):
                self.ver_ids += 1
                self.pgids[pg_id] = PgId(self.ver_ids, list(self.ports))
                self.pgid_owner[pg_id] = (port.index, stream_id)
        return {}

    def _pg_id(self, stream: dict[str, Any]) -> int | None:
        try:
            return latency_pg_id(stream) if enabled(stream) else None
        except (KeyError, TypeError, ValueError):
            return None   # a malformed flow_stats: serpens-gen's check says what is wrong with it

    def _check(self, port: Port, streams: list[dict[str, Any]], what: str, ids: dict[int, int]) -> None:
        try:
            why = port.runner.check(streams)
        except StreamCheckError as exc:
            raise RpcError(f"{what.split(':')[0]}: {exc}") from None
        if why is None:
            return
        m = re.match(r"stream (\d+): (.*)", why)
        if m and int(m.group(1)) in ids:   # serpens-gen counts streams in its file; name TRex's stream id
            why = f"stream {ids[int(m.group(1))]}: {m.group(2)}"
        raise RpcError(f"{what} {why}" if m else f"{what}: {why}")

    def _forget_stream(self, port: Port, stream_id: int) -> None:
        stream = port.streams.pop(stream_id)
        pg_id = self._pg_id(stream)
        if pg_id is not None and self.pgid_owner.get(pg_id) == (port.index, stream_id):
            del self.pgid_owner[pg_id]
            self.pgids.pop(pg_id, None)

    def remove_stream(self, p: dict[str, Any]) -> Any:
        with self.lock:
            port = self._owned(p, "remove_stream")
            port.check_writeable("remove_stream")
            stream_id = need(p, "stream_id", int, "remove_stream")
            if stream_id not in port.streams:
                raise RpcError(f"remove_stream: stream {stream_id} does not exist on port {port.index}")
            self._forget_stream(port, stream_id)
        return {}

    def remove_all_streams(self, p: dict[str, Any]) -> Any:
        with self.lock:
            port = self._owned(p, "remove_all_streams")
            port.check_writeable("remove_all_streams")
            for stream_id in list(port.streams):
                self._forget_stream(port, stream_id)
        return {}

    # --- traffic ----------------------------------------------------------------------------------------

    def start_traffic(self, p: dict[str, Any]) -> Any:
        with self.lock:
            port = self._owned(p, "start_traffic")
            if port.trial is not None:
                raise RpcError(f"start_traffic: port {port.index} is active: stop it first (or start "
                               "with force)")
            busy = [q.index for q in self.ports.values() if q.trial is not None]
            if busy:
                raise RpcError(f"start_traffic: port {busy[0]} is sending: serpens-gen runs one port at a "
                               "time "
                               f"on lcore {self.config['cores']['generator']} (two busy-pollers on one core "
                               "would measure the scheduler)")
            ids = [i for i, s in sorted(port.streams.items()) if enabled(s)]
            if not ids:
                raise RpcError(f"start_traffic: no enabled streams on port {port.index}")
            streams = [port.streams[i] for i in ids]
            duration = optional(p, "duration", (int, float), -1, "start_traffic")
            if not math.isfinite(duration):
                raise RpcError(f"start_traffic: duration must be a number of seconds (-1: until stopped), "
                               f"got {duration!r}", INVALID_PARAMS)
            mul = optional(p, "mul", dict, {"type": "raw", "value": 1.0, "op": "abs"}, "start_traffic")
            scaled, factor = scale(streams, mul)
        # the whole set, as serpens-gen will load it: limits that span streams (their number)
        self._check(port, [_canonical(s) for s in scaled], "start_traffic: serpens-gen refuses",
                    dict(enumerate(ids)))
        seconds = float(duration) if duration > 0 and math.isfinite(duration) else UNLIMITED_S
        with self.lock:
            port.last_error = ""
            port.trial = port.runner.start(scaled, min(seconds, UNLIMITED_S),
                                           lambda trial: self._trial_done(port, trial))
        self.event(EV_STARTED, {"port_id": port.index})
        return {"multiplier": factor, "ts": time.monotonic()}

    def _trial_done(self, port: Port, trial: Trial) -> None:
        with self.lock:
            if trial.report is not None:
                port.counters.add_trial(trial.report)
                self._add_latency(port, trial.report)
            else:
                port.last_error = trial.error or "the trial failed"
            if port.trial is trial:
                port.trial = None
        self.publish_global()   # the trial's counters before the events that end it
        if trial.error:
            self.event(EV_ERROR, {"port_id": port.index, "error": trial.error})
        if not trial.stop_requested:
            self.event(EV_JOB_DONE, {"port_id": port.index})

    def _add_latency(self, port: Port, report: dict[str, Any]) -> None:
        by_pg = {int(s["latency_pg_id"]): s for s in report.get("streams", [])
                 if s.get("latency_pg_id") is not None}
        for key, lat in (report.get("latency") or {}).items():
            pg = self.pgids.get(int(key))
            if pg is not None:
                pg.add_trial(port.index, lat, by_pg.get(int(key)))

    def stop_traffic(self, p: dict[str, Any]) -> Any:
        with self.lock:
            port = self._owned(p, "stop_traffic")
            trial = port.trial
        if trial is not None:
            trial.stop(STOP_TIMEOUT_S)   # returns once the trial's counters are in
            self.event(EV_STOPPED, {"port_id": port.index})
        return {}

    def pause_traffic(self, p: dict[str, Any]) -> Any:
        self._owned(p, "pause_traffic")
        raise RpcError("pause_traffic: serpens-gen cannot pause a trial (stop and start again)")

    def resume_traffic(self, p: dict[str, Any]) -> Any:
        self._owned(p, "resume_traffic")
        raise RpcError("resume_traffic: serpens-gen cannot pause a trial, so there is nothing to resume")

    def update_traffic(self, p: dict[str, Any]) -> Any:
        self._owned(p, "update_traffic")
        raise RpcError("update_traffic: serpens-gen cannot change the rate of a running trial (stop and "
                       "start "
                       "again with the new multiplier)")

    def remove_rx_filters(self, p: dict[str, Any]) -> Any:
        # serpens-gen counts latency packets until its settle time ends, then exits: nothing left to remove
        self._owned(p, "remove_rx_filters")
        return {}

    # --- port attributes --------------------------------------------------------------------------------

    def set_port_attr(self, p: dict[str, Any]) -> Any:
        with self.lock:
            port = self._owned(p, "set_port_attr")
            attr = need(p, "attr", dict, "set_port_attr")
            for key, value in attr.items():
                if not isinstance(value, dict):
                    raise RpcError(f"set_port_attr: attribute '{key}' must be an object", INVALID_PARAMS)
                if key == "promiscuous":
                    port.promiscuous = bool(need(value, "enabled", bool, "set_port_attr.promiscuous"))
                elif key == "multicast":
                    port.multicast = bool(need(value, "enabled", bool, "set_port_attr.multicast"))
                elif key == "link_status":
                    if need(value, "up", bool, "set_port_attr.link_status") is not True:
                        raise RpcError("set_port_attr: a memif link cannot be taken down from here")
                elif key in ("led_status", "flow_ctrl_mode", "rx_filter_mode"):
                    raise RpcError(f"set_port_attr: '{key}' is not supported on a memif port")
                else:
                    raise RpcError(f"set_port_attr: unknown attribute '{key}'", INVALID_PARAMS)
            new_attr = port.attr()
        # serpens-gen's memif port always receives every frame (it sets promiscuous mode itself): the
        # attribute is recorded for the client, it changes nothing on the wire
        self.event(EV_ATTR, {"port_id": port.index, "attr": new_attr})
        return {}

    def set_rx_feature(self, p: dict[str, Any]) -> Any:
        self._owned(p, "set_rx_feature")
        if p.get("type") == "queue" and p.get("enabled") is False:
            return {}
        raise RpcError("set_rx_feature: receive queues (capturing received packets) are not supported")

    def service(self, p: dict[str, Any]) -> Any:
        self._owned(p, "service")
        if p.get("enabled") is False:
            return {}
        raise RpcError("service: service mode (ARP, ping, captures) is not supported")

    # --- statistics -------------------------------------------------------------------------------------

    def get_active_pgids(self, p: dict[str, Any]) -> Any:
        with self.lock:
            return {"ids": {"latency": sorted(self.pgids), "flow_stats": []}}

    def get_pgid_stats(self, p: dict[str, Any]) -> Any:
        wanted = optional(p, "pgids", list, [], "get_pgid_stats")
        with self.lock:
            ids = [i for i in wanted if isinstance(i, int) and i in self.pgids]
            zero = {str(i): 0 for i in self.ports}
            flow: dict[str, Any] = {"g": {"rx_err": dict(zero), "tx_err": dict(zero)}}
            lat: dict[str, Any] = {"global": {"old_flow": 0, "bad_hdr": 0}}
            for i in ids:
                flow[str(i)] = self.pgids[i].flow_json()
                lat[str(i)] = self.pgids[i].latency_json()
            return {"ver_id": {str(i): self.pgids[i].ver_id for i in ids}, "flow_stats": flow, "latency": lat}

    def publish_now(self, p: dict[str, Any]) -> Any:
        key = p.get("key")
        baseline = bool(p.get("baseline", False))
        self.publish_global(baseline)   # fresh counters first, then the barrier the client waits for
        self.publisher.publish("trex-barrier", {}, key)
        return {}

    def rpc_shutdown(self, p: dict[str, Any]) -> Any:
        user = optional(p, "user", str, "", "shutdown")
        force = optional(p, "force", bool, False, "shutdown")
        with self.lock:
            others = [port.index for port in self.ports.values() if port.owner and port.owner != user]
        if others and not force:
            raise RpcError(f"shutdown: ports {others} are owned by other users: use force")
        self.event(EV_SERVER_STOPPED, {"cause": f"shutdown requested by '{user}'"})
        self.shutdown_requested = True
        self.shutdown()
        return {}

