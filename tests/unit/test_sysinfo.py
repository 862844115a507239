"""harness/sysinfo.py's run facts on fixture /proc trees: parsing /proc/stat, /proc/<pid>/stat and status,
what run_facts attributes to us and to others, affinity read-back, and pinning the harness itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness import sysinfo
from harness.sysinfo import CpuTimesSnapshot, PidStat

STAT = """cpu  100 0 50 800 10 5 5 30 0 0
cpu0 60 0 30 390 5 3 2 10 0 0
cpu1 40 0 20 410 5 2 3 20 0 0
intr 12345 1 2
ctxt 999
"""


def pid_stat(pid: int, comm: str, ppid: int, utime: int, stime: int, starttime: int = 1000,
             cutime: int = 0, cstime: int = 0, state: str = "S") -> str:
    fields = [state, ppid, pid, pid, 0, -1, 4194304, 10, 0, 0, 0, utime, stime, cutime, cstime, 20, 0, 1, 0,
              starttime, 1000000, 100]
    return f"{pid} ({comm}) " + " ".join(map(str, fields)) + "\n"


def test_proc_stat_lines_become_jiffies_per_field() -> None:
    cpus = sysinfo.parse_proc_stat(STAT)
    assert set(cpus) == {"cpu", "cpu0", "cpu1"}
    assert cpus["cpu1"] == {"user": 40, "nice": 0, "system": 20, "idle": 410, "iowait": 5, "irq": 2,
                            "softirq": 3, "steal": 20}
    # an old kernel without the steal column: zero, not a crash
    assert sysinfo.parse_proc_stat("cpu0 1 2 3 4\n")["cpu0"]["steal"] == 0


def test_steal_and_busy_ratios_are_shares_of_the_window() -> None:
    before = sysinfo.parse_proc_stat(STAT)["cpu0"]
    after = dict(before, user=before["user"] + 50, idle=before["idle"] + 40, steal=before["steal"] + 10)
    ratios = sysinfo.cpu_time_ratios(before, after)
    assert ratios["steal_ratio"] == pytest.approx(10 / 100)
    assert ratios["busy_ratio"] == pytest.approx(50 / 100)
    # no tick passed: nothing can be said
    assert sysinfo.cpu_time_ratios(before, before) == {"steal_ratio": None, "busy_ratio": None}


def test_pid_stat_finds_fields_after_a_command_name_with_spaces_and_parentheses() -> None:
    st = sysinfo.parse_pid_stat(pid_stat(42, "we(ird) name)", 7, 300, 45, starttime=777, cutime=5, cstime=6))
    assert st == PidStat(pid=42, comm="we(ird) name)", state="S", ppid=7, cpu_ticks=345, children_ticks=11,
                         starttime=777)


def test_cpu_lists_expand() -> None:
    assert sysinfo.parse_cpu_list("0-2,5\n") == [0, 1, 2, 5]
    assert sysinfo.parse_cpu_list("1") == [1]


def test_process_tree_is_the_root_and_its_descendants() -> None:
    parents = {1: 0, 10: 1, 11: 10, 12: 11, 20: 1}
    procs = {pid: PidStat(pid, f"p{pid}", "S", ppid, 0, 0, 1) for pid, ppid in parents.items()}
    assert sysinfo.process_tree(procs, [10]) == {10, 11, 12}
    assert sysinfo.process_tree(procs, [99]) == set()


def write_proc(root: Path, stat: str, loadavg: str, procs: dict[int, str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "stat").write_text(stat)
    (root / "loadavg").write_text(loadavg)
    for d in root.iterdir():
        if d.name.isdigit() and int(d.name) not in procs:
            (d / "stat").unlink()
            d.rmdir()
    for pid, text in procs.items():
        (root / str(pid)).mkdir(exist_ok=True)
        (root / str(pid) / "stat").write_text(text)


def test_run_facts_attribute_cpu_time_to_us_and_to_others(tmp_path: Path) -> None:
    """One second (USER_HZ 100) on two vCPUs: the harness (pid 10) and its generator (11) are ours, and so is
    a child that ended and was reaped (it shows in the harness's cutime); 'stress' and a new 'backup' are
    others; an exited 'short' is not seen by name but its time counts among the others."""
    proc = tmp_path / "proc"
    write_proc(proc, STAT, "0.50 0.40 0.30 2/100 50\n", {
        1: pid_stat(1, "init", 0, 5, 5),
        10: pid_stat(10, "python", 1, 100, 10),
        11: pid_stat(11, "serpens-gen", 10, 200, 0, starttime=2000),
        20: pid_stat(20, "stress", 1, 1000, 0),
        21: pid_stat(21, "short", 1, 1, 0),
        30: pid_stat(30, "kworker/0:1", 2, 0, 0),
    })
    clock = iter([100.0, 101.0])
    before = sysinfo.cpu_times_snapshot(proc, self_pid=10, clock=lambda: next(clock))
    # in the second (100 ticks per vCPU): cpu0 all busy; cpu1 70 busy, 20 idle, 10 steal
    after_stat = """cpu  270 0 50 820 10 5 5 40 0 0
cpu0 160 0 30 390 5 3 2 10 0 0
cpu1 110 0 20 430 5 2 3 30 0 0
"""
    write_proc(proc, after_stat, "1.50 0.60 0.35 3/101 60\n", {
        1: pid_stat(1, "init", 0, 5, 5),
        10: pid_stat(10, "python", 1, 105, 12, cutime=20, cstime=3),   # a reaped child used 23 ticks
        11: pid_stat(11, "serpens-gen", 10, 290, 0, starttime=2000),     # 90 ticks
        20: pid_stat(20, "stress", 1, 1040, 0),                          # 40 ticks: 0.4 vCPU
        30: pid_stat(30, "kworker/0:1", 2, 1, 0),                        # 1 tick: under 2 %
        40: pid_stat(40, "backup", 1, 3, 0, starttime=5000),             # new, 3 ticks
    })
    after = sysinfo.cpu_times_snapshot(proc, self_pid=10, clock=lambda: next(clock))
    facts = sysinfo.run_facts(before, after, busy_share=0.02, clk_tck=100)
    assert facts["window_s"] == 1.0
    assert facts["steal_ratio"] == {"cpu0": 0.0, "cpu1": pytest.approx(10 / 100),
                                    "all": pytest.approx(10 / 200)}
    assert facts["busy_ratio"]["cpu0"] == 1.0 and facts["busy_ratio"]["cpu1"] == pytest.approx(0.7)
    assert facts["loadavg_before"] == [0.5, 0.4, 0.3] and facts["loadavg_after"] == [1.5, 0.6, 0.35]
    assert facts["busy_vcpus"] == pytest.approx(1.7)
    assert facts["ours_vcpus"] == pytest.approx((5 + 2 + 23 + 90) / 100)
    assert facts["irq_vcpus"] == 0.0
    # everything busy that is not ours: stress 40, backup 3, kworker 1, and 'short' 6 before it ended
    assert facts["others_vcpus"] == pytest.approx(1.7 - 1.2)
    assert facts["others_busy"] is True
    assert facts["others_top"] == [{"pid": 20, "comm": "stress", "vcpus": 0.4},
                                   {"pid": 40, "comm": "backup", "vcpus": 0.03}]
    json.dumps(facts)    # goes into a sidecar as it is


def test_a_reused_pid_is_a_new_process(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    write_proc(proc, STAT, "0 0 0 1/1 1\n", {10: pid_stat(10, "python", 1, 0, 0),
                                              20: pid_stat(20, "old", 1, 5000, 0, starttime=100)})
    before = sysinfo.cpu_times_snapshot(proc, self_pid=10, clock=lambda: 0.0)
    write_proc(proc, STAT.replace("cpu  100 0 50 800", "cpu  110 0 50 890"), "0 0 0 1/1 1\n",
               {10: pid_stat(10, "python", 1, 0, 0), 20: pid_stat(20, "new", 1, 10, 0, starttime=900)})
    after = sysinfo.cpu_times_snapshot(proc, self_pid=10, clock=lambda: 1.0)
    facts = sysinfo.run_facts(before, after, clk_tck=100)
    # the new process's own 10 ticks, not 10 - 5000
    assert facts["others_top"] == [{"pid": 20, "comm": "new", "vcpus": 0.1}]


def test_run_facts_need_a_later_after_snapshot() -> None:
    snap = CpuTimesSnapshot(monotonic_s=5.0, cpus={}, loadavg=None, processes={})
    with pytest.raises(ValueError, match="after"):
        sysinfo.run_facts(snap, snap)


def test_run_facts_on_this_machine_name_no_process_of_ours_as_other() -> None:
    before = sysinfo.cpu_times_snapshot()
    busy = "import time\nt = time.time()\nwhile time.time() - t < 0.3: pass"
    child = subprocess.Popen([sys.executable, "-c", busy])
    child.wait()
    facts = sysinfo.run_facts(before, sysinfo.cpu_times_snapshot())
    assert child.pid not in {o["pid"] for o in facts["others_top"]}
    assert facts["ours_vcpus"] > 0           # the reaped child's busy loop counts as ours
    assert set(facts["steal_ratio"]) >= {"all", "cpu0"}


def write_status(path: Path, name: str, cpus: str, state: str = "S (sleeping)") -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "status").write_text(f"Name:\t{name}\nState:\t{state}\nTgid:\t1\nCpus_allowed:\t1\n"
                                 f"Cpus_allowed_list:\t{cpus}\nMems_allowed_list:\t0\n")


def test_affinities_are_read_back_per_process_and_odd_threads_named(tmp_path: Path) -> None:
    write_status(tmp_path / "50", "serpens-wire", "0")
    write_status(tmp_path / "50" / "task" / "50", "serpens-wire", "0")
    write_status(tmp_path / "50" / "task" / "51", "eal-intr-thread", "1")
    write_status(tmp_path / "50" / "task" / "52", "rte_mp_handle", "0")
    write_status(tmp_path / "60", "redis-server", "0-1", state="Z (zombie)")
    out = sysinfo.affinities([50, 60, 70], root=tmp_path)
    assert out[50] == {"comm": "serpens-wire", "cpus_allowed": [0], "alive": True,
                       "other_threads": [{"tid": 51, "comm": "eal-intr-thread", "cpus_allowed": [1]}]}
    assert out[60]["cpus_allowed"] == [0, 1] and out[60]["alive"] is False
    assert out[70] == {"comm": None, "cpus_allowed": None, "alive": False, "other_threads": []}


def test_affinity_of_this_process_matches_the_os() -> None:
    import os

    me = sysinfo.affinities([os.getpid()])[os.getpid()]
    assert me["alive"] and me["cpus_allowed"] == sorted(os.sched_getaffinity(0))


def test_pin_self_moves_every_thread_to_the_generator_core() -> None:
    """In a child interpreter (pinning pytest itself would change every later test): a thread started
    before pinning is moved too, and a process started afterwards inherits the pin."""
    cpus = sysinfo.online_cpus()
    core = cpus[-1]
    code = f"""
import json, os, subprocess, threading, time
from harness import sysinfo
stop = threading.Event()
t = threading.Thread(target=stop.wait); t.start()
got = sysinfo.pin_self({{"cores": {{"generator": {core}, "platform": 0}}}})
child = subprocess.run(["grep", "Cpus_allowed_list", "/proc/self/status"], capture_output=True, text=True)
tasks = {{tid: sorted(os.sched_getaffinity(int(tid))) for tid in os.listdir("/proc/self/task")}}
stop.set(); t.join()
print(json.dumps({{"got": got, "tasks": tasks, "child": child.stdout.split()[-1]}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    facts = json.loads(out.stdout)
    assert facts["got"] == [core]
    assert len(facts["tasks"]) == 2 and all(v == [core] for v in facts["tasks"].values())
    assert facts["child"] == str(core)


@pytest.mark.parametrize("core", [999, -1, "1", True])
def test_pinning_to_a_cpu_the_machine_lacks_is_one_clear_error(core: object) -> None:
    with pytest.raises(sysinfo.PinError, match=r"cores.generator = .*expected one of this machine's online"):
        sysinfo.pin_self({"cores": {"generator": core, "platform": 0}})
