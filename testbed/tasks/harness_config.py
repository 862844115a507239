"""Task ``harness-config``: the host's harness configuration, ``<install_root>/etc/harness.yaml``.

Derived from the inventory: the run directory under the install root (each namespace host keeps its own
run lock and run files), the cores of the host's roles (the generator's lcore on a generator host, the
platform's on a gateway or worker), and the host's ``harness:`` mapping merged over that. Rewritten only
when the content changed; verified by the host's own harness (``harness config``), so a wrong key in the
inventory's ``harness:`` mapping is reported by the harness that would read it.
"""

from __future__ import annotations

import copy
import shlex
from typing import Any

import yaml

from testbed.inventory import Host
from testbed.remote import HostError, Remote
from testbed.runner import Context, Task
from testbed.tasks.python_env import in_tree, python

PATH = ("etc", "harness.yaml")


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def content(host: Host) -> str:
    conf: dict[str, Any] = {"machine": {"runtime_dir": host.path("run")}}
    cores: dict[str, int] = {}
    if host.cores:
        if host.has("generator"):
            cores["generator"] = host.cores[0]
        if host.has("gateway") or host.has("worker"):
            # beside the generator on one host, the platform gets the next core (never two pollers on one)
            rest = host.cores[1:] if host.has("generator") else host.cores
            if rest:
                cores["platform"] = rest[0]
    if cores:
        conf["cores"] = cores
    conf = _deep_merge(conf, host.harness)
    return ("# written by `harness testbed provision` from the inventory (testbed/tasks/harness_config.py)\n"
            + yaml.safe_dump(conf, sort_keys=True))


class HarnessConfig(Task):
    name = "harness-config"

    def check(self, r: Remote, ctx: Context) -> str | None:
        have = r.read(r.host.path(*PATH))
        return None if have == content(r.host) else f"{r.host.path(*PATH)} differs"

    def apply(self, r: Remote, ctx: Context, why: str) -> str | None:
        r.put_bytes(content(r.host).encode(), r.host.path(*PATH))
        return f"wrote {r.host.path(*PATH)}"

    def verify(self, r: Remote, ctx: Context) -> None:
        super().verify(r, ctx)
        cmd = f"{shlex.quote(python(r.host))} -m harness.cli -c {shlex.quote(r.host.path(*PATH))} config"
        code, out, err = r.run(in_tree(r.host, cmd), check=False, what="harness config")
        if code != 0:
            lines = [ln for ln in (err or out).splitlines() if ln.strip()]
            raise HostError(f"{r.host.name}: {r.host.path(*PATH)} (from the inventory's harness: and cores): "
                            f"{lines[-1] if lines else f'exit {code}'}")
