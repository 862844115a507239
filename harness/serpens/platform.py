"""The design platform: serpensd (native/serpens) running one design of the registry
(harness/platforms/designs.py), with SFCs deployed through its control socket.

Every registered design — the full systems ``serpens``, ``fission``, ``snf``, ``sand`` and the single-axis
variants such as ``fission-state`` or ``sand-chaining`` — is this one class given a different
:class:`~harness.platforms.designs.Design`: the same serpensd, runtime, router, cores, batch size, NF
binaries and generator, with the design turned into serpensd options, one per axis (``--startup``,
``--state-backend``, ``--chaining``; harness/serpens/design_options.py). No configuration setting chooses an
axis: ``platforms.serpens.*`` are sizes and timings that every design shares.

Like the wire, serpensd is a DPDK primary on ``cores.platform`` that is the memif server of the generator's
link, prints ``READY`` when its port, state region and control socket are up, and leaves its stderr in a log
file in the run directory. Then the platform connects a :class:`~harness.serpens.controller.Controller`,
deploys every NF of the SFC spec(s) it was given (``deploy_nf``: the NF object is loaded into the State
Manager and its init creates the tables), declares each SFC (``deploy_sfc``) and starts
``platforms.serpens.instances`` instances of each (``start_instance``). A design whose state is remote or snf
gets a redis-server of the run's own (harness/redis_server.py), started before serpensd and always stopped
after it.

Scaling: serpensd runs the design's scaling protocol (``--scaling``; docs/baselines.md, "Scaling protocols"):
a new instance gets its share of the flows through it, a stopping one gives its flows back. A design whose
scaling cannot run (:attr:`Design.scaling_limit`, e.g. the full SNF system: its protocol moves router buckets,
its chaining is per NF) runs with the instances started at deployment; any later request to start or stop an
instance raises a :class:`PlatformError` that says why.

serpensd and every runtime process it starts run in a process group of their own; ``stop()`` asks serpensd to
shut down, terminates it if it will not, kills what is left of that group, and removes the run's DPDK files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from typing import Any

from harness import tsc
from harness.config import REPO_ROOT, RETIRED_KEYS, Config
from harness.native import (
    NativeError,
    RunDir,
    binary,
    cleanup_prefix,
    eal_args,
    ended,
    start_daemon,
    tail,
    terminate,
)
from harness.platforms import designs
from harness.platforms.base import Platform, PlatformError
from harness.platforms.designs import Design
from harness.redis_server import RedisServer
from harness.serpens.controller import Controller, SerpensError
from harness.serpens.design_options import design_options, usage_options
from harness.serpens.sfc import DEFAULT_TENANT, SfcSpec, as_specs, effective_args, nf_path


class DesignPlatform(Platform):
    workload = ""
    runs_sfc = True  # takes sfc=...: a platform an SFC experiment (Fig. 15) can run

    def __init__(self, config: Config, run_dir: RunDir, design: str | Design = "serpens",
                 sfc: SfcSpec | Sequence[SfcSpec] | str | None = None) -> None:
        super().__init__(config, run_dir)
        if isinstance(design, Design):
            self.design = design
            self.name = designs.find(design) or "custom"
        else:
            self.design = designs.entry(design).design
            self.name = design
        self.settings = config["platforms"]["serpens"]
        _refuse_axis_settings(self.settings, self.name)
        self.lcore = config["cores"]["platform"]
        self.sfcs: list[SfcSpec] = as_specs(sfc, config) if sfc is not None else []
        self.workload = ";".join(s.workload for s in self.sfcs)
        self.prefix = f"serpens-{run_dir.tag}"
        self.control_socket = run_dir / "serpensd.sock"
        self.log_file = run_dir / "serpensd.log"   # stderr (and stdout after READY): never an unread pipe
        self.proc: subprocess.Popen[bytes] | None = None
        self.controller: Controller | None = None
        self.deployed_nfs: dict[str, dict[str, Any]] = {}   # deployment name -> path, args, tables
        self.sfc_ids: dict[str, int] = {}
        self.instances: dict[int, dict[str, Any]] = {}       # slot -> start_instance reply + sfc
        self.startup_us: list[float] = []
        self.implied_axes: dict[str, str] = {}               # axes serpensd could not be told (command())
        self.deployed = False                                # scaling requests are only those after deploy
        self.command_line: list[str] = []                    # serpensd's, as started (the sidecar's record)
        self.redis: RedisServer | None = None   # the run's redis-server (state remote or snf)
        self.gproxy: dict[str, Any] | None = None  # global-proxy chaining: its proxy (pid, core, link)

    @property
    def backend(self) -> str:
        """serpensd's name of the design's state backend (serpens, fission, snf)."""
        return designs.AXES["state"][self.design.state].serpensd

    # --- the process ------------------------------------------------------------------------------------

    def command(self) -> list[str]:
        """serpensd's command line: EAL arguments, then serpensd's own (native/serpens/serpensd.c), the
        design's axes among them."""
        s = self.settings
        serpensd = binary(s["serpensd"])
        options = usage_options(serpensd)
        axes, self.implied_axes = design_options(self.design, options, s["pool"])
        cmd = [str(serpensd),
               *eal_args(self.lcore, self.prefix, [self.link.server_vdev()]),
               "--",
               "--control", str(self.control_socket),
               "--runtime", str(binary(s["runtime"])),
               "--nf-dir", str(self.run_dir / "nfs"),   # serpensd's copy of each deployed NF object
               "--state-mb", str(s["state_region_mb"]),
               "--wake-batch", str(s["wake_batch"]),
               "--batch", str(s["batch"]),
               "--flush-us", str(s["flush_us"]),
               "--rx-gap-ns", str(s["rx_gap_ns"]),
               "--keep-warm-s", str(s["keep_warm_s"]),
               *axes]
        kernel = tsc.kernel_tsc()
        if kernel is not None and "--tsc-hz" in options:
            # stage costs and busy times in ns from the kernel's TSC calibration, not DPDK's rounded estimate
            cmd += ["--tsc-hz", str(kernel.hz)]
        if s["colocate"]:
            cmd.append("--colocate")
        if s["start_placement"] != "instance":
            cmd += ["--start-placement", str(s["start_placement"])]
        if s["max_instances"] != 16 or s["instances"] > 16:
            # more instance slots (each a value in every global|write key; docs/startup.md)
            cmd += ["--max-instances", str(max(int(s["max_instances"]), int(s["instances"])))]
        if s["pin_flows"]:
            if self.design.chaining != "consolidated":
                raise PlatformError(f"platforms.serpens.pin_flows pins flows in the router, which needs "
                                    f"consolidated chaining; design {self.name} has {self.design.chaining}")
            cmd.append("--pin-flows")
        if self.design.chaining == "global-proxy" and "--chaining" in axes:
            # the proxy's binary and hold budget are the mechanism's parameters (serpensd starts the proxy)
            cmd += ["--gproxy", str(binary(s["gproxy"])), "--gproxy-hold", str(s["gproxy_hold"])]
        if self.design.needs_redis:
            address = self.redis.address if self.redis is not None else "127.0.0.1:0"
            cmd += ["--redis", address, "--redis-timeout-ms", str(self.config["redis"]["timeout_ms"])]
        return cmd

    def start(self) -> None:
        if self.proc is not None:
            return
        if self.design.needs_redis:   # the remote store first: serpensd refuses to start without it
            # remote state: a Redis user per tenant (docs/security.md); CHC's store is not per tenant yet
            self.redis = RedisServer(self.config, self.run_dir, acl=self.design.uses_remote_store)
            self.redis.start()
        try:
            cmd = self.command_line = self.command()
        except (NativeError, PlatformError) as exc:
            self._stop_redis()
            raise PlatformError(str(exc)) from exc
        try:
            # cwd: relative paths in NF arguments (e.g. IDS patterns) are relative to the repository root.
            # A session of its own: serpensd's runtime processes can be found and ended with it.
            env = None
            if self.redis is not None and self.redis.admin is not None:
                # serpensd's Redis admin credential: in its environment, which it wipes (serpensd.c)
                env = {**os.environ, "SERPENS_REDIS_ADMIN": self.redis.admin}
            self.proc = start_daemon(cmd, self.log_file, self.settings["ready_timeout_s"], "serpensd",
                                     cwd=REPO_ROOT, new_session=True, env=env)
            self.controller = Controller(str(self.control_socket),
                                         connect_timeout_s=self.settings["ready_timeout_s"]).connect()
            for spec in self.sfcs:
                self.deploy(spec)
            self.deployed = True
            if self.design.chaining == "global-proxy":
                self.stats()   # notes where the proxy runs, for the sidecar (describe)
        except (NativeError, PlatformError) as exc:
            log = tail(self.log_file)
            try:
                self.stop()
            except PlatformError:
                pass
            # serpensd that ended before READY was said by start_daemon, with rte_exit's cause; after a
            # refusal its log's last lines are the only copy (the run directory goes with the run)
            msg = str(exc) if isinstance(exc, NativeError) else f"{exc}\nserpensd log:\n{log}"
            if isinstance(exc, SerpensError):  # serpensd refused: keep the type, callers may tell it apart
                raise SerpensError(msg, exc.request) from exc
            raise PlatformError(msg) from exc

    def _running(self) -> Controller:
        if self.proc is None or self.proc.poll() is not None or self.controller is None:
            code = None if self.proc is None else self.proc.poll()
            why = ""
            if code is not None:
                log = tail(self.log_file)
                why = f": it {ended(code)}" + (f"; its log:\n{log}" if log.strip() else "")
            raise PlatformError("serpensd is not running" + why)
        return self.controller

    # --- deployment -------------------------------------------------------------------------------------

    def deploy(self, spec: SfcSpec) -> int:
        """Deploy the spec's NFs (once per deployment name), the SFC, and its initial instances."""
        ctl = self._running()
        for dname, (nf_type, args) in spec.nfs.items():
            path = nf_path(nf_type, self.settings["nfs_dir"])
            full_args = effective_args(nf_type, args, self.config)
            known = self.deployed_nfs.get(dname)
            if known is not None:
                if known["tenant"] != spec.tenant:
                    raise PlatformError(f"SFC {spec.name!r} of tenant {spec.tenant!r}: NF {dname!r} is "
                                        f"deployed for tenant {known['tenant']!r}; an NF serves one tenant "
                                        "(give it another deployment name)")
                if (known["path"], known["args"]) != (str(path), full_args):
                    raise PlatformError(f"SFC {spec.name!r}: NF {dname!r} is already deployed as "
                                        f"{known['path']} with {known['args']}, not {path} with {full_args}")
                continue
            if not path.is_file():
                raise PlatformError(f"SFC {spec.name!r}: NF {dname!r} of type {nf_type!r}: {path} does not "
                                    f"exist (run `make build`; NF types are the .so files in "
                                    f"{self.settings['nfs_dir']})")
            try:
                tables = ctl.deploy_nf(dname, str(path), full_args, tenant=_tenant_field(spec))
            except SerpensError as exc:
                raise SerpensError(f"deploying NF {dname!r} ({path}) for SFC {spec.name!r}: {exc}",
                                   exc.request) from exc
            self.deployed_nfs[dname] = {"type": nf_type, "path": str(path), "args": full_args,
                                        "tables": tables, "tenant": spec.tenant}
        try:
            sfc_id = ctl.deploy_sfc(spec.name, spec.match, spec.graph, tenant=_tenant_field(spec))
        except SerpensError as exc:
            raise SerpensError(f"deploying SFC {spec.name!r} {spec.graph}: {exc}", exc.request) from exc
        self.sfc_ids[spec.name] = sfc_id
        for _ in range(self.settings["instances"]):
            self._start_instance(spec.name)
        return sfc_id

    def _check_scaling(self, request: str) -> None:
        """After deployment, starting or stopping an instance is scaling: only a design whose scaling value is
        implemented may do it."""
        limit = self.design.scaling_limit
        if self.deployed and limit:
            raise PlatformError(f"{self.name}: cannot {request}: {limit} (this design runs with the "
                                "instances started at deployment; docs/baselines.md)")

    def start_instance(self, sfc: str, pin: bool = False, at_ns: int | None = None) -> dict[str, Any]:
        """Start one more instance of an SFC (scaling out); its reply (instance slot, pid, startup_us) is
        remembered. With a per-NF chaining it is an instance set, one instance per NF, each slot remembered
        (``instances``)."""
        self._check_scaling(f"start an instance of SFC {sfc!r}")
        return self._start_instance(sfc, pin, at_ns)

    def _start_instance(self, sfc: str, pin: bool = False, at_ns: int | None = None) -> dict[str, Any]:
        try:
            reply = self._running().start_instance(sfc, pin=pin, at_ns=at_ns)
        except SerpensError as exc:
            raise SerpensError(f"starting an instance of SFC {sfc!r}: {exc}", exc.request) from exc
        # with a per-NF chaining (local or global proxy) one start is an instance set, one slot per NF
        for slot in reply.get("instances", [reply["instance"]]):
            self.instances[int(slot)] = {"sfc": sfc, **reply}
        if "startup_us" in reply:
            self.startup_us.append(float(reply["startup_us"]))
        return reply

    def start_instances(self, sfc: str, n: int, pooled: bool = False,
                        timeout_s: float = 60.0) -> dict[str, Any]:
        """Start ``n`` instances of an SFC together (serpensd's ``start_instances``); every slot is
        remembered, as for :meth:`start_instance`."""
        self._check_scaling(f"start {n} instances of SFC {sfc!r}")
        try:
            reply = self._running().start_instances(sfc, n, pooled=pooled, timeout_s=timeout_s)
        except SerpensError as exc:
            raise SerpensError(f"starting {n} instances of SFC {sfc!r}: {exc}", exc.request) from exc
        for one in reply["instances"]:
            self.instances[int(one["instance"])] = {"sfc": sfc, **one}
            self.startup_us.append(float(one["startup_us"]))
        return reply

    def stop_instance(self, slot: int) -> int:
        """Stop an instance (drain, merge its state back); returns how many packets it drained."""
        return int(self.scale_in(slot).get("drained", 0))

    def scale_in(self, slot: int, at_ns: int | None = None) -> dict[str, Any]:
        """Stop an instance after its flows moved to the SFC's other instances (serpensd's scaling protocol):
        ``{"drained": n, "moves": [record, ...]}``; ``at_ns``: serpensd acts at that monotonic time."""
        self._check_scaling(f"stop instance {slot}")
        reply = self._running().scale_in(slot, at_ns=at_ns)
        self.instances.pop(int(slot), None)
        return reply

    def move_flows(self, sfc: str, from_slot: int, to_slot: int, **which: Any) -> dict[str, Any]:
        """Move flows between two instances of ``sfc`` (harness.serpens.controller.Controller.move_flows)."""
        self._check_scaling(f"move flows of SFC {sfc!r}")
        return self._running().move_flows(sfc, from_slot, to_slot, **which)

    # --- the Platform interface ------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """serpensd's ``stats`` reply (docs/serpens-control.md), ``stages`` included: gateway, instances and,
        with state remote or snf, remote state (docs/stages.md)."""
        stats = self._running().stats()
        if self.design.uses_remote_store:
            self._check_remote_state(stats)
        proxy = stats.get("delivery", {}).get("proxy", {}) if self.design.chaining == "global-proxy" else {}
        if proxy:   # a restarted proxy has a new pid: the sidecar gets the last one seen
            self.gproxy = {k: proxy.get(k) for k in ("pid", "lcore", "polls", "link", "directory",
                                                      "hold_capacity", "restarts")}
        return stats

    def _check_remote_state(self, stats: dict[str, Any]) -> None:
        """A runtime that lost its remote store stops at once (native/serpens/runtime.c); say so clearly
        rather than report the packets that then find no instance as ordinary loss."""
        crashed = [s for s in stats.get("sfcs", []) if s.get("crashes")]
        redis_down = self.redis is not None and not self.redis.alive()
        if not crashed and not redis_down:
            return
        lines = [ln for ln in tail(self.log_file, 20000).splitlines() if "remote state" in ln]
        where = f"Redis at {self.redis.address}" if self.redis is not None else "Redis"
        state = self.redis.down_reason() if redis_down and self.redis is not None else "failed"
        stopped = "; ".join(f"SFC {s['name']}: {s['crashes']} crash(es), last: {s.get('last_crash', '')}"
                            for s in crashed)
        raise PlatformError(
            f"{self.name}: the remote state store ({where}) {state}"
            + (f"; instances stopped: {stopped}" if stopped else "")
            + ("\n" + "\n".join(lines[-5:]) if lines else ""))

    def _stop_redis(self) -> None:
        if self.redis is not None:
            redis, self.redis = self.redis, None
            redis.stop()

    def stop(self) -> dict[str, Any]:
        try:
            return self._stop_serpensd()
        finally:
            self._stop_redis()

    def _stop_serpensd(self) -> dict[str, Any]:
        if self.proc is None:
            # never started, or it failed in its EAL init: an rte_exit there leaves its hugepage file
            cleanup_prefix(self.prefix, self.config["machine"]["hugepage_mount"])
            return {}
        proc, self.proc = self.proc, None
        final: dict[str, Any] = {}
        if self.controller is not None:
            ctl, self.controller = self.controller, None
            if proc.poll() is None:
                try:
                    final = ctl.stats()
                    ctl.shutdown(timeout_s=10.0)
                    proc.wait(timeout=10.0)  # it stops its instances and exits by itself
                except (PlatformError, subprocess.TimeoutExpired):
                    pass
            ctl.close()
        code = terminate(proc)
        leftovers = self._end_process_group(proc.pid)
        cleanup_prefix(self.prefix, self.config["machine"]["hugepage_mount"])
        if code != 0:
            raise PlatformError(f"serpensd {ended(code)}: {tail(self.log_file)}")
        if leftovers:
            raise PlatformError(f"serpensd exited but left {leftovers} process(es) of its pool running; "
                                f"they were killed. serpensd log:\n{tail(self.log_file)}")
        return final

    @staticmethod
    def _end_process_group(pgid: int, grace_s: float = 2.0) -> int:
        """Wait for serpensd's process group (its runtime processes) to go; SIGKILL what stays. Returns how
        many processes had to be killed."""
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            if not _group_members(pgid):
                return 0
            time.sleep(0.02)
        members = _group_members(pgid)
        if members:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                return 0
        return len(members)


    def describe(self) -> dict[str, Any]:
        s = self.settings
        return {"platform": self.name, **designs.row_identity(self.name),
                "design_axes": self.design.to_json(),
                "axes_implied": self.implied_axes,
                "scaling": (f"{self.design.scaling}: implemented" if self.design.scaling_implemented
                            else f"{self.design.scaling}: {self.design.scaling_limit}; the instances are "
                                 "those started at deployment, scaling requests are refused"),
                "serpensd": s["serpensd"], "runtime": s["runtime"],
                "lcore": self.lcore, "colocate": s["colocate"], "pool": s["pool"],
                "start_placement": s["start_placement"],
                "serpensd_command": self.command_line,
                "instances_run_on": (f"lcore {self.lcore}, sharing it with serpensd" if s["colocate"]
                                     else "their own cores (serpensd decides)"),
                "state_region_mb": s["state_region_mb"], "wake_batch": s["wake_batch"], "batch": s["batch"],
                "flush_us": s["flush_us"], "rx_gap_ns": s["rx_gap_ns"], "keep_warm_s": s["keep_warm_s"],
                "instances_per_sfc": s["instances"], "sfcs": [x.to_json() for x in self.sfcs],
                "state_backend": self.backend,
                "gproxy": self._describe_gproxy(),
                "redis": self.redis.describe() if self.redis is not None else None,
                "deployed_nfs": self.deployed_nfs, "instance_startup_us": self.startup_us,
                "link": "net_memif (copy mode), serpensd is the server"}

    def _describe_gproxy(self) -> dict[str, Any] | None:
        """global-proxy: the proxy serpensd started (binary, pid, lcore, link) and how it shares its core."""
        if self.design.chaining != "global-proxy":
            return None
        facts = dict(self.gproxy or {})
        how = ("busy-polling a core of its own" if facts.get("polls")
               else "sleeping between hand-offs from serpensd")
        return {"binary": self.settings["gproxy"], **facts,
                "runs_on": f"lcore {facts.get('lcore', '?')}, {how}"}


def _tenant_field(spec: SfcSpec) -> str | None:
    """The request's tenant: left out for the default one, so single-tenant requests stay as they were."""
    return None if spec.tenant == DEFAULT_TENANT else spec.tenant


def _refuse_axis_settings(settings: dict[str, Any], name: str) -> None:
    """A setting that chooses an axis would make one design name mean two designs; the configuration loader
    refuses such keys in files and --set, and this catches one put into a config dict directly (a test)."""
    stale = sorted(k for k in settings if f"platforms.serpens.{k}" in RETIRED_KEYS)
    if stale:
        raise PlatformError(f"platforms.serpens.{stale[0]} is set, but the design {name!r} decides every "
                            f"axis: {RETIRED_KEYS['platforms.serpens.' + stale[0]]}")


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    out = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(entry.name))
    return out
