"""Task ``hugepages``: at least the inventory's number of 2 MiB hugepages reserved, and hugetlbfs mounted at
/dev/hugepages. Raised, never lowered: other DPDK processes on the host may hold pages (namespace test hosts
share this machine's pool)."""

from __future__ import annotations

from testbed.remote import Remote
from testbed.runner import Context, Task

NR = "/proc/sys/vm/nr_hugepages"


def _state(r: Remote) -> tuple[int, bool]:
    have = int(r.out(f"cat {NR}", what="cat") or 0)
    mounted = r.ok("awk '$2 == \"/dev/hugepages\" && $3 == \"hugetlbfs\" {f=1} END {exit !f}' /proc/mounts",
                   what="awk")
    return have, mounted


class Hugepages(Task):
    name = "hugepages"

    def check(self, r: Remote, ctx: Context) -> str | None:
        have, mounted = _state(r)
        want = r.host.hugepages
        if have < want:
            return f"{have} of {want} hugepages reserved"
        return None if mounted or want == 0 else "hugetlbfs not mounted at /dev/hugepages"

    def apply(self, r: Remote, ctx: Context, why: str) -> str | None:
        have, mounted = _state(r)
        if have < r.host.hugepages:
            r.run(f"echo {r.host.hugepages} > {NR}", what="reserve hugepages")
        if not mounted:
            r.run("mkdir -p /dev/hugepages && mount -t hugetlbfs nodev /dev/hugepages",
                  what="mount hugetlbfs")
        return f"{why}: fixed"
