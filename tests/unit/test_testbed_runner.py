"""The task runner without SSH: check → apply → verify, "unchanged" when nothing differs, a failing host
named with one line while the others finish, later tasks of a failed host skipped; and the run verb's
placement of roles on hosts."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from harness import config as cfg
from testbed import inventory
from testbed import run as tbrun
from testbed.remote import HostError, Remote
from testbed.runner import CHANGED, FAILED, SKIPPED, UNCHANGED, Context, Task, run_tasks

INV = inventory.parse({"hosts": {
    "a": {"address": "198.18.0.1", "roles": ["generator"]},
    "b": {"address": "198.18.0.2", "roles": ["gateway"]},
    "c": {"address": "198.18.0.3", "roles": ["worker"]},
}}, "inv.yaml")


class Flag(Task):
    """Wants ``state[host]`` true; the apply of host ``broken`` does nothing, of host ``boom`` raises."""

    name = "flag"

    def __init__(self, state: dict[str, bool], broken: str = "", boom: str = "") -> None:
        self.state, self.broken, self.boom = state, broken, boom
        self.lock = threading.Lock()

    def check(self, r: Remote, ctx: Context) -> str | None:
        return None if self.state.get(r.host.name) else "flag unset"

    def apply(self, r: Remote, ctx: Context, why: str) -> str | None:
        if r.host.name == self.boom:
            raise HostError(f"{r.host.name}: flag: the disk is full")
        if r.host.name != self.broken:
            with self.lock:
                self.state[r.host.name] = True
        return "set the flag"


class Second(Task):
    name = "second"

    def check(self, r: Remote, ctx: Context) -> str | None:
        return None


def _statuses(report) -> dict[tuple[str, str], str]:   # type: ignore[no-untyped-def]
    return {(o.host, o.task): o.status for o in report.outcomes}


def test_apply_only_what_differs_then_a_second_run_is_unchanged() -> None:
    state = {"a": True}
    out = io.StringIO()
    first = run_tasks(Context(INV), [Flag(state), Second()], out=out)
    assert _statuses(first) == {("a", "flag"): UNCHANGED, ("b", "flag"): CHANGED, ("c", "flag"): CHANGED,
                                ("a", "second"): UNCHANGED, ("b", "second"): UNCHANGED,
                                ("c", "second"): UNCHANGED}
    assert "b  flag    changed    set the flag" in out.getvalue()
    second = run_tasks(Context(INV), [Flag(state), Second()], out=io.StringIO())
    assert {o.status for o in second.outcomes} == {UNCHANGED}
    assert "0 changed, 6 unchanged, 0 failed" in second.summary()


def test_an_apply_that_did_not_take_fails_its_verify() -> None:
    report = run_tasks(Context(INV), [Flag({}, broken="b")], out=io.StringIO())
    failed = report.failed
    assert [(o.host, o.task) for o in failed] == [("b", "flag")]
    assert failed[0].detail == "b: flag: applied, but still flag unset"


def test_a_failing_host_is_named_its_later_tasks_skipped_and_the_others_finish() -> None:
    report = run_tasks(Context(INV), [Flag({}, boom="c"), Second()], out=io.StringIO())
    s = _statuses(report)
    assert s[("c", "flag")] == FAILED and s[("c", "second")] == SKIPPED
    assert s[("a", "flag")] == CHANGED and s[("b", "second")] == UNCHANGED
    assert report.failed[0].detail == "c: flag: the disk is full"
    assert report.summary().endswith("FAILED hosts: c")


def test_a_bug_in_a_task_is_one_line_not_a_traceback() -> None:
    class Buggy(Task):
        name = "buggy"

        def check(self, r: Remote, ctx: Context) -> str | None:
            raise KeyError("oops")

    out = io.StringIO()
    report = run_tasks(Context(INV), [Buggy()], out=out)
    assert len(report.failed) == 3 and "a: KeyError: 'oops'" in out.getvalue()
    assert "Traceback" not in out.getvalue()


def test_roles_only_run_on_their_hosts() -> None:
    class GenOnly(Second):
        name = "gen-only"
        roles = ("generator",)

    report = run_tasks(Context(INV), [GenOnly()], out=io.StringIO())
    assert [o.host for o in report.outcomes] == ["a"]


def test_placement_maps_roles_to_hosts_and_says_what_is_missing() -> None:
    where = tbrun.placement(INV, ("generator", "gateway", "worker"))
    assert {r: [h.name for h in hs] for r, hs in where.items()} == {
        "generator": ["a"], "gateway": ["b"], "worker": ["c"]}
    with pytest.raises(tbrun.RunError, match="no host has the role 'redis'"):
        tbrun.placement(INV, ("redis",))


def test_the_wire_needs_a_nic_pair_between_generator_and_gateway(tmp_path: Path) -> None:
    with pytest.raises(tbrun.RunError, match="no NIC of a is cabled to b"):
        tbrun.run_wire(INV, cfg.load(), tmp_path, echo=lambda s: None)


def test_a_missing_key_file_is_one_line_before_any_connection() -> None:
    from testbed.tasks.reach import Reach
    inv = inventory.parse({"hosts": {"x": {"address": "198.18.0.1", "roles": ["worker"],
                                           "key_file": "/nonexistent/key"}}}, "inv.yaml")
    out = io.StringIO()
    report = run_tasks(Context(inv), [Reach(), Second()], out=out)
    assert [o.detail for o in report.failed] == ["x (198.18.0.1): key_file /nonexistent/key: no such file"]
    assert out.getvalue().splitlines()[1].split()[:3] == ["x", "…", "skipped"]
