"""Per-batch costs from two serpensd ``stats`` snapshots (Table II's processing and state-access rows).

Every instance counts, in shared memory, the batches it dequeued, the packets in them, the TSC time from a
batch's dequeue to its last NF (``busy_us``) and, on the fission/snf backends, the time its NFs spent in
remote state access (``remote.us``, over ``remote.batches`` NF batches that touched Redis). Between two
snapshots:

* ``processing_us``: (busy - remote) / batches — NF code, the Chainer and local (State Manager) state, per
  instance batch;
* ``state_access_us``: remote / remote batches — the pipelined Redis round trips of one NF's share of a
  batch (prefetch + write-back); absent on the serpens backend, which never leaves shared memory;
* ``batch_packets``: packets / batches;
* ``delivery_us`` (per-NF chaining only): from one NF's hand-over of a batch (the enqueue on its tx ring) to
  the next NF's instance starting it (after its dequeue), per batch that came from another NF — what one
  proxy hop adds between two NFs (Table II's packet delivery; the instances stamp it, docs/chaining.md).

An instance that was replaced between the snapshots (another pid in its slot, or the same pooled process
started again: its ``start`` count differs) is counted from zero. The per-stage busy time per packet of the
same snapshots is harness.stages.stage_columns (docs/stages.md).
"""

from __future__ import annotations

import math
from typing import Any


def _by_instance(stats: dict[str, Any]) -> dict[tuple[int, int, int], dict[str, Any]]:
    return {(i["instance"], i["pid"], i.get("start", 0)): i for i in stats.get("instances", [])}


def batch_costs(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    """The per-batch costs of the traffic between the snapshots ``before`` and ``after`` (NaN if none)."""
    old = _by_instance(before)
    batches = packets = busy = remote = remote_batches = delivery = delivery_batches = 0.0
    for key, now in _by_instance(after).items():
        was = old.get(key)
        r_now, r_was = now.get("remote", {}), (was or {}).get("remote", {})
        batches += now["batches"] - (was["batches"] if was else 0)
        packets += now["pkts_in"] - (was["pkts_in"] if was else 0)
        busy += now.get("busy_us", 0.0) - (was.get("busy_us", 0.0) if was else 0.0)
        remote += r_now.get("us", 0.0) - r_was.get("us", 0.0)
        remote_batches += r_now.get("batches", 0) - r_was.get("batches", 0)
        # serpensd reports the mean per instance; mean × count is the instance's cumulative total
        d_now = now.get("delivery_us", 0.0) * now.get("delivery_batches", 0)
        d_was = (was.get("delivery_us", 0.0) * was.get("delivery_batches", 0)) if was else 0.0
        delivery += d_now - d_was
        delivery_batches += now.get("delivery_batches", 0) - (was.get("delivery_batches", 0) if was else 0)
    nan = math.nan
    return {
        "processing_us": (busy - remote) / batches if batches else nan,
        "state_access_us": remote / remote_batches if remote_batches else nan,
        "batch_packets": packets / batches if batches else nan,
        "delivery_us": delivery / delivery_batches if delivery_batches else nan,
        "delivery_batches": delivery_batches,
    }

