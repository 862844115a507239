"""Whether what a results directory holds is evidence a paper claim may be judged on.

harness.claims computes our numbers; this module says which of them count, from two sources, both read
from the results directory being checked (never from the current configuration):

* **The sidecar** beside each CSV (``<name>.json``, written by harness.results.ResultWriter) says how the
  run was made. A run that was quick, had a single repetition, did not complete, or was measured from a
  dirty tree is *marked*: the claims report shows it, and ``check-paper --strict`` refuses it. A CSV with
  no readable sidecar is marked too: nothing says how it was obtained.
* **The rows.** A latency from a trial that lost more than the PDR goal, or whose generator did not reach
  its load, describes an overflowing queue, not the platform: not evidence. A rate of zero means no load
  met the goal (the rate is below the search's lowest load, not zero): not evidence. A rate the generator
  could not exceed is a *floor*: the platform may do more.

The rules and why are in docs/claims.md ("What counts as evidence").
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

# Used when a sidecar's configuration names no PDR goal (the harness's default, FD.io CSIT's PDR).
DEFAULT_PDR_LOSS = 0.001

# Rates measured through the generator: a generator-limited row makes them floors, and zero is no number.
THROUGHPUT_METRICS = frozenset({"ndr_mpps", "pdr_mpps", "throughput_mpps", "rx_mpps", "ndr_gbps", "pdr_gbps"})
# Rates derived from the platform's own busy-time counters: the generator does not bound them, but zero
# (or missing) is still no number.
CAPACITY_METRICS = frozenset({"instance_capacity_mpps"})
GENERATOR_LIMITED = "generator_limited"
LATENCY_VALID = "latency_trial_valid"
LOSS_RATIO = "loss_ratio"


# ---------------------------------------------------------------------------------------------------------
# Sidecars: how a run was made.

@dataclass(frozen=True)
class RunInfo:
    """What the sidecar of one results CSV says about its run (``found`` False: there is none)."""

    csv: str
    sidecar: Path
    found: bool
    problem: str | None = None       # why the sidecar could not be used
    run_id: str | None = None
    status: str | None = None        # running / complete / interrupted / failed
    quick: bool | None = None        # None: not recorded
    repetitions: int | None = None   # None: not recorded
    dirty: bool | None = None        # None: not recorded (git was not available)
    pdr_loss: float = DEFAULT_PDR_LOSS
    pdr_loss_from: str = "default"   # where pdr_loss was read

    @property
    def marks(self) -> tuple[str, ...]:
        """What makes this run weaker evidence; each one is refused under --strict."""
        if not self.found:
            return ("no sidecar",)
        if self.problem:
            return (f"unreadable sidecar ({self.problem})",)
        out = []
        if self.status != "complete":
            out.append(f"status {self.status or 'not recorded'}")
        if self.quick:
            out.append("quick")
        if self.repetitions is None:
            out.append("repetitions not recorded")
        elif self.repetitions < 2:
            out.append(f"{self.repetitions} repetition")
        if self.dirty:
            out.append("dirty tree")
        return tuple(out)

    @property
    def unknowns(self) -> tuple[str, ...]:
        """What the sidecar does not say, shown but not refused (older sidecars lack these keys)."""
        if not self.found or self.problem:
            return ()
        out = []
        if self.quick is None:
            out.append("quick not recorded")
        if self.dirty is None:
            out.append("tree state not recorded")
        return tuple(out)

    def describe(self) -> str:
        """One line for the report: the run and, if any, its marks."""
        if not self.found:
            return f"{self.csv}: no sidecar {self.sidecar.name} — marked: no sidecar"
        if self.problem:
            return f"{self.csv}: {self.sidecar.name} unreadable ({self.problem}) — marked"
        reps = "repetitions ?" if self.repetitions is None else \
            f"{self.repetitions} repetition{'s' if self.repetitions != 1 else ''}"
        tree = {True: "dirty tree", False: "clean tree", None: "tree ?"}[self.dirty]
        quick = {True: "quick", False: "full", None: "quick ?"}[self.quick]
        goal = f"PDR goal {_pct(self.pdr_loss)}" + (" (default)" if self.pdr_loss_from.startswith("default")
                                                    else "")
        parts = [f"run {self.run_id or '?'}", self.status or "status ?", quick, reps, tree, goal]
        line = f"{self.csv}: " + ", ".join(parts)
        marks = self.marks
        return line + (f" — marked: {', '.join(marks)}" if marks else "")


def _get(doc: Mapping[str, Any], *path: str) -> Any:
    cur: Any = doc
    for p in path:
        if not isinstance(cur, Mapping) or p not in cur:
            return None
        cur = cur[p]
    return cur


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(v):
        return None
    return float(v)


def read_run(results_dir: Path, csv_name: str) -> RunInfo:
    """The sidecar of ``results_dir/csv_name`` (``<stem>.json`` beside it). Never raises: a missing or
    unreadable sidecar is a RunInfo that says so."""
    path = (Path(results_dir) / csv_name).with_suffix(".json")
    if not path.is_file():
        return RunInfo(csv_name, path, found=False)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return RunInfo(csv_name, path, found=True, problem=str(exc).splitlines()[0])
    if not isinstance(doc, dict):
        return RunInfo(csv_name, path, found=True, problem="not a JSON object")
    quick = doc.get("quick") if isinstance(doc.get("quick"), bool) else None
    reps = doc.get("repetitions")
    if isinstance(reps, bool) or not isinstance(reps, int):
        reps = _get(doc, "config", "measurement", "repetitions")
        reps = reps if isinstance(reps, int) and not isinstance(reps, bool) else None
    dirty = _get(doc, "git", "dirty")
    status = doc.get("status") if isinstance(doc.get("status"), str) else None
    pdr, where = DEFAULT_PDR_LOSS, f"default {DEFAULT_PDR_LOSS:g} (the sidecar's config names no PDR goal)"
    for keys in (("config", "search", "goals", "pdr", "loss_ratio"), ("config", "search", "pdr_loss")):
        v = _number(_get(doc, *keys))
        if v is not None:
            pdr, where = v, ".".join(keys)
            break
    return RunInfo(csv_name, path, found=True, run_id=doc.get("run_id"), status=status, quick=quick,
                   repetitions=reps, dirty=dirty if isinstance(dirty, bool) else None, pdr_loss=pdr,
                   pdr_loss_from=where)


# ---------------------------------------------------------------------------------------------------------
# Rows: which values are evidence.

def truth(v: Any) -> bool | None:
    """A CSV boolean (``true``/``false``, 1/0) or None when the cell is empty or not a boolean."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("true", "1", "1.0", "yes"):
        return True
    if s in ("false", "0", "0.0", "no"):
        return False
    return None


def is_latency(metric: str) -> bool:
    return metric.startswith("latency_")


def _pct(x: float) -> str:
    return f"{x * 100:.3g} %"


def _flags(rows: pd.DataFrame, col: str | None) -> pd.Series:
    """A boolean column as True / False / None per row (None: no such column, or an empty cell)."""
    if col is None or col not in rows.columns:
        return pd.Series([None] * len(rows), index=rows.index, dtype=object)
    return rows[col].map(truth).astype(object)


def floor_reasons(rows: pd.DataFrame, metric: str) -> pd.Series:
    """Per row: the column saying the generator limited it ('' when the value is not a floor). For
    ``ndr_*``/``pdr_*`` the goal's own flag (``ndr_generator_limited``) decides when the row has one; else
    the row's ``generator_limited``. Only rates measured through the generator can be floors."""
    out = pd.Series("", index=rows.index, dtype=object)
    if metric not in THROUGHPUT_METRICS:
        return out
    goal = metric.split("_", 1)[0] if metric.startswith(("ndr_", "pdr_")) else None
    per_goal = f"{goal}_{GENERATOR_LIMITED}" if goal else None
    own, row = _flags(rows, per_goal), _flags(rows, GENERATOR_LIMITED)
    out[own.map(lambda x: x is True)] = per_goal
    out[own.map(lambda x: x is None) & row.map(lambda x: x is True)] = GENERATOR_LIMITED
    return out


def row_issues(rows: pd.DataFrame, metric: str, pdr_loss: float) -> pd.Series:
    """Per row: why its value of ``metric`` is not evidence ('' when it is)."""
    out = pd.Series("", index=rows.index, dtype=object)
    if is_latency(metric):
        valid = _flags(rows, LATENCY_VALID)
        loss = pd.to_numeric(rows[LOSS_RATIO], errors="coerce") if LOSS_RATIO in rows.columns \
            else pd.Series(math.nan, index=rows.index)
        lossy = loss > pdr_loss
        said_invalid = valid.map(lambda x: x is False)
        unsaid = valid.map(lambda x: x is None)
        for i in rows.index[said_invalid & lossy]:
            out[i] = f"latency trial lost {_pct(loss[i])}, more than the PDR goal {_pct(pdr_loss)}"
        out[said_invalid & ~lossy] = "latency trial invalid: the generator did not reach its load"
        for i in rows.index[unsaid & lossy]:   # an older CSV: judged from its loss ratio
            out[i] = (f"latency trial lost {_pct(loss[i])}, more than the PDR goal {_pct(pdr_loss)} "
                      f"(no {LATENCY_VALID}: judged from {LOSS_RATIO})")
    elif metric in THROUGHPUT_METRICS or metric in CAPACITY_METRICS:
        vals = pd.to_numeric(rows[metric], errors="coerce")
        zero = vals.notna() & (vals <= 0)
        why = ("a rate of 0 means no load met the goal: the rate is below the search's lowest load, not zero"
               if metric in THROUGHPUT_METRICS else f"{metric} is 0 (no busy time was counted)")
        out[zero] = why
    return out
