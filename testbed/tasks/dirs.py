"""Task ``dirs``: the host's install root and its directories (src, etc, run, results, log)."""

from __future__ import annotations

import shlex

from testbed.remote import Remote
from testbed.runner import Context, Task

SUBDIRS = ("src", "etc", "run", "results", "log")


def _paths(r: Remote) -> list[str]:
    return [r.host.path(d) for d in SUBDIRS]


class Dirs(Task):
    name = "dirs"

    def check(self, r: Remote, ctx: Context) -> str | None:
        test = " && ".join(f"test -d {shlex.quote(p)}" for p in _paths(r))
        return None if r.ok(test, what="test") else f"{r.host.install_root} incomplete"

    def apply(self, r: Remote, ctx: Context, why: str) -> str | None:
        r.run("mkdir -p " + " ".join(shlex.quote(p) for p in _paths(r)), what="mkdir")
        return f"created {r.host.install_root}/{{{','.join(SUBDIRS)}}}"
