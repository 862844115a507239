"""`harness testbed …`: provision, preflight, deploy, run and teardown on an inventory's hosts;
`local up/down` makes and removes namespace test hosts on this machine (docs/testbed.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from harness.config import ConfigError

INVENTORY = click.option("-i", "--inventory", "inventory_path", required=True,
                         type=click.Path(dir_okay=False), help="The inventory YAML (docs/testbed.md).")
HOSTS = click.option("--hosts", "only", default=None, metavar="NAME,...",
                     help="Only these hosts of the inventory (default: all).")


def _inventory(path: str):   # type: ignore[no-untyped-def]
    from testbed import inventory
    try:
        return inventory.load(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _select(inv, only: str | None):   # type: ignore[no-untyped-def]
    if not only:
        return list(inv.hosts.values())
    names = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in names if n not in inv.hosts]
    if unknown:
        raise click.BadParameter(f"no host {', '.join(unknown)} in {inv.source} (it has "
                                 f"{', '.join(inv.hosts)})", param_hint="--hosts")
    return [inv.hosts[n] for n in names]


def _tasks_verb(verb: str, inventory_path: str, only: str | None) -> None:
    from testbed import tasks
    from testbed.runner import Context, run_tasks
    inv = _inventory(inventory_path)
    hosts = _select(inv, only)
    click.echo(f"testbed {verb}: {len(hosts)} host(s) of {inv.source}")
    report = run_tasks(Context(inv, {"verb": verb}), getattr(tasks, verb)(), hosts)
    click.echo(report.summary())
    if report.failed:
        sys.exit(1)


@click.group("testbed")
def testbed() -> None:
    """A DPDK testbed over SSH (Fabric): provision, preflight, deploy, run, teardown (docs/testbed.md)."""


@testbed.command()
@INVENTORY
@HOSTS
def provision(inventory_path: str, only: str | None) -> None:
    """Packages, hugepages, the source tree and its build, the host's harness configuration, trex_cfg.yaml.
    Each task checks, applies only what differs, then verifies; a second run says unchanged."""
    _tasks_verb("provision", inventory_path, only)


@testbed.command()
@INVENTORY
@HOSTS
def deploy(inventory_path: str, only: str | None) -> None:
    """Start each role's daemons (redis-server, serpensd, TRex); restart one only when its configuration
    changed."""
    _tasks_verb("deploy", inventory_path, only)


@testbed.command()
@INVENTORY
@HOSTS
def teardown(inventory_path: str, only: str | None) -> None:
    """Stop the daemons and remove the hosts' run files (idempotent)."""
    _tasks_verb("teardown", inventory_path, only)


@testbed.command()
@INVENTORY
@HOSTS
@click.option("--floor", is_flag=True, help="Also measure each host's floor (a busy loop per vCPU).")
def preflight(inventory_path: str, only: str | None, floor: bool) -> None:
    """`harness doctor` on every host, as one table (checks × hosts)."""
    from testbed import preflight as pf
    inv = _inventory(inventory_path)
    hosts = _select(inv, only)
    table, ok = pf.preflight(inv, hosts, floor=floor)
    click.echo(table)
    if not ok:
        sys.exit(1)


@testbed.command("run")
@INVENTORY
@click.argument("experiment")
@click.option("--frame-size", type=int, default=64, show_default=True, help="Frame size incl. FCS, bytes.")
@click.option("--rate-mpps", type=float, default=None,
              help="Skip the NDR/PDR search: one fixed-rate trial at this rate.")
@click.option("--duration", type=float, default=None, help="Length of the fixed-rate trial, s.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Where the fetched results go [default: <results.dir>/testbed].")
@click.pass_context
def run_cmd(ctx: click.Context, inventory_path: str, experiment: str, frame_size: int,
            rate_mpps: float | None, duration: float | None, out: str | None) -> None:
    """Run EXPERIMENT with its roles placed on the inventory's hosts and fetch the results back
    (experiments: `wire`)."""
    from harness import config as cfg
    from harness.config import repo_path
    from testbed import run as tbrun
    inv = _inventory(inventory_path)
    obj = ctx.find_root().obj or {}
    try:
        config = cfg.load(obj.get("files", ()), obj.get("overrides", ()), quick=obj.get("quick", False))
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if experiment not in tbrun.EXPERIMENTS:
        raise click.UsageError(f"unknown testbed experiment {experiment!r}; implemented: "
                               f"{', '.join(sorted(tbrun.EXPERIMENTS))}")
    out_dir = Path(out) if out else repo_path(config["results"]["dir"]) / "testbed"
    try:
        paths = tbrun.EXPERIMENTS[experiment](inv, config, out_dir, frame_size=frame_size,
                                              rate_mpps=rate_mpps, duration=duration, echo=click.echo)
    except tbrun.RunError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("wrote " + ", ".join(str(p) for p in paths))


@testbed.group()
def local() -> None:
    """Namespace test hosts on this machine (198.18.0.0/15, each with its own sshd)."""


@local.command("up")
@click.option("-n", "count", type=int, default=3, show_default=True, help="How many hosts (h1, h2, ...).")
@click.option("--dir", "directory", required=True, type=click.Path(file_okay=False),
              help="Where their keys, sshd files, install roots and inventory.yaml go.")
def local_up(count: int, directory: str) -> None:
    """Make COUNT namespace hosts (h1 generator, h2 gateway, the rest workers; a data link h1-h2)."""
    from testbed.local import hosts
    try:
        made = hosts.create(directory, hosts.default_spec(count))
    except hosts.LocalHostsError as exc:
        raise click.ClickException(str(exc)) from None
    for name, addr in made.addresses.items():
        click.echo(f"{name}  {addr}  namespace {made.namespaces[name]}")
    click.echo(f"inventory: {made.inventory}  (remove with: harness testbed local down --dir {directory})")


@local.command("down")
@click.option("--dir", "directory", default=None, type=click.Path(file_okay=False),
              help="The directory given to `local up`.")
@click.option("--all", "everything", is_flag=True, help="Every namespace host run of this machine.")
def local_down(directory: str | None, everything: bool) -> None:
    """Remove namespace hosts: their processes, namespaces, bridge, links, keys and files."""
    from testbed.local import hosts
    if not directory and not everything:
        raise click.UsageError("give --dir DIR (the one given to `local up`) or --all")
    try:
        if everything:
            removed = hosts.reclaim(everything=True)
            click.echo(f"removed {len(removed)} run(s): {' '.join(removed) or '-'}")
        else:
            found = hosts.destroy(directory)  # type: ignore[arg-type]
            click.echo("removed" if found else f"no namespace hosts made in {directory}: nothing to remove")
    except hosts.LocalHostsError as exc:
        raise click.ClickException(str(exc)) from None
