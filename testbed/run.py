"""`harness testbed run`: an experiment with its roles placed on the inventory's hosts, its results fetched
back.

The experiment's measurement runs here, on the machine that holds the inventory, exactly as on one machine
(:class:`~harness.traffic.measure.Measurer`, MLRsearch, the same CSV row and sidecar); only its components
run elsewhere: :class:`RemoteWire` starts serpens-wire on the gateway host and reads its counters over SSH,
:class:`RemoteGenerator` runs one serpens-gen per trial on the generator host and fetches its report. They
reach each other over the NIC pair the inventory cables between the two hosts (``nics[].peer``), through
DPDK's net_af_packet on each end (own ``--file-prefix`` per host; the generator is ``--in-memory``).

Placement is a roles → hosts mapping (:func:`placement`): an experiment names the roles it needs and gets
one host for each (the first host of the inventory with that role; ``worker`` gets all of them). A
multi-server experiment (figure-15: generator, gateway, workers) plugs in the same way: a function
``(inventory, config, out_dir, **options) -> [paths]`` in :data:`EXPERIMENTS` that takes its placement,
starts its remote components (Platform subclasses like :class:`RemoteWire`) and measures with the generator.
"""

from __future__ import annotations

import json
import shlex
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.config import Config, ConfigError
from harness.native import RunDir
from harness.platforms.base import Platform, PlatformError
from harness.traffic.base import GeneratorError, TrialResult
from harness.traffic.local import LocalGenerator, result_from_report
from testbed.inventory import Host, Inventory, Nic
from testbed.remote import HostError, Remote, fetch_all, ready_script


class RunError(RuntimeError):
    """The run could not be placed, started or completed; one line."""


def placement(inv: Inventory, roles: tuple[str, ...]) -> dict[str, list[Host]]:
    """role → the hosts it runs on (one host, the first listed; every host for ``worker``)."""
    out: dict[str, list[Host]] = {}
    for role in roles:
        hosts = inv.with_role(role)
        if not hosts:
            raise RunError(f"{inv.source}: no host has the role '{role}' this experiment needs")
        out[role] = hosts if role == "worker" else hosts[:1]
    return out


def _tree(host: Host) -> str:
    return host.path("src", "current")


def _eal(lcore: int, nic: Nic, prefix: str | None, index: int = 0) -> str:
    mem = f"--file-prefix {prefix}" if prefix else "--in-memory"
    return (f"-l {lcore} --no-pci --no-telemetry --log-level='*:warning' {mem} "
            f"--vdev net_af_packet{index},iface={nic.iface}")


def _lcore(host: Host, role: str) -> int:
    if not host.cores:
        return 0
    if role == "platform" and host.has("generator") and len(host.cores) > 1:
        return host.cores[1]
    return host.cores[0]


class RemoteWire(Platform):
    """serpens-wire on a remote host, its port a kernel NIC through net_af_packet."""

    name = "wire"
    workload = "forward"

    def __init__(self, config: Config, run_dir: RunDir, remote: Remote, nic: Nic) -> None:
        super().__init__(config, run_dir)
        self.r = remote
        self.host = remote.host
        self.nic = nic
        self.settings = config["platforms"]["wire"]
        self.lcore = _lcore(self.host, "platform")
        self.prefix = f"wire-{self.host.name}-{run_dir.tag}"
        rdir = self.host.path("run")
        self.stats_file = f"{rdir}/wire-stats.json"
        self.pid_file = f"{rdir}/serpens-wire.pid"
        self.log_file = f"{rdir}/serpens-wire.log"
        self.running = False

    def command(self) -> str:
        return (f"{_tree(self.host)}/build/native/wire/serpens-wire "
                f"{_eal(self.lcore, self.nic, self.prefix)} -- --stats {self.stats_file} "
                f"--burst {self.settings['burst']}")

    def start(self) -> None:
        if self.running:
            return
        q = shlex.quote
        timeout = self.settings["ready_timeout_s"]
        script = ready_script("serpens-wire", self.command(), self.pid_file, self.log_file, timeout,
                              before=f"rm -f {q(self.stats_file)} {q(self.pid_file)}")
        try:
            self.r.run(script, timeout=timeout + 15, what="start serpens-wire")
        except HostError as exc:
            self._kill()
            raise PlatformError(str(exc)) from None
        self.running = True

    def stats(self) -> dict[str, Any]:
        if not self.running:
            raise PlatformError("serpens-wire is not running")
        q = shlex.quote
        # the stats file is renamed into place (native/common/report.c): a new inode is a new snapshot
        script = f"""pid=$(cat {q(self.pid_file)}) || exit 3
kill -0 "$pid" 2>/dev/null || {{ echo "serpens-wire is not running" >&2; exit 1; }}
before=$(stat -c %i {q(self.stats_file)} 2>/dev/null || echo none)
kill -USR1 "$pid"
i=0
while [ $i -lt 100 ]; do
  now=$(stat -c %i {q(self.stats_file)} 2>/dev/null || echo none)
  if [ "$now" != none ] && [ "$now" != "$before" ]; then cat {q(self.stats_file)}; exit 0; fi
  sleep 0.05; i=$((i+1))
done
echo "serpens-wire did not answer a stats request within 5 s" >&2; exit 1"""
        try:
            return json.loads(self.r.out(script, what="serpens-wire stats", timeout=30))
        except (HostError, ValueError) as exc:
            raise PlatformError(str(exc)) from None

    def _kill(self) -> None:
        q = shlex.quote
        script = f"""pid=$(cat {q(self.pid_file)} 2>/dev/null) && {{
  kill -TERM "$pid" 2>/dev/null
  i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
  kill -KILL "$pid" 2>/dev/null; }}
rm -f {q(self.pid_file)}
rm -rf /var/run/dpdk/{self.prefix} /dev/hugepages/{self.prefix}map_*
true"""
        self.r.run(script, timeout=30, what="stop serpens-wire", check=False)

    def stop(self) -> dict[str, Any]:
        if not self.running:
            return {}
        self.running = False
        self._kill()
        text = self.r.read(self.stats_file)
        try:
            return json.loads(text) if text else {}
        except ValueError:
            return {}

    def describe(self) -> dict[str, Any]:
        return {"platform": self.name, "host": self.host.name, "address": self.host.address,
                "lcore": self.lcore, "burst": self.settings["burst"],
                "link": f"net_af_packet on {self.nic.iface} ({self.nic.mac})", "command": self.command()}


class RemoteGenerator(LocalGenerator):
    """serpens-gen on a remote host, one process per trial (like :class:`LocalGenerator`), its port a kernel
    NIC through net_af_packet; its streams go there over SFTP, its report comes back the same way."""

    name = "serpens-gen"

    def __init__(self, config: Config, run_dir: RunDir, remote: Remote, nic: Nic) -> None:
        super().__init__(config, [f"net_af_packet0,iface={nic.iface}"], run_dir)
        self.r = remote
        self.host = remote.host
        self.nic = nic
        self.lcore = _lcore(self.host, "generator")
        rdir = self.host.path("run")
        self.remote_streams = f"{rdir}/gen-streams.json"
        self.remote_report = f"{rdir}/gen-report.json"
        self.pid_file = f"{rdir}/serpens-gen.pid"
        self.thread: threading.Thread | None = None
        self.outcome: tuple[int, str] | None = None

    def connect(self) -> None:
        path = f"{_tree(self.host)}/build/native/generator/serpens-gen"
        if not self.r.ok(f"test -x {shlex.quote(path)}", what="test"):
            raise GeneratorError(f"{self.host.name}: {path} is not built (harness testbed provision)")

    def remote_command(self, duration: float, mult: float) -> str:
        s = self.settings
        return (f"{_tree(self.host)}/build/native/generator/serpens-gen {_eal(self.lcore, self.nic, None)} "
                f"-- --streams {self.remote_streams} --duration {duration:g} --mult {mult:g} "
                f"--report {self.remote_report} --settle-ms {s['settle_ms']} --burst {s['burst']} "
                f"{' '.join(self.pacing_args())} --link-timeout-s {s['link_timeout_s']:g}")

    def start(self, duration: float, mult: float = 1.0) -> None:
        if not self.streams:
            raise GeneratorError("no streams added")
        if self.thread is not None:
            raise GeneratorError("traffic already running")
        cmd = self.remote_command(duration, mult)
        try:
            self.r.put_bytes(json.dumps({"streams": self.streams}).encode(), self.remote_streams)
        except HostError as exc:
            raise GeneratorError(str(exc)) from None
        q = shlex.quote
        line = (f"rm -f {q(self.remote_report)}; echo $$ > {q(self.pid_file)}; exec {cmd}")
        limit = duration + self.settings["link_timeout_s"] + 60

        def trial() -> None:
            try:
                code, _, err = self.r.run(line, timeout=limit, check=False, what="serpens-gen")
                self.outcome = (code, err)
            except HostError as exc:
                self.outcome = (-1, str(exc))

        self.outcome = None
        self.thread = threading.Thread(target=trial, name=f"serpens-gen@{self.host.name}", daemon=True)
        self.thread.start()
        self.trials += 1

    def wait_on_traffic(self, timeout: float | None = None) -> None:
        if self.thread is None:
            return
        self.thread.join(timeout)
        if self.thread.is_alive():
            self._kill()
            self.thread.join(30)
            self.thread = None
            raise GeneratorError(f"serpens-gen on {self.host.name} did not finish within {timeout} s")
        self.thread = None
        code, err = self.outcome or (-1, "no outcome")
        if code != 0:
            lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("EAL")]
            raise GeneratorError(f"serpens-gen on {self.host.name} failed (exit {code}): "
                                 f"{lines[-1] if lines else '(no output)'}")
        self.last = self._load_report()

    def _load_report(self) -> TrialResult:
        text = self.r.read(self.remote_report)
        try:
            report = json.loads(text or "")
        except ValueError:
            raise GeneratorError(f"serpens-gen on {self.host.name} wrote no readable report to "
                                 f"{self.remote_report}") from None
        self._version = report.get("version")
        return result_from_report(report, self.tolerance)

    def _kill(self) -> None:
        q = shlex.quote
        self.r.run(f"pid=$(cat {q(self.pid_file)} 2>/dev/null) && kill -TERM $pid 2>/dev/null; true",
                   check=False, what="kill", timeout=30)

    def stop(self) -> None:
        if self.thread is not None:
            self._kill()
            self.thread.join(30)
            self.thread = None


def measure_on_hosts(generator: Any, platform: Platform, config: Config, log: Any, frame_size: int,
                     flows: int, rate_mpps: float | None, echo: Callable[[str], Any],
                     each_trial: Callable[[Any], None] | None = None) -> tuple[dict[str, Any], str]:
    """One point measured with a remote generator and platform, exactly as on one machine (the Measurer:
    MLRsearch and a latency trial, or one fixed-rate trial at ``rate_mpps``), every trial logged and echoed,
    a fault logged before it is raised. ``each_trial(result)`` sees every trial's result. The point's record
    and id."""
    from harness.traffic.measure import Measurer, measure_point

    m = Measurer(generator, frame_size, flows, config["traffic"]["latency_pps"], platform=platform)
    point_id = log.new_point_id()

    def on_trial(phase: str, index: int, load_pps: float, dur: float, result: Any,
                 judgement: dict[str, Any]) -> None:
        if each_trial is not None:
            each_trial(result)
        log.trial(point_id, index, phase, load_pps, dur, result, **judgement)
        echo(f"  {phase} trial {index}: {load_pps / 1e6:.4g} Mpps for {dur:g} s: tx "
             f"{result.tx_packets}, rx {result.rx_packets}")

    try:
        record = measure_point(m, config, load_fraction=1.0 if rate_mpps else None, on_trial=on_trial,
                               rate_pps=rate_mpps * 1e6 if rate_mpps else None)
    except Exception as exc:
        log.fault(point_id, exc)
        raise
    return record, point_id


def run_wire(inv: Inventory, config: Config, out_dir: Path, frame_size: int = 64,
             rate_mpps: float | None = None, duration: float | None = None,
             echo: Callable[[str], Any] = print) -> list[Path]:
    """The limit experiment's wire point across two hosts: serpens-gen on the generator host, serpens-wire
    on the gateway host, over the NIC pair the inventory cables between them."""
    from harness.results import ResultWriter
    from harness.results import run_id as make_run_id
    from harness.traffic.measure import POINT_COLUMNS, point_row
    from harness.trial_log import TrialLogWriter, trials_path

    where = placement(inv, ("generator", "gateway"))
    gen_host, gw_host = where["generator"][0], where["gateway"][0]
    if gen_host.name == gw_host.name:
        raise RunError(f"{inv.source}: the generator and the gateway are one host ({gen_host.name}): the "
                       "wire across hosts needs two")
    links = inv.links(gen_host, gw_host)
    if not links:
        raise RunError(f"{inv.source}: no NIC of {gen_host.name} is cabled to {gw_host.name} (give one NIC "
                       f"a peer: {gw_host.name}:IFACE)")
    gen_nic, gw_nic = links[0]
    if duration is not None:
        config["measurement"]["latency_duration_s"] = duration
    flows = config["traffic"]["flows"]
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"{make_run_id('testbed-wire')}.csv"
    log_path = trials_path(csv_path)
    fetched = out_dir / csv_path.stem
    run_dir = RunDir(config, "testbed-wire")
    echo(f"wire: serpens-gen on {gen_host.name} ({gen_nic.iface}) ⇄ serpens-wire on {gw_host.name} "
         f"({gw_nic.iface}), {frame_size} B frames, {flows} flows")
    try:
        with Remote(gen_host) as rg, Remote(gw_host) as rw:
            platform = RemoteWire(config, run_dir, rw, gw_nic)
            generator = RemoteGenerator(config, run_dir, rg, gen_nic)
            cores = {"generator": f"{gen_host.name} cpu {generator.lcore}",
                     "platform_data_plane": f"{gw_host.name} cpu {platform.lcore}"}
            extra = {"testbed": {"inventory": inv.source, "placement": {"generator": gen_host.name,
                                                                         "gateway": gw_host.name},
                                 "link": [f"{gen_host.name}:{gen_nic.iface}",
                                          f"{gw_host.name}:{gw_nic.iface}"]},
                     "rig": {"platform": platform.describe(), "generator": "serpens-gen (remote)"},
                     "repetitions": 1, "trials_file": log_path.name}
            try:
                with platform, generator, \
                        ResultWriter(csv_path, "testbed-wire", POINT_COLUMNS, config, cores=cores,
                                     extra=extra) as writer, \
                        TrialLogWriter(log_path, writer.run_id) as log:
                    record, point_id = measure_on_hosts(generator, platform, config, log, frame_size, flows,
                                                        rate_mpps, echo)
                    record.update(platform="wire", workload="forward", trial=0, point_id=point_id,
                                  trials_file=log_path.name)
                    log.point(point_id, record)
                    writer.write(point_row(record))
                    final = platform.stop()
            finally:
                # the hosts' own files of the run (the last trial's report and streams, the wire's log and
                # counters) come back beside the CSV
                fetch_all(fetched, ((rg, (generator.remote_report, generator.remote_streams)),
                                    (rw, (platform.stats_file, platform.log_file))))
    except (HostError, PlatformError, GeneratorError, ConfigError, OSError) as exc:
        raise RunError(str(exc).splitlines()[0]) from None
    finally:
        run_dir.remove()
    (fetched / "wire-final-stats.json").write_text(json.dumps(final, indent=1))
    return [csv_path, csv_path.with_suffix(".json"), log_path, fetched]


def _figure_15(*args: Any, **kwargs: Any) -> list[Path]:
    from testbed.run_sfc import run_figure_15  # it builds on this module's generator and placement
    return run_figure_15(*args, **kwargs)


EXPERIMENTS: dict[str, Callable[..., list[Path]]] = {"wire": run_wire, "figure-15": _figure_15}
