"""Preflight: `harness doctor` on every host (its checks, through the host's own shipped harness and its
harness.yaml), gathered into one table: one row per check, one column per host. A host that cannot be
reached or has no harness yet gets its error line under the table instead of a column of blanks."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence

from testbed.inventory import Host, Inventory
from testbed.remote import HostError, Remote
from testbed.runner import Context, for_each_host
from testbed.tasks.harness_config import PATH as HARNESS_YAML
from testbed.tasks.python_env import in_tree, python

# the doctor's checks as JSON (the same function `harness doctor` prints; a table needs the fields)
_PROBE = ("import json, sys; from harness import config, doctor; c = config.load(sys.argv[1:]); "
          "print(json.dumps([[k.name, k.status, k.detail, k.fix] for k in "
          "doctor.run_checks(c, floor={floor})]))")


def doctor(r: Remote, floor: bool) -> list[list[str]]:
    conf = r.host.path(*HARNESS_YAML)
    code = _PROBE.format(floor=bool(floor))
    cmd = in_tree(r.host, f"{shlex.quote(python(r.host))} -c {shlex.quote(code)} {shlex.quote(conf)}")
    out = r.out(cmd, what="harness doctor", timeout=r.host.command_timeout_s)
    try:
        return json.loads(out.splitlines()[-1])
    except (ValueError, IndexError):
        raise HostError(f"{r.host.name}: harness doctor printed no result (provision the host first)") \
            from None


def preflight(inv: Inventory, hosts: Sequence[Host], floor: bool = False) -> tuple[str, bool]:
    """The table and whether every host passed (no FAIL, every host answered)."""
    results = for_each_host(Context(inv), lambda r: doctor(r, floor), hosts)
    names = [h.name for h in hosts]
    checks: list[str] = []
    cells: dict[tuple[str, str], list[str]] = {}
    for host in names:
        rows, _ = results[host]
        for name, status, detail, fix in rows or []:
            if name not in checks:
                checks.append(name)
            cells[(name, host)] = [status, detail, fix]
    width = max([len("check"), *(len(c) for c in checks)])
    cols = [max(len(h), 4) for h in names]
    lines = ["  ".join(["check".ljust(width), *(h.ljust(w) for h, w in zip(names, cols, strict=True))])]
    for c in checks:
        row = [c.ljust(width)]
        for h, w in zip(names, cols, strict=True):
            row.append((cells.get((c, h)) or ["—"])[0].ljust(w))
        lines.append("  ".join(row).rstrip())
    notes = []
    for (c, h), (status, detail, fix) in cells.items():
        if status != "ok":
            notes.append(f"{h}: {c}: {status}: {detail}" + (f" (fix: {fix})" if fix and status == "FAIL"
                                                             else ""))
    errors = [err for _, err in results.values() if err]
    ok = not errors and all(v[0] != "FAIL" for v in cells.values())
    failed = sorted({h for (_, h), v in cells.items() if v[0] == "FAIL"} |
                    {h for h, (_, err) in results.items() if err})
    text = "\n".join(lines + ([""] + notes if notes else []) + ([""] + errors if errors else [])
                     + ["", f"{len(names)} host(s), {len(checks)} checks: "
                        + ("all ready" if ok else f"not ready: {', '.join(failed)}")])
    return text, ok
