"""The paper's quantitative claims, checked against the CSVs our experiments wrote.

``experiments/claims.yaml`` lists every quantitative claim of the Serpens paper: where it is made, what it
says, the paper's number, how *our* number is computed from ``results/<target>.csv`` and how the two are
compared. harness.claims_file loads that file (strictly: an unknown key, a missing field or a bad value is
an error naming the file, the claim and the key); this module computes our values and gives each claim a
verdict:

* ``PASS`` / ``FAIL`` — every needed row was there and the check held / did not hold;
* ``INVALID`` — the check would rest on what is not evidence: a zero, missing or generator-limited
  denominator, a latency from a lossy trial, a floor that could lie either side of the check, or (with
  ``strict``) a run its sidecar marks as quick, single-repetition, incomplete or from a dirty tree;
* ``NOT MEASURED`` — the CSV does not exist or none of its rows match the claim;
* ``INCOMPLETE`` — some of the needed rows are there, and nothing measured so far contradicts the claim.

A claim whose present rows already contradict it is a ``FAIL`` even when other rows are missing or invalid:
a failure on measured evidence is a failure. ``FAIL`` and ``INVALID`` make :func:`exit_code` non-zero.
What counts as evidence (sidecars, row flags) is harness.evidence's concern.

How a number is computed (the same for every claim, see ``docs/claims.md``):

1. rows of the CSV are selected by equality filters on identity columns (``where`` + the selection's own);
2. rows whose metric is empty are dropped;
3. rows are grouped by the claim's ``group_by`` columns and by every other identity column that still takes
   more than one value (so 64 B and 1518 B frames are never pooled: the claim must hold at each);
4. trials that are not evidence are left out (the point is INVALID when they are half or more of its
   trials); within one trial the rows are reduced by ``within_trial`` (default median; ``max`` for a peak
   over time), then trials are aggregated by their median;
5. the derivation (value, ratio a/b, reduction 1 - a/b) is applied group by group, in the paper's unit.
   Throughput ratios of Fig. 12 and 15 are judged on the instance-capacity ratio (``capacity``) where both
   sides have it, with the end-to-end ratio and the stage that bounded each side reported next to it.

The paper's numbers live only in the claims file and are only ever compared with.
"""

from __future__ import annotations

import enum
import math
import shutil
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from harness import evidence
from harness.claims_file import (
    ACROSS,
    CHECK_KINDS,
    DERIVATIONS,
    IDENTITY_COLUMNS,
    MEAN_LATENCY,
    P50_LATENCY,
    WITHIN_TRIAL,
    Check,
    Claim,
    ClaimsError,
    Companion,
    Derivation,
    PaperValue,
    Selection,
    load_claims,
)

# harness.units holds these; imported under the private names this code used before they moved there.
from harness.units import UNIT_DISPLAY as _UNIT_DISPLAY
from harness.units import UNITS as _UNITS
from harness.units import convert as _convert
from harness.units import fmt as _fmt
from harness.units import metric_unit
from harness.units import norm_unit as _norm_unit
from harness.units import with_unit as _with_unit

TRIAL_COLUMN = "trial"


# ---------------------------------------------------------------------------------------------------------
# Verdicts.

class Status(enum.StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    INVALID = "INVALID"
    NOT_MEASURED = "NOT MEASURED"
    INCOMPLETE = "INCOMPLETE"


@dataclass(frozen=True)
class Verdict:
    claim_id: str
    source: str
    text: str
    paper: str
    ours: str
    status: Status
    detail: str
    # our values, labelled by the point they belong to (e.g. "chain_length=3"), in the paper's unit
    values: tuple[tuple[str, float], ...] = field(default=())
    # "<file>: <mark>" for every weakness of the runs read (quick, 1 repetition, ...): --strict refuses them
    marks: tuple[str, ...] = field(default=())
    # one line per results file read: its run as its sidecar describes it
    evidence: tuple[str, ...] = field(default=())
    # for a throughput ratio: which ratio was judged, the other one, and which stage bounded each side
    basis: str = ""


# ---------------------------------------------------------------------------------------------------------
# Computing our numbers.

class _Frames:
    """Each results CSV, and its sidecar, read once per check; both from the one results directory."""

    def __init__(self, results_dir: Path) -> None:
        self.dir = Path(results_dir)
        self.cache: dict[str, pd.DataFrame | str] = {}
        self.runs: dict[str, evidence.RunInfo] = {}

    def get(self, name: str) -> pd.DataFrame | str:
        """The frame, or a string saying why there is none."""
        if name not in self.cache:
            path = self.dir / name
            if not path.is_file():
                self.cache[name] = f"no {path}"
            else:
                try:
                    self.cache[name] = pd.read_csv(path)
                except (pd.errors.EmptyDataError, pd.errors.ParserError, OSError, UnicodeDecodeError) as exc:
                    self.cache[name] = f"cannot read {path}: {exc}"
        return self.cache[name]

    def run(self, name: str) -> evidence.RunInfo:
        """What the sidecar beside ``name`` says about the run that wrote it."""
        if name not in self.runs:
            self.runs[name] = evidence.read_run(self.dir, name)
        return self.runs[name]


def _norm_str(v: Any) -> str:
    return str(v).strip().lower().replace(" ", "")


def _key_value(v: Any) -> Any:
    """A hashable, comparable group-key value (NaN → None, numpy scalars → Python)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _mask(df: pd.DataFrame, col: str, accepted: tuple[Any, ...]) -> pd.Series:
    s = df[col]
    if pd.api.types.is_numeric_dtype(s):
        out = pd.Series(False, index=df.index)
        for v in accepted:
            try:
                x = float(v)
            except (TypeError, ValueError):
                continue
            out |= (s - x).abs() <= 1e-9 * max(1.0, abs(x))
        return out
    wanted = {_norm_str(v) for v in accepted}
    return s.map(lambda x: not pd.isna(x) and _norm_str(x) in wanted)


@dataclass
class _Rows:
    """The rows one selection found (or why none), before aggregation."""

    sel: Selection
    file: str
    candidates: tuple[str, ...] = ()
    metric: str | None = None
    rows: pd.DataFrame | None = None       # matched rows that have a value of the metric
    matched: pd.DataFrame | None = None    # every row the filters matched (measured, with or without value)
    why_empty: str | None = None
    filtered_cols: frozenset[str] = frozenset()


def _fetch(frames: _Frames, d: Derivation, sel: Selection, metric: tuple[str, ...] | None = None,
           need_values: bool = False) -> _Rows:
    """The selection's rows. ``metric`` replaces the claim's metric (capacity, companions); with
    ``need_values`` rows measured without a value count as not there."""
    file = sel.file or d.file or ""
    candidates = metric or sel.metric or d.metric or ()
    got = _Rows(sel=sel, file=file, candidates=candidates)
    df = frames.get(file)
    if isinstance(df, str):
        got.why_empty = df
        return got
    filters = {**d.where, **sel.filters}
    got.filtered_cols = frozenset(filters)
    for col in (*filters, *d.group_by):
        if col not in df.columns:
            got.why_empty = f"{file} has no column {col!r}"
            return got
    present = [m for m in candidates if m in df.columns]
    if not present:
        got.why_empty = f"{file} has no column {' or '.join(candidates)}"
        return got
    mask = pd.Series(True, index=df.index)
    for col, vals in filters.items():
        mask &= _mask(df, col, vals)
    sub = df[mask]
    what = ", ".join(f"{k}={'|'.join(map(str, v))}" for k, v in filters.items()) or "any rows"
    if sub.empty:
        got.why_empty = f"no rows of {file} with {what}"
        return got
    got.matched = sub
    for m in present:  # the first alternative that has values for these rows
        vals = pd.to_numeric(sub[m], errors="coerce")
        if vals.notna().any():
            rows = sub[vals.notna()].copy()
            rows[m] = vals[vals.notna()]
            got.metric, got.rows = m, rows
            return got
    got.why_empty = f"rows of {file} with {what} have no value of {' or '.join(present)}"
    if need_values:
        got.matched = None
    return got


_REDUCE: dict[str, Callable[[pd.Series], float]] = {
    "median": lambda s: float(s.median()), "mean": lambda s: float(s.mean()),
    "max": lambda s: float(s.max()), "min": lambda s: float(s.min()),
}

Key = tuple[tuple[str, Any], ...]


@dataclass
class _Agg:
    """One selection's value at one point, and whether it is evidence."""

    value: float
    rows: pd.DataFrame                 # every row measured at this point (stage counters are read here)
    floor: str = ""                    # the column that says the generator limited a trial used
    invalid: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def hi(self) -> float:
        return math.inf if self.floor else self.value


def _aggregate(got: _Rows, keys: Sequence[str], within_trial: str, run: evidence.RunInfo,
               need_values: bool = False) -> dict[Key, _Agg]:
    """Per group key: the rows' evidence (harness.evidence), then rows reduced within each trial and the
    median over trials."""
    assert got.matched is not None
    df = got.matched
    cols = [k for k in keys if k in df.columns]
    groups: list[tuple[Any, pd.DataFrame]] = [((), df)] if not cols else \
        list(df.groupby(cols, dropna=False, sort=True))
    out: dict[Key, _Agg] = {}
    for gkey, gdf in groups:
        gkey = gkey if isinstance(gkey, tuple) else (gkey,)
        key = tuple((c, _key_value(v)) for c, v in zip(cols, gkey, strict=True))
        if need_values and (got.metric is None
                            or not pd.to_numeric(gdf[got.metric], errors="coerce").notna().any()):
            continue  # not measured here: the caller falls back rather than judging an empty point
        out[key] = _point_evidence(got, gdf, within_trial, run)
    return out


def _point_evidence(got: _Rows, gdf: pd.DataFrame, within_trial: str, run: evidence.RunInfo) -> _Agg:
    """The value of one point from its rows: trials that are not evidence are left out (the point is
    INVALID when they are half or more of its trials); a trial the generator limited makes it a floor."""
    m = got.metric
    agg = _Agg(math.nan, gdf)
    vals = pd.to_numeric(gdf[m], errors="coerce") if m else None
    if m is None or vals is None or not vals.notna().any():
        what = m or " or ".join(got.candidates)
        agg.invalid.append(f"{len(gdf)} row(s) measured without a value of {what}")
        return agg
    have = gdf[vals.notna()].copy()
    have[m] = vals[vals.notna()]
    has_trial = TRIAL_COLUMN in gdf.columns
    unit = have[TRIAL_COLUMN].fillna(-1) if has_trial else pd.Series(0, index=have.index)
    n_trials = unit.nunique()
    if has_trial and got.sel.filters:   # (a file with one row per metric, table-2, has empty cells by design)
        empty = set(gdf[TRIAL_COLUMN].fillna(-1)) - set(unit)
        if empty:
            agg.notes.append(f"{len(empty)} trial(s) without a value of {m}, left out")
    issues = evidence.row_issues(have, m, run.pdr_loss)
    bad = set(unit[issues != ""])
    if bad:
        reasons = "; ".join(dict.fromkeys(issues[issues != ""]))
        if 2 * len(bad) >= n_trials:
            agg.invalid.append(f"{len(bad)} of {n_trials} trial(s) are not evidence: {reasons}")
            return agg
        agg.notes.append(f"{len(bad)} of {n_trials} trials left out ({reasons})")
        keep = ~unit.isin(bad)
        have, unit = have[keep], unit[keep]
    per_trial = have.groupby(unit)[m].agg(_REDUCE[within_trial])
    agg.value = float(per_trial.median())
    floors = evidence.floor_reasons(have, m)
    limited = floors[floors != ""]
    if len(limited):
        agg.floor = str(limited.iloc[0])
        agg.notes.append(f"generator-limited in {unit[limited.index].nunique()} of {len(per_trial)} trial(s) "
                         f"({agg.floor}): {_fmt(agg.value)} is a floor")
    return agg


def _strata(fetched: Sequence[_Rows], d: Derivation) -> tuple[list[str], list[str]]:
    """Identity columns that vary within some selection (grouped on), and those pooled because some
    selection's file lacks them."""
    filtered = set().union(*(f.filtered_cols for f in fetched)) | set(d.where)
    varying: list[str] = []
    for col in IDENTITY_COLUMNS:
        if col in filtered or col in d.group_by:
            continue
        for f in fetched:
            if f.rows is not None and col in f.rows.columns and f.rows[col].nunique(dropna=False) > 1:
                varying.append(col)
                break
    frames = [f.rows for f in fetched if f.rows is not None]
    common = [c for c in varying if all(c in r.columns for r in frames)]
    pooled = [c for c in varying if c not in common]
    return common, pooled


def _label(key: Key, vs: str = "") -> str:
    parts = [f"{c}={v}" for c, v in key]
    if vs:
        parts.append(f"vs {vs}")
    return ", ".join(parts)


def _gmean(values: Sequence[float]) -> float:
    if any(v <= 0 for v in values):
        return 0.0
    return math.exp(sum(math.log(v) for v in values) / len(values))


_COMBINE: dict[str, Callable[[Sequence[float]], float]] = {
    "min": min, "max": max, "mean": lambda v: sum(v) / len(v), "gmean": _gmean,
    "median": lambda v: float(pd.Series(list(v)).median()),
}


@dataclass(frozen=True)
class _Point:
    """One of our values: the point it belongs to (group key), the denominator it is against, the value,
    the range the true value may lie in (lo < value or hi > value only when it rests on a generator-limited
    rate, a floor), and why it is not evidence (empty when it is)."""

    key: Key
    vs: str
    value: float
    lo: float
    hi: float
    invalid: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return _label(self.key, self.vs)


@dataclass(frozen=True)
class _Item:
    """One selection's value in an ordering (derive: each)."""

    name: str
    value: float
    lo: float
    hi: float
    invalid: tuple[str, ...] = ()


@dataclass
class _Computed:
    """Our values for one claim. ``points`` are checked one by one; ``vectors`` (ordering) per point."""

    unit: str
    points: list[_Point] = field(default_factory=list)
    vectors: list[tuple[Key, list[_Item]]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # what is still to be measured
    combine_partial: bool = False  # an across-combination computed from only some of its groups
    notes: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)   # which stage bounded each side, from which counters
    files: list[str] = field(default_factory=list)    # results files read
    metrics: list[str] = field(default_factory=list)  # metric columns used


def _to_paper_unit(c: Claim, f: _Rows) -> float:
    """Factor from the metric's unit to the paper's unit (for value / each derivations)."""
    if f.metric is None:
        return 1.0
    return _convert(1.0, metric_unit(f.metric) or "", _norm_unit(c.paper.unit))


def _to_base_unit(f: _Rows) -> float:
    """Factor from the metric's unit to the base unit of its dimension (so a ratio of µs and ms is right)."""
    unit = metric_unit(f.metric or "") or ""
    base = next(u for u, (dim, fac) in _UNITS.items() if dim == _UNITS[unit][0] and fac == 1.0)
    return _convert(1.0, unit, base)


STAGE_COLUMNS = ("gateway_ns_per_packet", "instance_ns_per_packet", "remote_state_ns_per_packet",
                 "proxy_ns_per_packet")
BOTTLENECK_COLUMN = "bottleneck"


def _stages(name: str, rows: pd.DataFrame) -> str:
    """Which stage bounded one side's measured throughput (the ``bottleneck`` column, most common over
    trials) and the busy-time counters behind it (medians)."""
    counters = []
    for col in STAGE_COLUMNS:
        if col in rows.columns:
            v = pd.to_numeric(rows[col], errors="coerce").dropna()
            if len(v):
                counters.append(f"{col} {_fmt(float(v.median()))}")
    said = rows[BOTTLENECK_COLUMN].dropna().astype(str) if BOTTLENECK_COLUMN in rows.columns \
        else pd.Series([], dtype=str)
    if said.empty:
        head = f"{name}: bottleneck not recorded"
    else:
        counts = said.value_counts()
        head = f"{name} bounded by {counts.index[0]}"
        if counts.iloc[0] < len(said):
            head += f" ({counts.iloc[0]} of {len(said)} trials)"
    return head + (f" [{', '.join(counters)}]" if counters else " [no stage counters]")


def _ratio_point(k: Key, vs: str, fa: _Rows, pa: _Agg, fb: _Rows, pb: _Agg, derive: str) -> _Point:
    """of / over (or the reduction 1 − of / over) at one point, with the evidence rules for ratios: a zero,
    missing or generator-limited denominator is not evidence; a generator-limited numerator makes the
    ratio a floor."""
    na, nb = fa.sel.name(), fb.sel.name()
    invalid = [f"{na}: {w}" for w in pa.invalid] + [f"{nb}: {w}" for w in pb.invalid]
    if not pb.invalid and pb.floor:
        invalid.append(f"{nb}, the denominator, is generator-limited ({pb.floor}): its rate is only a floor")
    if pa.invalid or pb.invalid:
        return _Point(k, vs, math.nan, math.nan, math.nan, tuple(invalid))
    num, den = pa.value * _to_base_unit(fa), pb.value * _to_base_unit(fb)
    for side, name, v in (("numerator", na, num), ("denominator", nb, den)):
        if not v > 0:
            invalid.append(f"{name}, the {side}, is {_fmt(v)}: a ratio needs a positive value on each side")
    if not (num > 0 and den > 0):
        return _Point(k, vs, math.nan, math.nan, math.nan, tuple(invalid))
    r = num / den
    r_hi = math.inf if pa.floor else r
    if derive == "ratio":
        return _Point(k, vs, r, r, r_hi, tuple(invalid))
    return _Point(k, vs, 100.0 * (1.0 - r), 100.0 * (1.0 - r_hi), 100.0 * (1.0 - r), tuple(invalid))


def _compute(c: Claim, frames: _Frames, metric: tuple[str, ...] | None = None, within: str | None = None,
             need_values: bool = False) -> tuple[_Computed | None, str | None]:
    """Our values, or (None, why not measured). ``metric``/``within`` replace the claim's (the
    instance-capacity ratio, companions); with ``need_values`` a point without values is missing rather
    than invalid (so the capacity ratio is only used where it was measured)."""
    d = c.ours
    within = within or d.within_trial
    fetched = [_fetch(frames, d, s, metric, need_values) for s in d.selections()]
    if all(f.matched is None for f in fetched):
        return None, "; ".join(dict.fromkeys(f.why_empty or "" for f in fetched))
    strata, pooled = _strata(fetched, d)
    keys = [*d.group_by, *strata]
    out = _Computed(unit=_norm_unit(c.paper.unit))
    out.files = list(dict.fromkeys(f.file for f in fetched if f.matched is not None))
    out.metrics = list(dict.fromkeys(f.metric for f in fetched if f.metric))
    if pooled:
        out.notes.append(f"pooled over {', '.join(pooled)} (not a column of every file used)")
    for f in fetched:
        if f.matched is None:
            out.missing.append(f"{f.sel.name()}: {f.why_empty}")
    have = [f for f in fetched if f.rows is not None]
    if any(f.metric != f.candidates[0] for f in have):
        out.notes.append("metric used: " + ", ".join(f"{f.sel.name()} → {f.metric}" for f in have))
    agg = [(_aggregate(f, keys, within, frames.run(f.file), need_values) if f.matched is not None else {})
           for f in fetched]
    for f, a in zip(fetched, agg, strict=True):
        for k, g in a.items():
            out.notes += [f"{_label(k) + ': ' if k else ''}{f.sel.name()}: {n}" for n in g.notes]
    all_keys = sorted(set().union(*(a.keys() for a in agg)), key=lambda k: [str(v) for _, v in k])

    if d.derive == "value":
        f, a = fetched[0], agg[0]
        fac = _to_paper_unit(c, f)
        valued = [k for k in all_keys if not math.isnan(a[k].value)]
        for k in all_keys:
            g = a[k]
            if valued and math.isnan(g.value) and g.invalid \
                    and all("measured without a value" in w for w in g.invalid):
                # a point where the metric is undefined by design (a slope at the first step of a sweep)
                # among points that have it: left out, not a reason to call the whole claim invalid
                out.notes.append(f"{_label(k) or 'point'}: no value of {f.metric} here, left out")
                continue
            why = tuple(f"{f.sel.name()}: {w}" for w in g.invalid)
            out.points.append(_Point(k, "", g.value * fac, g.value * fac, g.hi * fac, why))
    elif d.derive in ("ratio", "reduction"):
        fa, a = fetched[0], agg[0]
        for fb, b in zip(fetched[1:], agg[1:], strict=True):
            vs = fb.sel.name() if len(d.over) > 1 else ""
            if fa.matched is None or fb.matched is None:
                continue  # already listed as missing
            for k in all_keys:
                if k not in a or k not in b:
                    lacking = fa if k not in a else fb
                    out.missing.append(f"{_label(k, vs) or 'point'}: no {lacking.sel.name()}")
                    continue
                out.points.append(_ratio_point(k, vs, fa, a[k], fb, b[k], d.derive))
                if a[k].floor and not b[k].floor:
                    out.notes.append(f"{_label(k, vs) + ': ' if _label(k, vs) else ''}the ratio is a floor "
                                     f"({fa.sel.name()} is generator-limited)")
                if d.capacity and metric is None:
                    where = _label(k, vs)
                    out.stages.append((f"{where}: " if where else "") + _stages(fa.sel.name(), a[k].rows)
                                      + "; " + _stages(fb.sel.name(), b[k].rows))
    else:  # each: one vector of item values per point
        for k in all_keys:
            vec = []
            for f, a in zip(fetched, agg, strict=True):
                if k in a:
                    g, fac = a[k], _to_paper_unit(c, f)
                    vec.append(_Item(f.sel.name(), g.value * fac, g.value * fac, g.hi * fac,
                                     tuple(g.invalid)))
                else:
                    out.missing.append(f"{_label(k) or 'point'}: no {f.sel.name()}")
            out.vectors.append((k, vec))
    _expected_groups(c, out)
    if d.across != "each":
        _combine(c, out)
    return out, None


def _expected_groups(c: Claim, out: _Computed) -> None:
    """A list filter in ``where`` on a group_by column names groups that must all be there."""
    keys = [p.key for p in out.points] + [k for k, _ in out.vectors]
    for col in c.ours.group_by:
        wanted = c.ours.where.get(col)
        if not wanted or len(wanted) < 2:
            continue
        seen = {_norm_str(v) for k in keys for kc, v in k if kc == col}
        out.missing += [f"{col}={w}: not measured" for w in wanted if _norm_str(w) not in seen]


def _without(key: Key, cols: Sequence[str]) -> Key:
    return tuple((c, v) for c, v in key if c not in cols)


def _combine(c: Claim, out: _Computed) -> None:
    """Replace the per-group points by one value per remaining point (min/max/mean/median/gmean over
    the group_by columns). A group that is not evidence makes the combination not evidence."""
    by: dict[tuple[Key, str], list[_Point]] = {}
    for p in out.points:
        by.setdefault((_without(p.key, c.ours.group_by), p.vs), []).append(p)
    out.combine_partial = bool(out.missing)
    out.notes.append(f"{c.ours.across} over {', '.join(c.ours.group_by)} of: "
                     + "; ".join(f"{p.label} {'invalid' if p.invalid else _fmt(p.value)}"
                                 for p in out.points))
    f = _COMBINE[c.ours.across]
    combined = []
    for (k, vs), ps in by.items():
        why = tuple(f"{p.label}: {w}" for p in ps for w in p.invalid)
        if why:
            combined.append(_Point(k, vs, math.nan, math.nan, math.nan, why))
        else:
            combined.append(_Point(k, vs, f([p.value for p in ps]), f([p.lo for p in ps]),
                                   f([p.hi for p in ps])))
    out.points = combined


# ---------------------------------------------------------------------------------------------------------
# Checking.

def _times_lower(percent: float) -> float:
    """A reduction of p % as "times lower" (b/a): 80 % → 5×, 99 % → 100×."""
    return math.inf if percent >= 100 else 1.0 / (1.0 - percent / 100.0)


def _check_point(c: Claim, v: float) -> tuple[str | None, str]:
    """(None, "") when the value satisfies the check, else (why not, the side it fails on: low | high)."""
    k, chk, p = c.check.kind, c.check, c.paper
    u = _UNIT_DISPLAY.get(_norm_unit(p.unit), p.unit)
    if math.isnan(v):
        return "not a number", ""
    if chk.above is not None and not v > chk.above:
        return f"{_with_unit(_fmt(v), u)} is not above {_with_unit(_fmt(chk.above), u)}", "low"
    if k == "ratio_bound" and chk.factor is not None:
        lo, hi = p.bounds
        ours = v
        if c.ours.derive == "reduction":  # compare "times lower", where percentages near 100 are spread out
            lo, hi, ours = _times_lower(lo), _times_lower(hi), _times_lower(v)
        if not (lo / chk.factor <= ours <= hi * chk.factor):
            how = " (as times lower)" if c.ours.derive == "reduction" else ""
            return (f"{_fmt(ours)} is outside [{_fmt(lo / chk.factor)}, {_fmt(hi * chk.factor)}]{how}, "
                    f"a factor {_fmt(chk.factor)} around the paper's"), \
                "low" if ours < lo / chk.factor else "high"
    if k == "order_of_magnitude":
        lo, hi = p.bounds
        span = 10 ** (chk.decades or 0)
        if not (v > 0 and lo / span <= v <= hi * span):
            return (f"{_with_unit(_fmt(v), u)} is more than {_fmt(chk.decades or 0)} decade(s) from the "
                    "paper",
                    "low" if not (v > 0 and lo / span <= v) else "high")
    if k == "at_least" and not v >= (chk.bound or 0):
        return f"{_with_unit(_fmt(v), u)} < {_with_unit(_fmt(chk.bound or 0), u)}", "low"
    if k == "at_most" and not v <= (chk.bound or 0):
        return f"{_with_unit(_fmt(v), u)} > {_with_unit(_fmt(chk.bound or 0), u)}", "high"
    if k == "between":
        assert chk.low is not None and chk.high is not None
        if not v >= chk.low:
            return f"{_with_unit(_fmt(v), u)} < {_with_unit(_fmt(chk.low), u)}", "low"
        if not v <= chk.high:
            return f"{_with_unit(_fmt(v), u)} > {_with_unit(_fmt(chk.high), u)}", "high"
    return None, ""


def _judge(c: Claim, p: _Point) -> tuple[str, str | None]:
    """("pass" | "fail" | "invalid", why). A value resting on a floor passes only if its whole possible
    range passes, and fails only if the whole range fails on the same side."""
    if p.invalid:
        return "invalid", "; ".join(p.invalid)
    why_lo, side_lo = _check_point(c, p.lo)
    if p.lo == p.hi:
        return ("fail", why_lo) if why_lo else ("pass", None)
    why_hi, side_hi = _check_point(c, p.hi)
    if why_lo is None and why_hi is None:
        return "pass", None
    if why_lo and why_hi and side_lo == side_hi:
        why, _ = _check_point(c, p.value)
        return "fail", why or why_lo
    u = _UNIT_DISPLAY.get(_norm_unit(c.paper.unit), c.paper.unit)
    bound = "≥" if p.hi > p.value else "≤"
    return "invalid", (f"{_with_unit(_fmt(p.value), u)} rests on a generator-limited rate: the true value is "
                       f"{bound} {_with_unit(_fmt(p.value), u)} and could lie either side of the check")


def _check_vector(c: Claim, vec: list[_Item]) -> tuple[str, str | None]:
    """("pass" | "fail" | "invalid", why) for the items in the order listed."""
    desc = c.check.direction == "descending"
    u = _UNIT_DISPLAY.get(_norm_unit(c.paper.unit), c.paper.unit)
    undecided = None
    for a, b in zip(vec, vec[1:], strict=False):
        sure = a.lo > b.hi if desc else a.hi < b.lo
        never = a.hi <= b.lo if desc else a.lo >= b.hi
        rel = ">" if desc else "<"
        sa, sb = f"{a.name} {_with_unit(_fmt(a.value), u)}", f"{b.name} {_with_unit(_fmt(b.value), u)}"
        if never:
            return "fail", f"{sa} is not {rel} {sb}"
        if not sure and undecided is None:
            undecided = f"{sa} {rel} {sb} cannot be told: one of them rests on a generator-limited rate"
    return ("invalid", undecided) if undecided else ("pass", None)


def _check_largest(c: Claim, comp: _Computed) -> tuple[list[str], list[str], int]:
    """The named group must have the largest value at every remaining point (stratum).
    Returns (failures, not-evidence, points evaluated)."""
    col = c.ours.group_by[0]
    strata: dict[tuple[Key, str], dict[Any, _Point]] = {}
    for p in comp.points:
        group = next(v for kc, v in p.key if kc == col)
        strata.setdefault((_without(p.key, [col]), p.vs), {})[group] = p
    failures, invalid, evaluated = [], [], 0
    for (key, vs), groups in strata.items():
        where = _label(key, vs)
        at = where + ": " if where else ""
        named = next((g for g in groups if _norm_str(g) == _norm_str(c.check.group)), None)
        if named is None:
            comp.missing.append(f"{where or 'point'}: no {col}={c.check.group}")
            continue
        bad = [f"{at}{col}={g}: {w}" for g, p in groups.items() for w in p.invalid]
        if bad:
            invalid += bad
            continue
        evaluated += 1
        n = groups[named]
        others = {g: p for g, p in groups.items() if g != named}
        beaten = [g for g, p in others.items() if p.lo >= n.hi]
        if beaten:
            top = max(beaten, key=lambda g: others[g].value)
            failures.append(f"{at}{top} {_fmt(others[top].value)} is not below {named} {_fmt(n.value)}")
        elif not all(n.lo > p.hi for p in others.values()):
            invalid.append(f"{at}whether {named} is the largest cannot be told: a value rests on a "
                           "generator-limited rate")
    return failures, invalid, evaluated


@dataclass
class _Judgement:
    status: Status
    ours: str
    problems: list[str]                   # failures and values that are not evidence, labelled
    values: list[tuple[str, float]]
    evaluated: int = 0


def _evaluate(c: Claim, comp: _Computed) -> _Judgement:
    u = _UNIT_DISPLAY.get(comp.unit, comp.unit)
    failures: list[str] = []
    invalid: list[str] = []
    evaluated = 0
    if c.check.kind == "ordering":
        values = [(_label(k) + (", " if k else "") + it.name, it.value)
                  for k, vec in comp.vectors for it in vec]
        for k, vec in comp.vectors:
            at = f"{_label(k)}: " if k else ""
            bad = [f"{at}{it.name}: {w}" for it in vec for w in it.invalid]
            if bad:
                invalid += bad
                continue
            if len(vec) >= 2:
                evaluated += 1
                outcome, why = _check_vector(c, vec)
                if outcome == "fail":
                    failures.append(f"{at}{why}")
                elif outcome == "invalid":
                    invalid.append(f"{at}{why}")
        ours = _show_vectors(comp.vectors, c, u)
    else:
        values = [(p.label, p.value) for p in comp.points]
        if c.check.kind == "largest":
            failures, invalid, evaluated = _check_largest(c, comp)
            ours = _show_ranking(c, comp, u)
        else:
            for p in comp.points:
                if p.invalid:
                    invalid += [f"{p.label}: {w}" if p.label else w for w in p.invalid]
                elif not comp.combine_partial:
                    evaluated += 1
                    outcome, why = _judge(c, p)
                    if outcome == "fail":
                        failures.append(f"{p.label}: {why}" if p.label else str(why))
                    elif outcome == "invalid":
                        invalid.append(f"{p.label}: {why}" if p.label else str(why))
            ours = _show_points(comp.points, u)
    if failures:
        status = Status.FAIL
    elif invalid:
        status = Status.INVALID
    elif comp.missing or evaluated == 0:
        status = Status.INCOMPLETE
    else:
        status = Status.PASS
    problems = failures + [f"not evidence: {w}" for w in invalid]
    return _Judgement(status, ours, problems, values, evaluated)


def _show_one(p: _Point, u: str) -> str:
    s = _with_unit(_fmt(p.value), u)
    if p.hi > p.value:
        return "≥ " + s
    if p.lo < p.value:
        return "≤ " + s
    return s


def _show_points(points: Sequence[_Point], u: str, count: bool = True) -> str:
    if not points:
        return "—"
    shown = [p for p in points if not math.isnan(p.value)]
    if not shown:
        return "invalid"
    if len(points) == 1:
        s = _show_one(shown[0], u)
    else:
        lo, hi = _fmt(min(p.value for p in shown)), _fmt(max(p.value for p in shown))
        s = _with_unit(lo if lo == hi else f"{lo}–{hi}", u) + (f" ({len(points)} points)" if count else "")
    return s + (" (invalid)" if all(p.invalid for p in points) else "")


def _show_ranking(c: Claim, comp: _Computed, u: str) -> str:
    """The groups of the first point, largest first (for `largest`)."""
    if not comp.points:
        return "—"
    col = c.ours.group_by[0]
    first = (_without(comp.points[0].key, [col]), comp.points[0].vs)
    ranked = sorted((p for p in comp.points if (_without(p.key, [col]), p.vs) == first),
                    key=lambda p: -p.value if not math.isnan(p.value) else math.inf)
    shown = _with_unit(" > ".join(f"{dict(p.key)[col]} {_fmt(p.value)}" for p in ranked), u)
    n = len({(_without(p.key, [col]), p.vs) for p in comp.points})
    return shown + (f" (at {_label(*first)}; {n} points)" if n > 1 else "")


def _show_vectors(vectors: Sequence[tuple[Key, list[_Item]]], c: Claim, u: str) -> str:
    if not vectors:
        return "—"
    rel = " > " if c.check.direction == "descending" else " < "
    key, vec = vectors[0]
    shown = _with_unit(rel.join(f"{it.name} {_fmt(it.value)}" for it in vec), u)
    if len(vectors) > 1:
        shown += f" (at {_label(key)}; {len(vectors)} points)"
    return shown


# ---------------------------------------------------------------------------------------------------------
# The public API.

def check(results_dir: Path, claims_file: Path, strict: bool = False) -> list[Verdict]:
    """Every claim of ``claims_file`` against the CSVs (and their sidecars) in ``results_dir``, in the file's
    order. ``strict`` refuses marked evidence (quick, one repetition, incomplete, dirty tree, no sidecar)."""
    return check_claims(load_claims(Path(claims_file)), results_dir, strict=strict)


def check_claims(claims: Sequence[Claim], results_dir: Path, strict: bool = False) -> list[Verdict]:
    """Already loaded claims against ``results_dir`` (see :func:`check`)."""
    frames = _Frames(Path(results_dir))
    return [check_claim(c, frames, strict=strict) for c in claims]


def _capacity_covers(cap: _Computed | None, comp: _Computed) -> bool:
    """The capacity ratio can be judged instead of the end-to-end one: it has every point the end-to-end
    ratio has, and misses nothing more."""
    if cap is None:
        return False
    keys = {(p.key, p.vs) for p in comp.points} | {(k, "") for k, _ in comp.vectors}
    cap_keys = {(p.key, p.vs) for p in cap.points} | {(k, "") for k, _ in cap.vectors}
    return bool(cap_keys) and keys <= cap_keys and len(cap.missing) <= len(comp.missing)


def _companions(c: Claim, frames: _Frames, kind_each: bool) -> tuple[str, list[str]]:
    """Values shown next to ours, not judged (p50 next to a mean, the maximum next to Fig. 14's mean):
    (text for the ours column, detail)."""
    shown, detail = [], []
    for comp_spec in c.ours.companions():
        got, _ = _compute(c, frames, metric=(comp_spec.metric,), within=comp_spec.within_trial)
        if got is None:
            continue
        u = _UNIT_DISPLAY.get(got.unit, got.unit)
        text = _show_vectors(got.vectors, c, u) if kind_each else _show_points(got.points, u, count=False)
        shown.append(f"{comp_spec.name} {text}")
        labelled = [f"{p.label} {'invalid' if p.invalid else _fmt(p.value)}" for p in got.points if p.label]
        detail.append(f"{comp_spec.name} ({comp_spec.metric}, shown, not judged): {text}"
                      + (f" — {'; '.join(labelled)}" if len(labelled) > 1 else ""))
    return "; ".join(shown), detail


def check_claim(c: Claim, frames: _Frames, strict: bool = False) -> Verdict:
    comp, why = _compute(c, frames)
    paper = c.paper.display()
    if comp is None:
        return Verdict(c.id, c.source, c.text, paper, "—", Status.NOT_MEASURED, why or "no rows", ())
    judged, basis = comp, []
    cap = _compute(c, frames, metric=(c.ours.capacity,), need_values=True)[0] if c.ours.capacity else None
    covers = _capacity_covers(cap, comp)   # before judging: judging a `largest` adds to what is missing
    e2e = _evaluate(c, comp)
    if c.ours.capacity:
        if cap is not None and covers:
            judged = cap
            e2e_metric = "/".join(comp.metrics) or "throughput"
            basis.append(f"judged on the instance-capacity ratio ({c.ours.capacity}: what one instance "
                         "sustains alone on a core, as on the paper's testbed; docs/claims.md)")
            basis.append(f"end-to-end ratio ({e2e_metric}): {e2e.ours}, on its own {e2e.status}"
                         + (f" ({'; '.join(e2e.problems)})" if e2e.problems else ""))
        else:
            lacking = "; ".join(cap.missing) if cap is not None and cap.missing else "no rows have it"
            basis.append(f"judged on the end-to-end ratio: {c.ours.capacity} is not measured on every side "
                         f"({lacking})")
    j = e2e if judged is comp else _evaluate(c, judged)
    ours = j.ours
    if judged is not comp:
        ours = f"{j.ours} instance capacity; {e2e.ours} end to end"
    also, also_detail = _companions(c, frames, c.ours.derive == "each")
    if also and ours not in ("—", "invalid"):
        ours = f"{ours}; {also}"
    runs = [frames.run(f) for f in comp.files]
    marks = tuple(f"{r.csv}: {m}" for r in runs for m in r.marks)
    status, problems = j.status, list(j.problems)
    if strict and marks:
        status = Status.INVALID
        problems.insert(0, "refused under --strict: " + "; ".join(marks))
    detail = problems
    if comp.missing or judged.missing:
        detail.append("missing: " + "; ".join(dict.fromkeys(judged.missing or comp.missing)))
    if judged.combine_partial:
        detail.append(f"the {c.ours.across} needs every group, so it is not judged yet")
    notes = comp.notes + (judged.notes if judged is not comp else [])
    detail += basis + comp.stages + list(dict.fromkeys(notes))
    detail += also_detail
    detail.append("check: " + c.check.describe(c.paper.unit))
    if c.note:
        detail.append("reading: " + c.note)
    if not j.values and status is Status.INCOMPLETE:
        ours = "—"
    return Verdict(c.id, c.source, c.text, paper, ours, status, "; ".join(detail), tuple(j.values), marks,
                   tuple(r.describe() for r in runs), "; ".join(basis + comp.stages))


def exit_code(verdicts: Sequence[Verdict]) -> int:
    """1 when at least one claim FAILs or is INVALID (judged on what is not evidence), else 0
    (NOT MEASURED and INCOMPLETE do not fail)."""
    return 1 if any(v.status in (Status.FAIL, Status.INVALID) for v in verdicts) else 0


def render(verdicts: Sequence[Verdict], width: int | None = None, details: bool = True) -> str:
    """A plain-text table (no terminal needed): id, claim, paper, ours, verdict (``*``: judged on marked
    evidence); then why each claim that did not pass did not, the runs read (from their sidecars), and a
    one-line summary. ``width`` defaults to the terminal's (160 without one)."""
    if width is None:
        width = min(200, max(100, shutil.get_terminal_size((160, 24)).columns))
    heads = ("id", "claim", "paper", "ours", "verdict")
    starred = [bool(v.marks) and v.status is not Status.NOT_MEASURED for v in verdicts]
    rows = [(v.claim_id, f"{v.text} [{v.source}]", v.paper, v.ours, str(v.status) + ("*" if s else ""))
            for v, s in zip(verdicts, starred, strict=True)]
    w_id = max([len(heads[0]), *(len(r[0]) for r in rows)])
    w_verdict = max(len(s) for s in ("verdict", *(f"{s}*" for s in Status)))
    w_paper = min(24, max([len(heads[2]), *(len(r[2]) for r in rows)]))
    w_ours = min(30, max([len(heads[3]), *(len(r[3]) for r in rows)]))
    w_claim = max(30, width - w_id - w_paper - w_ours - w_verdict - 4 * 2)
    widths = (w_id, w_claim, w_paper, w_ours, w_verdict)

    def line(cells: Sequence[str]) -> list[str]:
        wrapped = [textwrap.wrap(cell, w, break_on_hyphens=False) or [""] for cell, w in zip(cells, widths,
                                                                                              strict=True)]
        n = max(len(x) for x in wrapped)
        return ["  ".join((x[i] if i < len(x) else "").ljust(w) for x, w in zip(wrapped, widths, strict=True))
                .rstrip() for i in range(n)]

    out = line(heads)
    out.append("  ".join("-" * w for w in widths))
    for r in rows:
        out += line(r)
    counts = {s: sum(v.status is s for v in verdicts) for s in Status}
    summary = f"{len(verdicts)} claims: " + ", ".join(f"{counts[s]} {s}" for s in Status)
    if any(starred):
        summary += f"; {sum(starred)} read marked runs (*)"
    if details:
        notes = [v for v in verdicts if v.status is not Status.PASS]
        if notes:
            out += ["", "Why not PASS:"]
            for v in notes:
                out += textwrap.wrap(f"{v.claim_id} ({v.status}): {v.detail}", width,
                                     initial_indent="  ", subsequent_indent="      ", break_on_hyphens=False)
        passed = [v for v in verdicts if v.status is Status.PASS and v.basis]
        if passed:
            out += ["", "Throughput ratios that passed: the ratio judged, which stage bounded each side:"]
            for v in passed:
                out += textwrap.wrap(f"{v.claim_id}: {v.basis}", width, initial_indent="  ",
                                     subsequent_indent="      ", break_on_hyphens=False)
        runs = list(dict.fromkeys(e for v in verdicts for e in v.evidence))
        if runs:
            out += ["", "Runs read (from the sidecar beside each CSV):"]
            for e in runs:
                out += textwrap.wrap(e, width, initial_indent="  ", subsequent_indent="      ",
                                     break_on_hyphens=False)
            if any(starred):
                out.append("  * the verdict reads a marked run: check-paper --strict (make check-paper "
                           "STRICT=1) refuses it")
    out += ["", summary]
    return "\n".join(out)


def required_columns(claims: Sequence[Claim]) -> dict[str, set[str]]:
    """CSV file → the columns the claims read from it (filters, group_by, metrics, the capacity metric and
    the companions shown next to ours): the contract between the experiments and this check."""
    need: dict[str, set[str]] = {}
    for c in claims:
        d = c.ours
        for s in d.selections():
            cols = need.setdefault(s.file or d.file or "", set())
            cols |= set(d.where) | set(s.filters) | set(d.group_by)
            cols |= set(s.metric or d.metric or ())
            cols |= {m.metric for m in d.companions()}
            if d.capacity:
                cols.add(d.capacity)
    return need


# What harness.claims offers, including what it re-exports from harness.claims_file and harness.units (so
# ``from harness.claims import load_claims`` and ``claims.ClaimsError`` keep working).
__all__ = [
    "ACROSS", "BOTTLENECK_COLUMN", "CHECK_KINDS", "DERIVATIONS", "IDENTITY_COLUMNS", "MEAN_LATENCY",
    "P50_LATENCY", "STAGE_COLUMNS", "TRIAL_COLUMN", "WITHIN_TRIAL", "Check", "Claim", "ClaimsError",
    "Companion", "Derivation", "Key", "PaperValue", "Selection", "Status", "Verdict", "check", "check_claim",
    "check_claims", "exit_code", "load_claims", "metric_unit", "render", "required_columns",
]
