"""The `harness` command: configuration, preflight, ad-hoc runs, experiments, the paper-claims check."""

from __future__ import annotations

import contextlib
import copy
import math
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from harness import config as cfg
from harness.config import ConfigError, repo_path


def _load(ctx: click.Context, quick: bool = False) -> cfg.Config:
    obj = ctx.obj
    try:
        return cfg.load(obj["files"], obj["overrides"], quick=quick or obj["quick"])
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--config", "files", multiple=True, type=click.Path(dir_okay=False),
              help="YAML merged over the defaults (repeatable; later files win).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override one setting, e.g. --set search.goals.pdr.loss_ratio=0.005 (repeatable).")
@click.option("--quick", is_flag=True, default=os.environ.get("QUICK") == "1",
              help="Short trials, one repetition (also QUICK=1).")
@click.pass_context
def main(ctx: click.Context, files: tuple[str, ...], overrides: tuple[str, ...], quick: bool) -> None:
    """serpens-harness: reproduce Serpens (TPDS 2023) and compare NF platform designs."""
    pin = bool(ctx.obj and ctx.obj.get("pin"))
    ctx.obj = {"files": files, "overrides": overrides, "quick": quick}
    if pin:
        # Off the DUT's core: when this process wakes (progress, stats, a trial's end) it must preempt the
        # generator, whose stalls are skipped and counted, not the data plane being measured.
        from harness.sysinfo import PinError, pin_self
        try:
            pin_self(_load(ctx))
        except PinError as exc:
            raise click.ClickException(str(exc)) from exc


def entry() -> None:
    """The `harness` command. It pins its own process (``main`` called in-process, e.g. by a test runner,
    leaves the caller's affinity alone: a test suite pinned to the generator's core would compete with it)."""
    main(obj={"pin": True})


@main.command("config")
@click.option("--show", is_flag=True, help="Print the merged, validated configuration.")
@click.pass_context
def config_cmd(ctx: click.Context, show: bool) -> None:
    """Validate the configuration (and print it with --show)."""
    merged = _load(ctx)
    if show:
        click.echo(cfg.dump(merged), nl=False)
    else:
        click.echo(f"configuration OK (defaults: {cfg.DEFAULTS_FILE})")


@main.command()
def designs() -> None:
    """The registered designs (each a --platform name): their four axis values and what their rows say."""
    from harness.platforms import designs as reg
    header = ("design", "startup", "state", "chaining", "scaling", "system", "varies")
    rows = [(n, *e.design.to_json().values(), e.system, e.varies or "(full system)")
            for n, e in reg.REGISTRY.items()]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    for n, e in reg.REGISTRY.items():
        if e.design.scaling_limit:
            click.echo(f"{n}: instances fixed at deployment: {e.design.scaling_limit}")
    click.echo("axis values and their sources: docs/baselines.md")


@main.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Preflight: hugepages, DPDK, built binaries, cores, Redis, TRex, and the machine's own floor (a pinned
    busy loop on each vCPU in turn, doctor.floor_probe_s each). Says what to fix."""
    from harness import doctor as doc
    checks = doc.run_checks(_load(ctx), floor=True)
    click.echo(doc.render(checks))
    if any(c.status == "FAIL" for c in checks):
        sys.exit(1)


def _fmt(v: Any, unit: str = "", digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.{digits}f}{unit}"


@main.command()
@click.option("--platform", "platform_name", default="wire", show_default=True,
              help="Platform under test: wire, or a design of the registry (serpens, fission, snf, sand, "
                   "fission-state, sand-chaining, ...; `harness designs` lists them).")
@click.option("--sfc", default=None,
              help="The SFC, for platforms that run NFs: NF types in order (fw,mon,nat) or an SFC file "
                   "(.yaml, docs/serpens.md).")
@click.option("--load", "load", type=float, default=None,
              help="Fraction of the measured PDR to run the latency trial at [default: "
                   "measurement.latency_load_fraction].")
@click.option("--duration", type=float, default=None, help="Length of the fixed-rate trial, s.")
@click.option("--frame-size", type=int, default=64, show_default=True, help="Frame size incl. FCS, bytes.")
@click.option("--flows", type=int, default=None, help="Distinct 5-tuples [default: traffic.flows].")
@click.option("--flows-workload", type=click.Choice(["fixed", "churn"]), default="fixed", show_default=True,
              help="churn: also open traffic.churn.new_flows_per_s new flows per second "
                   "(docs/methodology.md).")
@click.option("--rate-mpps", type=float, default=None,
              help="Skip the NDR/PDR search; run the fixed-rate trial at this offered rate.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Directory for the CSV + JSON sidecar [default: <results.dir>/runs].")
@click.pass_context
def run(ctx: click.Context, platform_name: str, sfc: str | None, load: float | None, duration: float | None,
        frame_size: int, flows: int | None, flows_workload: str, rate_mpps: float | None,
        out: str | None) -> None:
    """One ad-hoc measurement: MLRsearch (NDR and PDR goals), then throughput and latency at --load × PDR."""
    from harness import platforms, runlock
    from harness.platforms import PlatformError
    from harness.progress import Progress
    from harness.results import ResultWriter
    from harness.rig import rig
    from harness.traffic.measure import POINT_COLUMNS, Measurer, measure_point, point_row
    from harness.trial_log import TrialLogWriter, trials_path

    config = copy.deepcopy(_load(ctx))
    try:
        runs_sfc = platforms.runs_sfc(platform_name)
    except PlatformError as exc:
        raise click.UsageError(str(exc)) from exc
    if sfc is not None and not runs_sfc:
        raise click.UsageError(f"the {platform_name} platform runs no NFs; --sfc needs a platform with NFs "
                               f"({', '.join(platforms.sfc_platforms())})")
    if sfc is None and runs_sfc:
        raise click.UsageError(f"the {platform_name} platform runs an SFC: give --sfc, e.g. --sfc fw,mon,nat")
    _check_run_options(config, load, duration, frame_size, flows, rate_mpps)
    sfc_specs = None
    if sfc is not None:
        from harness.serpens.sfc import from_cli
        try:
            sfc_specs = from_cli(sfc, config)
        except ConfigError as exc:
            raise click.BadParameter(str(exc), param_hint="--sfc") from exc
    if duration is not None:
        config["measurement"]["latency_duration_s"] = duration
    if rate_mpps is None:   # the search's settings, checked before anything starts
        from harness.traffic.search import search_settings
        try:
            search_settings(config)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
    flows = config["traffic"]["flows"] = flows or config["traffic"]["flows"]   # the churn budget counts them
    churn_flows, churn_note = None, None
    if flows_workload == "churn":
        from harness.traffic.churn import ChurnFlows
        try:   # budgeted against the NFs' default arguments (platforms.serpens.nfs)
            churn_flows = ChurnFlows.for_point(config, [t for spec in sfc_specs or [] for t in spec.nf_types])
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc
        churn_note = {"new_flows_per_s": churn_flows.new_flows_per_s,
                      "flows_per_point_limit": churn_flows.limit, "limited_by": churn_flows.limited_by}
    fraction = 1.0 if rate_mpps is not None else load
    out_dir = Path(out) if out else repo_path(config["results"]["dir"]) / "runs"
    progress = Progress(f"run {platform_name}")
    from harness.results import run_id as make_run_id
    csv_path = out_dir / f"{make_run_id(platform_name)}.csv"
    log_path = trials_path(csv_path)
    try:
        with _stop_on_signals(), runlock.hold(config), rig(config, platform_name, sfc=sfc_specs) as r, \
                ResultWriter(csv_path, "run", POINT_COLUMNS, config, cores=r.cores(),
                             extra={"rig": r.describe(), "quick": ctx.obj["quick"], "repetitions": 1,
                                    "trials_file": log_path.name, "churn": churn_note}) as writer, \
                TrialLogWriter(log_path, writer.run_id) as log:
            m = Measurer(r.generator, frame_size, flows, config["traffic"]["latency_pps"],
                         platform=r.platform, churn=churn_flows)
            point_id = log.new_point_id()

            def on_trial(phase: str, index: int, load_pps: float, dur: float, result: Any,
                         judgement: dict[str, Any]) -> None:
                log.trial(point_id, index, phase, load_pps, dur, result, **judgement)
                progress.trial_line("", phase, load_pps, dur, result, judgement)

            try:
                record = measure_point(m, config, load_fraction=fraction, on_trial=on_trial,
                                       rate_pps=rate_mpps * 1e6 if rate_mpps is not None else None)
            except Exception as exc:
                # the point failed: the trial log says why, the CSV gets no row (a fault is not a result)
                log.fault(point_id, exc)
                raise
            record.update(platform=platform_name, **platforms.designs.row_identity(platform_name),
                          workload=r.platform.workload or sfc, trial=0, point_id=point_id,
                          trials_file=log_path.name)
            log.point(point_id, record)
            row = point_row(record)
            writer.write(row)
    except KeyboardInterrupt:
        so_far = f"; the trials so far are in {log_path}" if log_path.exists() else ""
        click.echo(f"\ninterrupted: nothing was measured to the end{so_far}", err=True)
        sys.exit(130)
    except _run_errors() as exc:
        raise click.ClickException(_one_line_cause(exc, csv_path)) from exc
    running = f" running {row['workload']}" if sfc else ""
    churning = f" + {churn_flows.new_flows_per_s:g} new flows/s" if churn_flows is not None else ""
    click.echo(f"platform {platform_name}{running}, {frame_size} B frames, {flows} flows{churning}")
    if row.get("pdr_mpps") is not None:
        click.echo(f"  conditional throughput: NDR {_fmt(row['ndr_mpps'])} Mpps   "
                   f"PDR {_fmt(row['pdr_mpps'])} Mpps ({row['search_trials']} trials, "
                   f"{_fmt(row.get('search_time_s'), ' s', 0)})")
        if row.get("search_note"):
            click.echo(f"  search: {row['search_note']}")
    click.echo(f"  at {row['load_fraction']:.0%} {'of PDR' if rate_mpps is None else 'of the given rate'}: "
               f"offered {_fmt(row.get('offered_mpps'))} Mpps, tx {_fmt(row.get('tx_mpps'))}, "
               f"rx {_fmt(row.get('rx_mpps'))} Mpps, loss {_fmt(row.get('loss_ratio', 0) * 100, '%', 4)}"
               + ("" if row.get("latency_trial_valid", True)
                  else " — invalid: it lost more than the PDR goal or the generator fell short"))
    if row.get("instance_crashes"):
        click.echo(f"  instances crashed {row['instance_crashes']} time(s) and were restarted with their "
                   f"state: {row.get('instance_crash_losses', 0)} packets lost to it (counted by serpensd)")
    lat = "  ".join(f"{name} {_fmt(row.get(f'latency_{key}_us'), '', 1)}" for name, key in
                    (("min", "min"), ("mean", "mean"), ("p50", "p50"), ("p99", "p99"), ("p99.9", "p999"),
                     ("max", "max")))
    click.echo(f"  latency µs: {lat}")
    if row.get("instance_capacity_mpps") is not None:
        click.echo(f"  per packet: gateway {_fmt(row.get('gateway_ns_per_packet'), ' ns', 0)}, instance "
                   f"{_fmt(row.get('instance_ns_per_packet'), ' ns', 0)} → one instance alone "
                   f"{_fmt(row.get('instance_capacity_mpps'))} Mpps; bounded by {row.get('bottleneck', '?')}")
    if row.get("generator_limited"):
        click.echo("  note: the generator could not offer the rate asked for; the number is a floor")
    click.echo(f"wrote {csv_path}, {csv_path.with_suffix('.json')} and {log_path} (every trial)")


def _check_run_options(config: cfg.Config, load: float | None, duration: float | None, frame_size: int,
                       flows: int | None, rate_mpps: float | None) -> None:
    """Every option of `harness run` in its range, before anything starts: one line naming the option."""
    from harness.config import ranges
    if load is not None and not 0 < load <= 2:
        raise click.BadParameter(f"must be a fraction of the PDR in (0, 2], got {load}", param_hint="--load")
    if duration is not None and not ranges.TRIAL_S.holds(duration):
        raise click.BadParameter(f"must be a number of seconds in [{ranges.MIN_TRIAL_S:g}, "
                                 f"{ranges.MAX_TRIAL_S:g}], got {duration}", param_hint="--duration")
    if rate_mpps is not None and not 0 < rate_mpps <= ranges.MAX_RATE_MPPS:
        raise click.BadParameter(f"must be a rate in (0, {ranges.MAX_RATE_MPPS:g}] Mpps, got {rate_mpps}",
                                 param_hint="--rate-mpps")
    if flows is not None and not 1 <= flows <= ranges.MAX_FLOWS:
        raise click.BadParameter(f"must be in 1..{ranges.MAX_FLOWS}, got {flows}", param_hint="--flows")
    try:
        ranges.check_frame_sizes(config, [frame_size], "the frame size")
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--frame-size") from exc


def _run_errors() -> tuple[type[BaseException], ...]:
    """What a run can fail with that is the machine's, the platform's or the input's, not a bug: each one is
    reported as one line (the sidecar and trial log keep the detail)."""
    from harness.native import NativeError
    from harness.platforms import PlatformError
    from harness.runlock import LockHeld
    from harness.traffic.base import GeneratorError
    return (PlatformError, GeneratorError, NativeError, LockHeld, ConfigError, OSError)


def _one_line_cause(exc: BaseException, csv_path: Path | None = None) -> str:
    text = str(exc) if not isinstance(exc, OSError) or not exc.filename else \
        f"cannot use {exc.filename}: {exc.strerror or exc}"
    if csv_path is not None and csv_path.with_suffix(".json").exists():
        text += f"\n(the run's sidecar says the same: {csv_path.with_suffix('.json')})"
    return text


_signalled = False


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM, SIGHUP (and SIGINT) stop a run like Ctrl-C: the context managers stop the platform and the
    generator and remove the run's files. Only the first signal interrupts: a second one (an impatient
    `kill`) must not cut the clean-up short."""
    global _signalled
    if _signalled:
        return
    _signalled = True
    from harness.native import interrupt
    interrupt(signum)   # raises KeyboardInterrupt (after the fork, when a child is being started)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """For the body: SIGTERM, SIGHUP and SIGINT interrupt it once (:func:`_interrupt`). The handlers before
    are restored afterwards (``main`` called in-process, e.g. by a test, leaves its caller's alone)."""
    global _signalled
    sigs = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
    before = {sig: signal.getsignal(sig) for sig in sigs}
    _signalled = False
    for sig in sigs:
        signal.signal(sig, _interrupt)
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


@main.command()
@click.argument("name")
@click.option("--plot-only", is_flag=True, help="Only redraw the figure from the existing CSV.")
@click.pass_context
def experiment(ctx: click.Context, name: str, plot_only: bool) -> None:
    """Run one experiment (make target name, e.g. limit, figure-11) and plot it."""
    from experiments import EXPERIMENTS
    from experiments.base import ExperimentError
    from harness import runlock
    from harness.results import PointsFailed
    if name not in EXPERIMENTS:
        raise click.UsageError(f"unknown experiment {name!r}; implemented: {', '.join(sorted(EXPERIMENTS))}")
    exp = EXPERIMENTS[name](_load(ctx), quick=ctx.obj["quick"])
    if plot_only:
        try:
            click.echo(f"wrote {exp.make_plot()}")
        except ExperimentError as exc:
            raise click.ClickException(str(exc)) from exc
        return
    # SIGTERM (kill, a CI timeout) stops an experiment like Ctrl-C: the platform and generator are stopped
    # by their context managers and the sidecar says "interrupted", instead of dying with them running
    try:
        # the whole experiment holds the lock: no other run slips in between its points
        with _stop_on_signals(), runlock.hold(exp.config):
            csv_path, fig = exp.run()
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: the rows measured so far are in {exp.csv_path}", err=True)
        sys.exit(130)
    except (ConfigError, ExperimentError) as exc:   # a setting only an experiment checks, before any output
        raise click.ClickException(str(exc)) from exc
    except PointsFailed as exc:   # the other points' rows are written and every cause is recorded: one line
        raise click.ClickException(str(exc)) from exc
    except _run_errors() as exc:
        raise click.ClickException(f"{_one_line_cause(exc)}\n(rows measured so far: {exp.csv_path})") from exc
    click.echo(f"wrote {csv_path}, {csv_path.with_suffix('.json')} and {fig}")


@main.command("check-paper")
@click.option("--results", "results_dir", type=click.Path(), default=None,
              help="Results directory: its CSVs and the sidecars beside them [default: results.dir].")
@click.option("--claims", "claims_file", type=click.Path(dir_okay=False), default=None,
              help="Claims file [default: experiments/claims.yaml].")
@click.option("--strict", is_flag=True,
              help="Refuse quick, one-repetition, incomplete or dirty-tree runs: claims on them are INVALID.")
@click.pass_context
def check_paper(ctx: click.Context, results_dir: str | None, claims_file: str | None, strict: bool) -> None:
    """Every quantitative claim of the paper against what we measured. Exits non-zero when a claim FAILs
    or is INVALID (judged on what is not evidence)."""
    from harness import claims
    if results_dir is not None:
        rdir = Path(results_dir)
        if not rdir.is_dir():   # asked for by name: a typo must not read as "nothing measured yet"
            what = "not a directory" if rdir.exists() else "no such directory"
            raise click.ClickException(f"--results {rdir}: {what}")
    else:
        rdir = repo_path(_load(ctx)["results"]["dir"])
    cfile = Path(claims_file) if claims_file else repo_path("experiments/claims.yaml")
    try:
        verdicts = claims.check(rdir, cfile, strict=strict)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"results: {rdir}{' (--strict: marked runs refused)' if strict else ''}; claims: {cfile}\n")
    click.echo(claims.render(verdicts))
    sys.exit(claims.exit_code(verdicts))


# `harness testbed …` (provisioning over SSH) lives with the testbed: testbed/cli.py
from testbed.cli import testbed as _testbed  # noqa: E402

main.add_command(_testbed)


if __name__ == "__main__":
    entry()
