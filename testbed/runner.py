"""Tasks on hosts: check → apply → verify, every host in its own thread, one line per host and task.

A task says whether a host is already as wanted (:meth:`Task.check` returns ``None``) or what is missing; only
then does it change anything (:meth:`Task.apply`), and afterwards it checks again (:meth:`Task.verify`): a
task that applied and still finds the host wrong fails. A second run of the same tasks therefore changes
nothing and reports ``unchanged`` for every host and task.

Hosts run in parallel (one thread each; a host's tasks run in order, since later ones build on earlier
ones). A failing task fails its host — named, with its error on one line — and skips that host's remaining
tasks; the other hosts finish. Nothing here raises for a host's failure: the caller gets a :class:`Report`
and turns ``report.failed`` into the exit status.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TextIO

from testbed.inventory import Host, Inventory
from testbed.remote import HostError, Remote

UNCHANGED, CHANGED, FAILED, SKIPPED = "unchanged", "changed", "failed", "skipped"


class Task:
    """One idempotent step on one host. Subclasses set ``name`` and implement :meth:`check` and
    :meth:`apply`; ``roles`` (empty: every host) limits the hosts it runs on."""

    name = "task"
    roles: tuple[str, ...] = ()

    def applies(self, host: Host) -> bool:
        return not self.roles or any(host.has(r) for r in self.roles)

    def check(self, r: Remote, ctx: Context) -> str | None:
        """``None`` when the host is as wanted; otherwise what differs (shown as the change's reason)."""
        raise NotImplementedError

    def apply(self, r: Remote, ctx: Context, why: str) -> str | None:
        """Make the host as wanted; may return a short note of what was done (else ``why`` is shown)."""
        raise NotImplementedError

    def verify(self, r: Remote, ctx: Context) -> None:
        """After apply: the check must pass now."""
        still = self.check(r, ctx)
        if still is not None:
            raise HostError(f"{r.host.name}: {self.name}: applied, but still {still}")


@dataclass
class Context:
    """What tasks share across hosts: the inventory, the verb's options, data computed once on this
    machine (the source tarball, its hash) and a lock for what must be done once."""

    inventory: Inventory
    options: dict[str, Any] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        with self.lock:
            if key not in self.shared:
                self.shared[key] = make()
            return self.shared[key]


@dataclass
class Outcome:
    host: str
    task: str
    status: str
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == FAILED]

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def summary(self) -> str:
        hosts = sorted({o.host for o in self.outcomes})
        bad = sorted({o.host for o in self.failed})
        return (f"{len(hosts)} host(s), {len(self.outcomes)} task runs: {self.count(CHANGED)} changed, "
                f"{self.count(UNCHANGED)} unchanged, {self.count(FAILED)} failed, {self.count(SKIPPED)} "
                f"skipped in {self.seconds:.1f} s" + (f"; FAILED hosts: {', '.join(bad)}" if bad else ""))


def _error_line(host: Host, exc: BaseException) -> str:
    """One line: a HostError already names the host; anything else is a bug, reported as its type and text
    (the traceback goes to stderr only with SERPENS_TESTBED_DEBUG=1)."""
    if isinstance(exc, HostError):
        return str(exc)
    return f"{host.name}: {type(exc).__name__}: {exc}"


def run_tasks(ctx: Context, tasks: Sequence[Task], hosts: Sequence[Host] | None = None,
              out: TextIO | None = None, max_parallel: int = 16) -> Report:
    """Run ``tasks`` in order on every host (in parallel across hosts); print one line per host and task."""
    out = out or sys.stdout
    hosts = list(hosts if hosts is not None else ctx.inventory.hosts.values())
    report = Report()
    print_lock = threading.Lock()
    width = max((len(h.name) for h in hosts), default=4)
    twidth = max((len(t.name) for t in tasks), default=4)

    def record(o: Outcome, show: bool = True) -> None:
        with print_lock:
            report.outcomes.append(o)
            if show:
                detail = f"  {o.detail}" if o.detail else ""
                out.write(f"{o.host:<{width}}  {o.task:<{twidth}}  {o.status:<9}{detail}\n")
                out.flush()

    def one_host(host: Host) -> None:
        with Remote(host) as r:
            failed = False
            skipped: list[str] = []
            for task in tasks:
                if not task.applies(host):
                    continue
                if failed:   # counted each, printed as one line below
                    record(Outcome(host.name, task.name, SKIPPED, "an earlier task failed"), show=False)
                    skipped.append(task.name)
                    continue
                t0 = time.monotonic()
                try:
                    why = task.check(r, ctx)
                    if why is None:
                        record(Outcome(host.name, task.name, UNCHANGED, seconds=time.monotonic() - t0))
                        continue
                    note = task.apply(r, ctx, why)
                    task.verify(r, ctx)
                    record(Outcome(host.name, task.name, CHANGED, note or why, time.monotonic() - t0))
                except Exception as exc:   # a host's failure is reported, never raised: the others go on
                    if _debug():
                        traceback.print_exc()
                    failed = True
                    record(Outcome(host.name, task.name, FAILED, _error_line(host, exc),
                                   time.monotonic() - t0))
            if skipped:
                with print_lock:
                    out.write(f"{host.name:<{width}}  {'…':<{twidth}}  {SKIPPED:<9}  {', '.join(skipped)}\n")

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, min(max_parallel, len(hosts)))) as pool:
        list(pool.map(one_host, hosts))
    report.seconds = time.monotonic() - t0
    order = {h.name: i for i, h in enumerate(hosts)}
    report.outcomes.sort(key=lambda o: order.get(o.host, 0))
    return report


def _debug() -> bool:
    import os
    return os.environ.get("SERPENS_TESTBED_DEBUG") == "1"


def for_each_host(ctx: Context, fn: Callable[[Remote], Any], hosts: Sequence[Host] | None = None,
                  max_parallel: int = 16) -> dict[str, tuple[Any, str | None]]:
    """``fn`` on every host in parallel: host name → (value, None) or (None, one-line error)."""
    hosts = list(hosts if hosts is not None else ctx.inventory.hosts.values())
    results: dict[str, tuple[Any, str | None]] = {}

    def one(host: Host) -> None:
        with Remote(host) as r:
            try:
                results[host.name] = (fn(r), None)
            except Exception as exc:
                if _debug():
                    traceback.print_exc()
                results[host.name] = (None, _error_line(host, exc))

    with ThreadPoolExecutor(max_workers=max(1, min(max_parallel, len(hosts)))) as pool:
        list(pool.map(one, hosts))
    return results
