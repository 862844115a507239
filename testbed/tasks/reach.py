"""Task ``ssh``: the host answers over SSH. First, so that an unreachable host or refused credentials is
reported as that, on one line, before any real task runs. It changes nothing."""

from __future__ import annotations

from testbed.remote import Remote
from testbed.runner import Context, Task


class Reach(Task):
    name = "ssh"

    def check(self, r: Remote, ctx: Context) -> str | None:
        r.out("true", what="ssh")
        return None

    def apply(self, r: Remote, ctx: Context, why: str) -> str | None:   # check never asks for it
        return None
