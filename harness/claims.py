"""The paper's quantitative claims, checked against the CSVs our experiments wrote.

``experiments/claims.yaml`` lists every quantitative claim of the Serpens paper: where it is made, what it
says, the paper's number, how *our* number is computed from ``results/<target>.csv`` and how the two are
compared. This module loads that file (strictly: an unknown key, a missing field or a bad value is an error
naming the file, the claim and the key), computes our values and gives each claim a verdict:

* ``PASS`` / ``FAIL`` — every needed row was there and the check held / did not hold;
* ``NOT MEASURED`` — the CSV does not exist or none of its rows match the claim;
* ``INCOMPLETE`` — some of the needed rows are there, and nothing measured so far contradicts the claim.

A claim whose present rows already contradict it is a ``FAIL`` even when other rows are missing: a
failure on measured data is a failure. Only ``FAIL`` makes :func:`exit_code` non-zero.

How a number is computed (the same for every claim, see ``docs/claims.md``):

1. rows of the CSV are selected by equality filters on identity columns (``where`` + the selection's own);
2. rows whose metric is empty are dropped;
3. rows are grouped by the claim's ``group_by`` columns and by every other identity column that still takes
   more than one value (so 64 B and 1518 B frames are never pooled: the claim must hold at each);
4. within one trial the rows are reduced by ``within_trial`` (default median; ``max`` for a peak over time),
   then trials are aggregated by their median;
5. the derivation (value, ratio a/b, reduction 1 - a/b) is applied group by group, in the paper's unit.

The paper's numbers live only in the claims file and are only ever compared with.
"""

from __future__ import annotations

import enum
import math
import shutil
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

# Identity columns of a results CSV (harness.results.COLUMNS declares them with their meaning). Filters and
# group_by may only name these; every one of them that varies within a selection becomes a grouping column.
IDENTITY_COLUMNS: tuple[str, ...] = (
    "experiment", "platform", "workload", "frame_size_b", "flows", "chain_length", "n_instances", "n_nfs",
    "load_fraction", "generator",
)
TRIAL_COLUMN = "trial"
# A row flagged by the generator as "could not offer the rate asked for": its number is a floor.
GENERATOR_LIMITED_COLUMN = "generator_limited"


# ---------------------------------------------------------------------------------------------------------
# Units. Every metric column ends in its unit; the paper's unit is written in the claims file.

# unit → (dimension, factor to the dimension's base unit)
_UNITS: dict[str, tuple[str, float]] = {
    "ns": ("time", 1e-3), "us": ("time", 1.0), "ms": ("time", 1e3), "s": ("time", 1e6),
    "pps": ("rate", 1e-6), "kpps": ("rate", 1e-3), "mpps": ("rate", 1.0),
    "b": ("memory", 1 / 1024), "kb": ("memory", 1.0), "mb": ("memory", 1024.0), "gb": ("memory", 1024.0**2),
    "x": ("ratio", 1.0),
    "%": ("percent", 1.0),
}
_UNIT_DISPLAY = {"us": "µs", "ns": "ns", "ms": "ms", "s": "s", "pps": "pps", "kpps": "Kpps", "mpps": "Mpps",
                 "b": "B", "kb": "KB", "mb": "MB", "gb": "GB", "x": "×", "%": "%"}


def _norm_unit(unit: str) -> str:
    return unit.strip().lower().replace("µ", "u").replace("μ", "u").replace("×", "x")


def metric_unit(metric: str) -> str | None:
    """The unit a metric column's name ends in (``latency_mean_us`` → ``us``), or None."""
    suffix = metric.rsplit("_", 1)[-1].lower() if "_" in metric else ""
    return suffix if suffix in _UNITS and suffix not in ("x", "%") else None


def _convert(value: float, from_unit: str, to_unit: str) -> float:
    dim_f, f = _UNITS[from_unit]
    dim_t, t = _UNITS[to_unit]
    assert dim_f == dim_t, (from_unit, to_unit)
    return value * f / t


# ---------------------------------------------------------------------------------------------------------
# The claims file, as typed objects.

class ClaimsError(ValueError):
    """The claims file is malformed. The message names the file, the claim and the key."""


DERIVATIONS = ("value", "ratio", "reduction", "each")
ACROSS = ("each", "min", "max", "mean", "median", "gmean")
WITHIN_TRIAL = ("median", "mean", "max", "min")
CHECK_KINDS = ("ratio_bound", "order_of_magnitude", "at_least", "at_most", "ordering", "largest")


@dataclass(frozen=True)
class PaperValue:
    """What the paper says: a number, or a range (min–max), and/or words (``text``) for display."""

    unit: str
    value: float | None = None
    min: float | None = None
    max: float | None = None
    text: str | None = None

    @property
    def numeric(self) -> bool:
        return self.value is not None or self.min is not None

    @property
    def bounds(self) -> tuple[float, float]:
        if self.value is not None:
            return self.value, self.value
        assert self.min is not None and self.max is not None
        return self.min, self.max

    def display(self) -> str:
        if self.text:
            return self.text
        u = _UNIT_DISPLAY.get(_norm_unit(self.unit), self.unit)
        lo, hi = self.bounds  # as the paper wrote them, not rounded
        num = f"{lo:g}" if lo == hi else f"{lo:g}–{hi:g}"
        return _with_unit(num, u)


@dataclass(frozen=True)
class Selection:
    """Rows of a CSV: equality filters (a list means "any of"), and optionally another file or metric."""

    filters: Mapping[str, tuple[Any, ...]]
    file: str | None = None
    metric: tuple[str, ...] | None = None
    label: str | None = None

    def name(self) -> str:
        if self.label:
            return self.label
        if self.filters:
            return "/".join(",".join(str(v) for v in vals) for vals in self.filters.values())
        return self.metric[0] if self.metric else "rows"


@dataclass(frozen=True)
class Derivation:
    file: str | None
    metric: tuple[str, ...] | None
    where: Mapping[str, tuple[Any, ...]]
    derive: str
    of: Selection | None = None
    over: tuple[Selection, ...] = ()
    items: tuple[Selection, ...] = ()
    group_by: tuple[str, ...] = ()
    across: str = "each"
    within_trial: str = "median"

    def selections(self) -> list[Selection]:
        return [s for s in (self.of, *self.over, *self.items) if s is not None]


@dataclass(frozen=True)
class Check:
    kind: str
    factor: float | None = None
    above: float | None = None
    decades: float | None = None
    bound: float | None = None
    direction: str = "descending"
    group: Any = None

    def describe(self, unit: str) -> str:
        u = _UNIT_DISPLAY.get(_norm_unit(unit), unit)
        parts = []
        if self.kind == "ratio_bound" and self.factor is not None:
            parts.append(f"within a factor {_fmt(self.factor)} of the paper")
        if self.kind == "order_of_magnitude":
            parts.append(f"within {_fmt(self.decades or 0)} decade(s) of the paper")
        if self.above is not None:
            parts.append(f"above {_with_unit(_fmt(self.above), u)}")
        if self.kind == "at_least":
            parts.append(f"at least {_with_unit(_fmt(self.bound or 0), u)}")
        if self.kind == "at_most":
            parts.append(f"at most {_with_unit(_fmt(self.bound or 0), u)}")
        if self.kind == "ordering":
            parts.append(f"strictly {self.direction} in the order listed")
        if self.kind == "largest":
            parts.append(f"{self.group} has the largest value")
        return "; ".join(parts)


@dataclass(frozen=True)
class Claim:
    id: str
    source: str
    text: str
    paper: PaperValue
    ours: Derivation
    check: Check
    note: str | None = None


# ---------------------------------------------------------------------------------------------------------
# Strict loading.

class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that rejects duplicate mapping keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class _Ctx:
    """Where we are in the claims file, for error messages."""

    def __init__(self, path: Path, claim: str) -> None:
        self.path = path
        self.claim = claim

    def error(self, key: str, problem: str) -> ClaimsError:
        where = f"key '{key}': " if key else ""
        return ClaimsError(f"{self.path}: claim {self.claim}: {where}{problem}")

    def fields(self, key: str, raw: Any, required: Sequence[str], optional: Sequence[str]) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise self.error(key, f"must be a mapping, got {type(raw).__name__}")
        allowed = (*required, *optional)
        for k in raw:
            if k not in allowed:
                raise self.error(_join(key, str(k)), f"unknown key (allowed: {', '.join(allowed)})")
        for k in required:
            if k not in raw or raw[k] is None:
                raise self.error(_join(key, k), "missing")
        return raw

    def text(self, key: str, raw: Any) -> str:
        if not isinstance(raw, str) or not raw.strip():
            raise self.error(key, "must be a non-empty string")
        return raw.strip()

    def number(self, key: str, raw: Any, positive: bool = False) -> float:
        if isinstance(raw, bool) or not isinstance(raw, int | float) or math.isnan(raw):
            raise self.error(key, f"must be a number, got {raw!r}")
        if positive and raw <= 0:
            raise self.error(key, f"must be > 0, got {raw!r}")
        return float(raw)

    def choice(self, key: str, raw: Any, choices: Sequence[str]) -> str:
        if raw not in choices:
            raise self.error(key, f"must be one of {', '.join(choices)}; got {raw!r}")
        return str(raw)


def _join(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def load_claims(path: Path) -> list[Claim]:
    """Read and validate a claims file. Raises :class:`ClaimsError` naming file, claim and key."""
    path = Path(path)
    try:
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # noqa: S506 — a SafeLoader subclass
    except OSError as exc:
        raise ClaimsError(f"{path}: cannot read the claims file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ClaimsError(f"{path}: not valid YAML: {exc}") from exc
    top = _Ctx(path, "(top level)")
    if not isinstance(doc, dict):
        raise ClaimsError(f"{path}: must be a mapping with the keys version and claims")
    doc = top.fields("", doc, ["version", "claims"], [])
    if doc["version"] != 1:
        raise top.error("version", f"only version 1 is understood, got {doc['version']!r}")
    if not isinstance(doc["claims"], list) or not doc["claims"]:
        raise top.error("claims", "must be a non-empty list of claims")
    claims: list[Claim] = []
    seen: set[str] = set()
    for i, raw in enumerate(doc["claims"], 1):
        cid = raw.get("id") if isinstance(raw, dict) else None
        ctx = _Ctx(path, f"'{cid}'" if isinstance(cid, str) else f"#{i} (no id)")
        claim = _parse_claim(ctx, raw)
        if claim.id in seen:
            raise ctx.error("id", "duplicate claim id")
        seen.add(claim.id)
        claims.append(claim)
    return claims


def _parse_claim(ctx: _Ctx, raw: Any) -> Claim:
    raw = ctx.fields("", raw, ["id", "source", "text", "paper", "ours", "check"], ["note"])
    cid = ctx.text("id", raw["id"])
    if not all(c.isalnum() or c in "-_." for c in cid):
        raise ctx.error("id", "use letters, digits, '-', '_' and '.' only")
    paper = _parse_paper(ctx, raw["paper"])
    ours = _parse_derivation(ctx, raw["ours"])
    check = _parse_check(ctx, raw["check"])
    note = ctx.text("note", raw["note"]) if raw.get("note") is not None else None
    claim = Claim(cid, ctx.text("source", raw["source"]), ctx.text("text", raw["text"]), paper, ours, check,
                  note)
    _cross_validate(ctx, claim)
    return claim


def _parse_paper(ctx: _Ctx, raw: Any) -> PaperValue:
    raw = ctx.fields("paper", raw, ["unit"], ["value", "min", "max", "text"])
    unit = ctx.text("paper.unit", raw["unit"])
    if _norm_unit(unit) not in _UNITS:
        raise ctx.error("paper.unit", f"unknown unit {unit!r} (known: {', '.join(_UNIT_DISPLAY.values())})")
    value = ctx.number("paper.value", raw["value"]) if "value" in raw else None
    lo = ctx.number("paper.min", raw["min"]) if "min" in raw else None
    hi = ctx.number("paper.max", raw["max"]) if "max" in raw else None
    if (lo is None) != (hi is None):
        raise ctx.error("paper.min" if lo is None else "paper.max", "a range needs both min and max")
    if value is not None and lo is not None:
        raise ctx.error("paper.value", "give either value or min/max, not both")
    if lo is not None and hi is not None and lo > hi:
        raise ctx.error("paper.min", f"min {lo} is above max {hi}")
    text = ctx.text("paper.text", raw["text"]) if "text" in raw else None
    if value is None and lo is None and text is None:
        raise ctx.error("paper", "needs value, min/max or text")
    return PaperValue(unit=unit, value=value, min=lo, max=hi, text=text)


def _parse_filters(ctx: _Ctx, key: str, raw: Mapping[str, Any]) -> dict[str, tuple[Any, ...]]:
    out: dict[str, tuple[Any, ...]] = {}
    for col, val in raw.items():
        if col not in IDENTITY_COLUMNS:
            raise ctx.error(_join(key, str(col)),
                            f"not an identity column (filters may use: {', '.join(IDENTITY_COLUMNS)})")
        vals = tuple(val) if isinstance(val, list) else (val,)
        if not vals or any(v is None or isinstance(v, dict | list) for v in vals):
            raise ctx.error(_join(key, col), f"must be a scalar or a non-empty list of scalars, got {val!r}")
        out[col] = vals
    return out


def _parse_metric(ctx: _Ctx, key: str, raw: Any) -> tuple[str, ...]:
    names = raw if isinstance(raw, list) else [raw]
    if not names:
        raise ctx.error(key, "must name at least one metric column")
    units = set()
    for name in names:
        if not isinstance(name, str) or metric_unit(name) is None:
            raise ctx.error(key, f"{name!r} is not a metric column with a unit suffix (_us, _mpps, _mb, ...)")
        units.add(_UNITS[metric_unit(name) or ""][0])
    if len(units) > 1:
        raise ctx.error(key, f"alternatives must measure the same dimension, got {sorted(units)}")
    return tuple(names)


def _parse_selection(ctx: _Ctx, key: str, raw: Any) -> Selection:
    if not isinstance(raw, dict):
        raise ctx.error(key, f"must be a mapping of column filters, got {type(raw).__name__}")
    reserved = {k: raw[k] for k in ("file", "metric", "label") if k in raw}
    filters = _parse_filters(ctx, key, {k: v for k, v in raw.items() if k not in reserved})
    file = ctx.text(_join(key, "file"), reserved["file"]) if "file" in reserved else None
    metric = _parse_metric(ctx, _join(key, "metric"), reserved["metric"]) if "metric" in reserved else None
    label = ctx.text(_join(key, "label"), str(reserved["label"])) if "label" in reserved else None
    return Selection(filters=filters, file=file, metric=metric, label=label)


def _selection_list(ctx: _Ctx, key: str, raw: Any) -> tuple[Selection, ...]:
    items = raw if isinstance(raw, list) else [raw]
    return tuple(_parse_selection(ctx, f"{key}[{i}]" if isinstance(raw, list) else key, it)
                 for i, it in enumerate(items))


def _parse_derivation(ctx: _Ctx, raw: Any) -> Derivation:
    raw = ctx.fields("ours", raw, ["derive"],
                     ["file", "metric", "where", "of", "over", "items", "group_by", "across", "within_trial"])
    derive = ctx.choice("ours.derive", raw["derive"], DERIVATIONS)
    file = ctx.text("ours.file", raw["file"]) if "file" in raw else None
    if file is not None and not file.endswith(".csv"):
        raise ctx.error("ours.file", f"must name a CSV in the results directory, got {file!r}")
    metric = _parse_metric(ctx, "ours.metric", raw["metric"]) if "metric" in raw else None
    where = raw.get("where") or {}
    if not isinstance(where, dict):
        raise ctx.error("ours.where", "must be a mapping of column filters")
    where_f = _parse_filters(ctx, "ours.where", where)
    group_by = raw.get("group_by") or []
    group_by = [group_by] if isinstance(group_by, str) else group_by
    for g in group_by:
        if g not in IDENTITY_COLUMNS:
            raise ctx.error("ours.group_by", f"{g!r} is not an identity column")
    need = {"value": ("of",), "ratio": ("of", "over"), "reduction": ("of", "over"),
            "each": ("items",)}[derive]
    for k in ("of", "over", "items"):
        if k in need and k not in raw:
            raise ctx.error(f"ours.{k}", f"missing (derive: {derive} needs {' and '.join(need)})")
        if k not in need and k in raw:
            raise ctx.error(f"ours.{k}", f"not used by derive: {derive} (it needs {' and '.join(need)})")
    of = _parse_selection(ctx, "ours.of", raw["of"]) if "of" in raw else None
    over = _selection_list(ctx, "ours.over", raw["over"]) if "over" in raw else ()
    items = _selection_list(ctx, "ours.items", raw["items"]) if "items" in raw else ()
    if derive == "each" and len(items) < 2:
        raise ctx.error("ours.items", "needs at least two selections")
    d = Derivation(file=file, metric=metric, where=where_f, derive=derive, of=of, over=over, items=items,
                   group_by=tuple(group_by),
                   across=ctx.choice("ours.across", raw.get("across", "each"), ACROSS),
                   within_trial=ctx.choice("ours.within_trial", raw.get("within_trial", "median"),
                                           WITHIN_TRIAL))
    for i, sel in enumerate(d.selections()):
        if (sel.file or d.file) is None:
            raise ctx.error("ours.file", f"missing (selection {i} names no file either)")
        if (sel.metric or d.metric) is None:
            raise ctx.error("ours.metric", f"missing (selection {i} names no metric either)")
        clash = set(sel.filters) & set(d.where)
        if clash:
            raise ctx.error(f"ours.where.{sorted(clash)[0]}", "also filtered by a selection: say it once")
    if derive in ("ratio", "reduction", "each"):
        dims = {_UNITS[metric_unit((s.metric or d.metric or ("",))[0]) or ""][0] for s in d.selections()}
        if len(dims) > 1:
            raise ctx.error("ours.metric", f"{derive} of different dimensions {sorted(dims)}")
    return d


def _parse_check(ctx: _Ctx, raw: Any) -> Check:
    if not isinstance(raw, dict):
        raise ctx.error("check", f"must be a mapping, got {type(raw).__name__}")
    if "kind" not in raw:
        raise ctx.error("check.kind", "missing")
    kind = ctx.choice("check.kind", raw["kind"], CHECK_KINDS)
    spec = {
        "ratio_bound": ([], ["factor", "above"]),
        "order_of_magnitude": (["decades"], ["above"]),
        "at_least": (["bound"], []),
        "at_most": (["bound"], []),
        "ordering": ([], ["direction"]),
        "largest": (["group"], []),
    }[kind]
    raw = ctx.fields("check", raw, ["kind", *spec[0]], spec[1])
    factor = ctx.number("check.factor", raw["factor"], positive=True) if "factor" in raw else None
    if factor is not None and factor < 1:
        raise ctx.error("check.factor", f"a tolerance factor is ≥ 1, got {factor}")
    above = ctx.number("check.above", raw["above"]) if "above" in raw else None
    if kind == "ratio_bound" and factor is None and above is None:
        raise ctx.error("check", "ratio_bound needs factor, above, or both")
    decades = ctx.number("check.decades", raw["decades"], positive=True) if "decades" in raw else None
    bound = ctx.number("check.bound", raw["bound"]) if "bound" in raw else None
    direction = ctx.choice("check.direction", raw.get("direction", "descending"), ("descending", "ascending"))
    group = raw.get("group")
    if kind == "largest" and (group is None or isinstance(group, dict | list)):
        raise ctx.error("check.group", "must name one group value, e.g. mon")
    return Check(kind=kind, factor=factor, above=above, decades=decades, bound=bound, direction=direction,
                 group=group)


def _cross_validate(ctx: _Ctx, c: Claim) -> None:
    """The parts must fit together: units, and what each check needs from the paper and the derivation."""
    unit = _norm_unit(c.paper.unit)
    d = c.ours
    if d.derive == "ratio" and unit != "x":
        raise ctx.error("paper.unit", f"a ratio is in x (×), got {c.paper.unit!r}")
    if d.derive == "reduction" and unit != "%":
        raise ctx.error("paper.unit", f"a reduction is in %, got {c.paper.unit!r}")
    if d.derive in ("value", "each"):
        metric = (d.selections()[0].metric or d.metric or ("",))[0]
        mu = metric_unit(metric) or ""
        if _UNITS[unit][0] != _UNITS[mu][0]:
            raise ctx.error("paper.unit", f"{c.paper.unit!r} cannot be compared with metric {metric!r}")
    k = c.check.kind
    if k in ("ordering",) and d.derive != "each":
        raise ctx.error("check.kind", "ordering compares the selections of derive: each")
    if d.derive == "each" and k != "ordering":
        raise ctx.error("check.kind", "derive: each gives several values per point; only ordering uses them")
    if k == "largest" and len(d.group_by) != 1:
        raise ctx.error("ours.group_by", "largest needs exactly one group_by column to compare groups of")
    if k == "largest" and d.across != "each":
        raise ctx.error("ours.across", "largest compares the groups themselves; across must be each")
    needs_number = k == "ratio_bound" and c.check.factor is not None or k == "order_of_magnitude"
    if needs_number and not c.paper.numeric:
        raise ctx.error("paper.value", f"check {k} needs the paper's number (value or min/max)")
    if k == "order_of_magnitude" and min(c.paper.bounds) <= 0:
        raise ctx.error("paper.value", "order_of_magnitude needs a positive paper value")
    if d.derive == "reduction" and c.paper.numeric and max(c.paper.bounds) >= 100 and k == "ratio_bound":
        raise ctx.error("paper.value", "a reduction of 100 % or more has no times-lower equivalent")
    if d.across != "each" and not d.group_by:
        raise ctx.error("ours.across", "combining across groups needs group_by")


# ---------------------------------------------------------------------------------------------------------
# Verdicts.

class Status(enum.StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
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


# ---------------------------------------------------------------------------------------------------------
# Computing our numbers.

class _Frames:
    """Each results CSV read once per check."""

    def __init__(self, results_dir: Path) -> None:
        self.dir = Path(results_dir)
        self.cache: dict[str, pd.DataFrame | str] = {}

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
    metric: str | None = None
    rows: pd.DataFrame | None = None
    why_empty: str | None = None
    filtered_cols: frozenset[str] = frozenset()


def _fetch(frames: _Frames, d: Derivation, sel: Selection) -> _Rows:
    file = sel.file or d.file or ""
    got = _Rows(sel=sel, file=file)
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
    candidates = sel.metric or d.metric or ()
    present = [m for m in candidates if m in df.columns]
    if not present:
        got.why_empty = f"{file} has no column {' or '.join(candidates)}"
        return got
    mask = pd.Series(True, index=df.index)
    for col, vals in filters.items():
        mask &= _mask(df, col, vals)
    sub = df[mask]
    for m in present:  # the first alternative that has values for these rows
        vals = pd.to_numeric(sub[m], errors="coerce")
        if vals.notna().any():
            rows = sub[vals.notna()].copy()
            rows[m] = vals[vals.notna()]
            got.metric, got.rows = m, rows
            return got
    what = ", ".join(f"{k}={'|'.join(map(str, v))}" for k, v in filters.items()) or "any rows"
    got.why_empty = f"no rows of {file} with {what} and a value for {' or '.join(present)}"
    return got


_REDUCE: dict[str, Callable[[pd.Series], float]] = {
    "median": lambda s: float(s.median()), "mean": lambda s: float(s.mean()),
    "max": lambda s: float(s.max()), "min": lambda s: float(s.min()),
}

Key = tuple[tuple[str, Any], ...]


def _aggregate(got: _Rows, keys: Sequence[str], within_trial: str) -> dict[Key, float]:
    """Per group key: reduce rows within each trial, then the median over trials."""
    assert got.rows is not None and got.metric is not None
    df = got.rows
    cols = [k for k in keys if k in df.columns]
    trial = [TRIAL_COLUMN] if TRIAL_COLUMN in df.columns else []
    out: dict[Key, float] = {}
    if not cols:
        groups: list[tuple[Any, pd.DataFrame]] = [((), df)]
    else:
        groups = list(df.groupby(cols, dropna=False, sort=True))
    for gkey, gdf in groups:
        gkey = gkey if isinstance(gkey, tuple) else (gkey,)
        key = tuple((c, _key_value(v)) for c, v in zip(cols, gkey, strict=True))
        if trial:
            per_trial = gdf.groupby(trial, dropna=False)[got.metric].agg(_REDUCE[within_trial])
        else:
            per_trial = pd.Series([_REDUCE[within_trial](gdf[got.metric])])
        out[key] = float(per_trial.median())
    return out


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
    """One of our values: the point it belongs to (group key), the denominator it is against, the value."""

    key: Key
    vs: str
    value: float

    @property
    def label(self) -> str:
        return _label(self.key, self.vs)


@dataclass
class _Computed:
    """Our values for one claim. ``points`` are checked one by one; ``vectors`` (ordering) per point."""

    unit: str
    points: list[_Point] = field(default_factory=list)
    vectors: list[tuple[Key, list[tuple[str, float]]]] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # what is still to be measured
    combine_partial: bool = False  # an across-combination computed from only some of its groups
    notes: list[str] = field(default_factory=list)


def _to_paper_unit(c: Claim, f: _Rows) -> float:
    """Factor from the metric's unit to the paper's unit (for value / each derivations)."""
    return _convert(1.0, metric_unit(f.metric or "") or "", _norm_unit(c.paper.unit))


def _to_base_unit(f: _Rows) -> float:
    """Factor from the metric's unit to the base unit of its dimension (so a ratio of µs and ms is right)."""
    unit = metric_unit(f.metric or "") or ""
    base = next(u for u, (dim, fac) in _UNITS.items() if dim == _UNITS[unit][0] and fac == 1.0)
    return _convert(1.0, unit, base)


def _compute(c: Claim, frames: _Frames) -> tuple[_Computed | None, str | None]:
    """Our values, or (None, why not measured)."""
    d = c.ours
    fetched = [_fetch(frames, d, s) for s in d.selections()]
    if all(f.rows is None for f in fetched):
        return None, "; ".join(dict.fromkeys(f.why_empty or "" for f in fetched))
    strata, pooled = _strata(fetched, d)
    keys = [*d.group_by, *strata]
    out = _Computed(unit=_norm_unit(c.paper.unit))
    if pooled:
        out.notes.append(f"pooled over {', '.join(pooled)} (not a column of every file used)")
    for f in fetched:
        if f.rows is None:
            out.missing.append(f"{f.sel.name()}: {f.why_empty}")
        elif GENERATOR_LIMITED_COLUMN in f.rows.columns and f.rows[GENERATOR_LIMITED_COLUMN].map(
                lambda x: _norm_str(x) in ("true", "1", "1.0")).any():
            out.notes.append(f"{f.sel.name()}: some rows are generator-limited (their rate is a floor)")
    have = [f for f in fetched if f.rows is not None]
    if any(f.metric != (f.sel.metric or d.metric or ("",))[0] for f in have):
        out.notes.append("metric used: " + ", ".join(f"{f.sel.name()} → {f.metric}" for f in have))
    agg = [(_aggregate(f, keys, d.within_trial) if f.rows is not None else {}) for f in fetched]
    all_keys = sorted(set().union(*(a.keys() for a in agg)), key=lambda k: [str(v) for _, v in k])

    if d.derive == "value":
        f, a = fetched[0], agg[0]
        out.points = [_Point(k, "", a[k] * _to_paper_unit(c, f)) for k in all_keys]
    elif d.derive in ("ratio", "reduction"):
        fa, a = fetched[0], agg[0]
        for fb, b in zip(fetched[1:], agg[1:], strict=True):
            vs = fb.sel.name() if len(d.over) > 1 else ""
            if fa.rows is None or fb.rows is None:
                continue  # already listed as missing
            for k in all_keys:
                if k not in a or k not in b:
                    lacking = fa if k not in a else fb
                    out.missing.append(f"{_label(k, vs) or 'point'}: no {lacking.sel.name()}")
                    continue
                num, den = a[k] * _to_base_unit(fa), b[k] * _to_base_unit(fb)
                r = num / den if den else math.inf
                out.points.append(_Point(k, vs, r if d.derive == "ratio" else 100.0 * (1.0 - r)))
    else:  # each: one vector of item values per point
        for k in all_keys:
            vec = []
            for f, a in zip(fetched, agg, strict=True):
                if k in a:
                    vec.append((f.sel.name(), a[k] * _to_paper_unit(c, f)))
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
    the group_by columns)."""
    by: dict[tuple[Key, str], list[float]] = {}
    for p in out.points:
        by.setdefault((_without(p.key, c.ours.group_by), p.vs), []).append(p.value)
    out.combine_partial = bool(out.missing)
    out.notes.append(f"{c.ours.across} over {', '.join(c.ours.group_by)} of: "
                     + "; ".join(f"{p.label} {_fmt(p.value)}" for p in out.points))
    out.points = [_Point(k, vs, _COMBINE[c.ours.across](vals)) for (k, vs), vals in by.items()]


# ---------------------------------------------------------------------------------------------------------
# Checking.

def _times_lower(percent: float) -> float:
    """A reduction of p % as "times lower" (b/a): 80 % → 5×, 99 % → 100×."""
    return math.inf if percent >= 100 else 1.0 / (1.0 - percent / 100.0)


def _check_point(c: Claim, v: float) -> str | None:
    """None when the value satisfies the check, else why not."""
    k, chk, p = c.check.kind, c.check, c.paper
    u = _UNIT_DISPLAY.get(_norm_unit(p.unit), p.unit)
    if math.isnan(v):
        return "not a number"
    if chk.above is not None and not v > chk.above:
        return f"{_with_unit(_fmt(v), u)} is not above {_with_unit(_fmt(chk.above), u)}"
    if k == "ratio_bound" and chk.factor is not None:
        lo, hi = p.bounds
        ours = v
        if c.ours.derive == "reduction":  # compare "times lower", where percentages near 100 are spread out
            lo, hi, ours = _times_lower(lo), _times_lower(hi), _times_lower(v)
        if not (lo / chk.factor <= ours <= hi * chk.factor):
            how = " (as times lower)" if c.ours.derive == "reduction" else ""
            return (f"{_fmt(ours)} is outside [{_fmt(lo / chk.factor)}, {_fmt(hi * chk.factor)}]{how}, "
                    f"a factor {_fmt(chk.factor)} around the paper's")
    if k == "order_of_magnitude":
        lo, hi = p.bounds
        span = 10 ** (chk.decades or 0)
        if not (v > 0 and lo / span <= v <= hi * span):
            return f"{_with_unit(_fmt(v), u)} is more than {_fmt(chk.decades or 0)} decade(s) from the paper"
    if k == "at_least" and not v >= (chk.bound or 0):
        return f"{_with_unit(_fmt(v), u)} < {_with_unit(_fmt(chk.bound or 0), u)}"
    if k == "at_most" and not v <= (chk.bound or 0):
        return f"{_with_unit(_fmt(v), u)} > {_with_unit(_fmt(chk.bound or 0), u)}"
    return None


def _check_vector(c: Claim, vec: list[tuple[str, float]]) -> str | None:
    sign = 1 if c.check.direction == "descending" else -1
    u = _UNIT_DISPLAY.get(_norm_unit(c.paper.unit), c.paper.unit)
    for (na, a), (nb, b) in zip(vec, vec[1:], strict=False):
        if not sign * (a - b) > 0:
            rel = ">" if sign > 0 else "<"
            return f"{na} {_with_unit(_fmt(a), u)} is not {rel} {nb} {_with_unit(_fmt(b), u)}"
    return None


def _check_largest(c: Claim, comp: _Computed) -> tuple[list[str], int]:
    """The named group must have the largest value at every remaining point (stratum)."""
    col = c.ours.group_by[0]
    strata: dict[tuple[Key, str], dict[Any, float]] = {}
    for p in comp.points:
        group = next(v for kc, v in p.key if kc == col)
        strata.setdefault((_without(p.key, [col]), p.vs), {})[group] = p.value
    failures, evaluated = [], 0
    for (key, vs), groups in strata.items():
        where = _label(key, vs)
        named = next((g for g in groups if _norm_str(g) == _norm_str(c.check.group)), None)
        if named is None:
            comp.missing.append(f"{where or 'point'}: no {col}={c.check.group}")
            continue
        evaluated += 1
        top = max(groups, key=lambda g: groups[g])
        if top != named:
            failures.append(f"{where + ': ' if where else ''}{top} {_fmt(groups[top])} is above "
                            f"{named} {_fmt(groups[named])}")
    return failures, evaluated


def _evaluate(c: Claim, comp: _Computed) -> tuple[Status, str, str, list[tuple[str, float]]]:
    """(status, our value for display, detail, labelled values)."""
    u = _UNIT_DISPLAY.get(comp.unit, comp.unit)
    failures: list[str] = []
    evaluated = 0
    if c.check.kind == "ordering":
        values = [(_label(k) + (", " if k else "") + n, v) for k, vec in comp.vectors for n, v in vec]
        for k, vec in comp.vectors:
            if len(vec) >= 2:
                evaluated += 1
                why = _check_vector(c, vec)
                if why:
                    failures.append(f"{_label(k)}: {why}" if k else why)
        ours = _show_vectors(comp.vectors, c, u)
    else:
        values = [(p.label, p.value) for p in comp.points]
        if c.check.kind == "largest":
            failures, evaluated = _check_largest(c, comp)
            ours = _show_ranking(c, comp, u)
        else:
            if not comp.combine_partial:
                for p in comp.points:
                    evaluated += 1
                    why = _check_point(c, p.value)
                    if why:
                        failures.append(f"{p.label}: {why}" if p.label else why)
            ours = _show_points([p.value for p in comp.points], u)
    detail = []
    if failures:
        detail.append("; ".join(failures))
    if comp.missing:
        detail.append("missing: " + "; ".join(dict.fromkeys(comp.missing)))
    if comp.combine_partial:
        detail.append(f"the {c.ours.across} needs every group, so it is not judged yet")
    detail += comp.notes
    detail.append("check: " + c.check.describe(c.paper.unit))
    if c.note:
        detail.append("reading: " + c.note)
    if failures:
        status = Status.FAIL
    elif comp.missing or evaluated == 0:
        status = Status.INCOMPLETE
    else:
        status = Status.PASS
    return status, ours, "; ".join(detail), values


def _show_points(vs: Sequence[float], u: str) -> str:
    if not vs:
        return "—"
    if len(vs) == 1:
        return _with_unit(_fmt(vs[0]), u)
    lo, hi = _fmt(min(vs)), _fmt(max(vs))
    return _with_unit(lo if lo == hi else f"{lo}–{hi}", u) + f" ({len(vs)} points)"


def _show_ranking(c: Claim, comp: _Computed, u: str) -> str:
    """The groups of the first point, largest first (for `largest`)."""
    if not comp.points:
        return "—"
    col = c.ours.group_by[0]
    first = (_without(comp.points[0].key, [col]), comp.points[0].vs)
    ranked = sorted((p for p in comp.points if (_without(p.key, [col]), p.vs) == first),
                    key=lambda p: -p.value)
    shown = _with_unit(" > ".join(f"{dict(p.key)[col]} {_fmt(p.value)}" for p in ranked), u)
    n = len({(_without(p.key, [col]), p.vs) for p in comp.points})
    return shown + (f" (at {_label(*first)}; {n} points)" if n > 1 else "")


def _show_vectors(vectors: Sequence[tuple[Key, list[tuple[str, float]]]], c: Claim, u: str) -> str:
    if not vectors:
        return "—"
    rel = " > " if c.check.direction == "descending" else " < "
    key, vec = vectors[0]
    shown = _with_unit(rel.join(f"{n} {_fmt(v)}" for n, v in vec), u)
    if len(vectors) > 1:
        shown += f" (at {_label(key)}; {len(vectors)} points)"
    return shown


def _fmt(v: float) -> str:
    """Three significant digits, no exponent for everyday magnitudes."""
    if v is None or math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e7 or a < 1e-3:
        return f"{v:.3g}"
    digits = max(0, 2 - math.floor(math.log10(a)))
    s = f"{v:.{digits}f}"
    return s.rstrip("0").rstrip(".") if "." in s else s


def _with_unit(num: str, u: str) -> str:
    if u == "×":
        return f"{num}×"
    return f"{num} {u}" if u else num


# ---------------------------------------------------------------------------------------------------------
# The public API.

def check(results_dir: Path, claims_file: Path) -> list[Verdict]:
    """Every claim of ``claims_file`` against the CSVs in ``results_dir``, in the file's order."""
    claims = load_claims(Path(claims_file))
    frames = _Frames(Path(results_dir))
    return [check_claim(c, frames) for c in claims]


def check_claim(c: Claim, frames: _Frames) -> Verdict:
    comp, why = _compute(c, frames)
    paper = c.paper.display()
    if comp is None:
        return Verdict(c.id, c.source, c.text, paper, "—", Status.NOT_MEASURED, why or "no rows", ())
    status, ours, detail, values = _evaluate(c, comp)
    if not values and status is Status.INCOMPLETE:
        ours = "—"
    return Verdict(c.id, c.source, c.text, paper, ours, status, detail, tuple(values))


def exit_code(verdicts: Sequence[Verdict]) -> int:
    """1 when at least one measured claim fails, else 0 (NOT MEASURED and INCOMPLETE do not fail)."""
    return 1 if any(v.status is Status.FAIL for v in verdicts) else 0


def render(verdicts: Sequence[Verdict], width: int | None = None, details: bool = True) -> str:
    """A plain-text table (no terminal needed): id, claim, paper, ours, verdict; then why each claim that
    did not pass did not, and a one-line summary. ``width`` defaults to the terminal's (160 without one)."""
    if width is None:
        width = min(200, max(100, shutil.get_terminal_size((160, 24)).columns))
    heads = ("id", "claim", "paper", "ours", "verdict")
    rows = [(v.claim_id, f"{v.text} [{v.source}]", v.paper, v.ours, str(v.status)) for v in verdicts]
    w_id = max([len(heads[0]), *(len(r[0]) for r in rows)])
    w_verdict = max(len(s) for s in ("verdict", *Status))
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
    if details:
        notes = [v for v in verdicts if v.status is not Status.PASS]
        if notes:
            out += ["", "Why not PASS:"]
            for v in notes:
                out += textwrap.wrap(f"{v.claim_id} ({v.status}): {v.detail}", width,
                                     initial_indent="  ", subsequent_indent="      ", break_on_hyphens=False)
    out += ["", summary]
    return "\n".join(out)


def required_columns(claims: Sequence[Claim]) -> dict[str, set[str]]:
    """CSV file → the columns the claims read from it (filters, group_by and metrics): the contract between
    the experiments and this check."""
    need: dict[str, set[str]] = {}
    for c in claims:
        d = c.ours
        for s in d.selections():
            cols = need.setdefault(s.file or d.file or "", set())
            cols |= set(d.where) | set(s.filters) | set(d.group_by)
            cols |= set(s.metric or d.metric or ())
    return need
