"""Teardown: stop every daemon deploy may have started and remove the host's run files (run directory,
DPDK runtime entries and hugepage files of the host's prefixes). Idempotent: a second teardown finds nothing
and says unchanged. The shipped tree, the build cache and the host's configuration stay (the next provision
is fast)."""

from __future__ import annotations

import shlex

from testbed.remote import Remote
from testbed.runner import Context, Task
from testbed.tasks.daemons import stop

NAMES = ("redis-server", "serpensd", "trex", "serpens-wire")


def _leftovers(r: Remote) -> str:
    run = shlex.quote(r.host.path("run"))
    name = r.host.name
    return r.out(f"ls -A {run} 2>/dev/null; ls -d /var/run/dpdk/*-{name} /var/run/dpdk/*-{name}-* "
                 f"/dev/hugepages/*-{name}map_* /dev/hugepages/*-{name}-*map_* 2>/dev/null; true",
                 what="ls")


class Teardown(Task):
    name = "teardown"

    def check(self, r: Remote, ctx: Context) -> str | None:
        left = _leftovers(r).split()
        return f"{len(left)} run file(s) or daemon(s)" if left else None

    def apply(self, r: Remote, ctx: Context, why: str) -> str | None:
        stopped = [n for n in NAMES if stop(r, n)]
        name = r.host.name
        r.run(f"rm -rf {shlex.quote(r.host.path('run'))}/* {shlex.quote(r.host.path('run'))}/.[!.]* "
              f"/var/run/dpdk/*-{name} /var/run/dpdk/*-{name}-* /dev/hugepages/*-{name}map_* "
              f"/dev/hugepages/*-{name}-*map_*", what="rm")
        return f"stopped {', '.join(stopped)}" if stopped else f"removed {why}"
