"""What a serpensd deployment occupies in memory (Fig. 11(b), docs/startup.md "Memory"): PSS of serpensd
and of every process it started, and the NF images' memfd pages that no process maps yet.

PSS (proportional set size, ``/proc/<pid>/smaps_rollup``) counts a page shared by n processes as 1/n in
each, so the sum over processes is the memory they occupy together. Hugepage memory (the State Manager
region, mbufs, the control memzone) is not in PSS; it is the same for every startup method. An NF image is
a memfd serpensd holds open and, at deployment, nobody maps: its allocated blocks are counted on top
(what ``fstat`` reports through ``/proc/<serpensd>/fd``). Once a runtime maps an image, its pages are in
that runtime's PSS as well; the memory points are taken at deployment, before any instance starts.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path


def pss_kb(pid: int) -> int:
    """The process's PSS in KiB."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/smaps_rollup has no Pss line")


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children of any of its threads, recursively)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = list(Path(f"/proc/{p}/task").iterdir())
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                kids = [int(c) for c in (task / "children").read_text().split()]
            except FileNotFoundError:
                continue
            found.extend(kids)
            todo.extend(kids)
    return found


def memfd_kb(pid: int, prefix: str = "/memfd:") -> float:
    """Allocated KiB of the memfds ``pid`` holds open (each file once, however many fds name it)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            if not os.readlink(fd).startswith(prefix):
                continue
            st = os.stat(fd)
        except (FileNotFoundError, PermissionError):
            continue
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total / 1024


def mapping_kind(name: str) -> str:
    """A mapping's class for the per-mapping table: its file's base name, or what an anonymous one is."""
    if not name:
        return "anonymous"
    if name.startswith("/"):
        if "/hugepages/" in name or "rtemap_" in name or "hugepage" in name:
            return "hugepages"
        base = name.split("/")[-1].replace(" (deleted)", "")
        if base.startswith("fbarray_"):
            return "fbarray_* (memseg lists, EAL)"
        if ".so" in base:
            return base.split(".so")[0] + ".so"
        return base
    return name   # [heap], [stack], [vdso], memfd:...


def pss_by_mapping(pid: int) -> dict[str, dict[str, int]]:
    """Per mapping class (mapping_kind): PSS, RSS, mapped size and count, in KiB, from /proc/<pid>/smaps."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"pss_kb": 0, "rss_kb": 0, "size_kb": 0, "n": 0})
    cur: dict[str, int] | None = None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split(maxsplit=5)
        if "-" in head[0] and len(head) >= 5 and ":" not in head[0]:   # a mapping's header line
            cur = out[mapping_kind(head[5] if len(head) > 5 else "")]
            cur["n"] += 1
        elif cur is not None and head[0] in ("Pss:", "Rss:", "Size:"):
            cur[{"Pss:": "pss_kb", "Rss:": "rss_kb", "Size:": "size_kb"}[head[0]]] += int(head[1])
    return dict(out)


def deployment_kb(serpensd_pid: int) -> dict[str, float]:
    """serpensd's deployment memory now: PSS of serpensd and of every process below it, and the memfds it
    holds (NF images). ``processes`` counts serpensd too."""
    pids = [serpensd_pid, *descendants(serpensd_pid)]
    own = pss_kb(serpensd_pid)
    others = sum(pss_kb(p) for p in pids[1:])
    images = memfd_kb(serpensd_pid)
    return {"serpensd_pss_kb": float(own), "pss_kb": float(own + others), "image_kb": images,
            "memory_kb": own + others + images, "processes": float(len(pids))}
