"""Task ``python``: a Python on the host that runs the shipped harness (``harness doctor``, experiments).

With ``python:`` in the inventory that interpreter is only checked: it must import the shipped tree's
harness and its requirements. Without it, provision makes ``<install_root>/venv`` and installs the shipped
tree's requirements there (pip on the host, from the host's package index); it is redone only when the
check fails, e.g. after pyproject.toml gained a dependency.
"""

from __future__ import annotations

import shlex

from testbed.inventory import Host
from testbed.remote import HostError, Remote
from testbed.runner import Context, Task

# what the commands the testbed runs on a host import (the doctor, the CLI and the experiments)
PROBE = "import harness.cli, harness.doctor, experiments, yaml, click, numpy, pandas"


def python(host: Host) -> str:
    return host.python or host.path("venv", "bin", "python")


def in_tree(host: Host, cmd: str) -> str:
    """``cmd`` run in the host's current tree (cwd first on sys.path: the shipped harness is the one used)."""
    return f"cd {shlex.quote(host.path('src', 'current'))} && {cmd}"


def probe(r: Remote) -> str | None:
    code, out, err = r.run(in_tree(r.host, f"{shlex.quote(python(r.host))} -c {shlex.quote(PROBE)}"),
                           check=False, what="python")
    if code == 0:
        return None
    lines = [ln for ln in (err or out).strip().splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit {code}"


class PythonEnv(Task):
    name = "python"

    def check(self, r: Remote, ctx: Context) -> str | None:
        why = probe(r)
        return None if why is None else f"{python(r.host)}: {why}"

    def apply(self, r: Remote, ctx: Context, why: str) -> str | None:
        if r.host.python is not None:
            raise HostError(f"{r.host.name}: python {why}; give the inventory's python: an interpreter with "
                            "the harness's requirements (pyproject.toml), or leave it out and provision "
                            "makes a venv")
        venv = shlex.quote(r.host.path("venv"))
        tree = shlex.quote(r.host.path("src", "current"))
        r.run(f"test -x {venv}/bin/python || python3 -m venv {venv}", what="python3 -m venv")
        r.run(f"{venv}/bin/pip install -q {tree}", timeout=r.host.build_timeout_s, what="pip install")
        return f"made {r.host.path('venv')}"
