"""The claims file: the paper's quantitative claims, as typed objects, loaded strictly.

``experiments/claims.yaml`` lists every quantitative claim of the Serpens paper: where it is made, what it
says, the paper's number (:class:`PaperValue`), how *our* number is computed from ``results/<target>.csv``
(:class:`Derivation`, its rows picked by :class:`Selection` s, with :class:`Companion` s shown next to it)
and how the two are compared (:class:`Check`); each entry becomes a :class:`Claim`. The file's header
documents every key.

:func:`load_claims` reads it strictly, so that a typo cannot quietly change what is checked:

* the YAML itself must parse, with no duplicate mapping key (PyYAML would silently keep the last one);
* every mapping may hold only its known keys, and must hold its required ones; every value must be of the
  right kind (non-empty string, number, one of a fixed set of choices), and claim ids must be unique;
* filters and ``group_by`` may only name identity columns (:data:`IDENTITY_COLUMNS`), and metrics must be
  columns whose name ends in a unit (harness.units);
* the parts must fit together (:func:`_cross_validate`): units of the paper and of our metric, what each
  derivation and each check needs.

Any violation is a :class:`ClaimsError` naming the file, the claim and the key. Computing our numbers and
judging them is harness.claims's concern.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# harness.units holds these; imported under the private names this code used before they moved there.
from harness.units import UNIT_DISPLAY as _UNIT_DISPLAY
from harness.units import UNITS as _UNITS
from harness.units import fmt as _fmt
from harness.units import metric_unit
from harness.units import norm_unit as _norm_unit
from harness.units import with_unit as _with_unit

# Identity columns of a results CSV (harness.results.COLUMNS declares them with their meaning). Filters and
# group_by may only name these; every one of them that varies within a selection becomes a grouping column.
IDENTITY_COLUMNS: tuple[str, ...] = (
    "experiment", "platform", "system", "design", "mechanism", "workload", "frame_size_b", "flows",
    "flows_workload", "chain_length", "n_instances", "n_nfs", "load_fraction", "generator", "move", "phase",
)


# ---------------------------------------------------------------------------------------------------------
# The claims file, as typed objects.

class ClaimsError(ValueError):
    """The claims file is malformed. The message names the file, the claim and the key."""


DERIVATIONS = ("value", "ratio", "reduction", "each")
ACROSS = ("each", "min", "max", "mean", "median", "gmean")
WITHIN_TRIAL = ("median", "mean", "max", "min")
CHECK_KINDS = ("ratio_bound", "order_of_magnitude", "at_least", "at_most", "between", "ordering", "largest")
# A claim on a mean latency always shows the median next to it.
MEAN_LATENCY, P50_LATENCY = "latency_mean_us", "latency_p50_us"


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
class Companion:
    """A metric computed like ours and shown next to it, never judged (p50 next to a mean)."""

    metric: str
    within_trial: str | None = None   # None: the claim's own
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or self.metric


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
    capacity: str | None = None            # a ratio judged on this metric where every side has it
    also: tuple[Companion, ...] = ()

    def selections(self) -> list[Selection]:
        return [s for s in (self.of, *self.over, *self.items) if s is not None]

    def metrics(self) -> set[str]:
        return set(self.metric or ()).union(*(s.metric or () for s in self.selections()))

    def companions(self) -> tuple[Companion, ...]:
        """``also``, with the p50 added in front when the claim uses the mean latency."""
        extra = ()
        if MEAN_LATENCY in self.metrics() and all(a.metric != P50_LATENCY for a in self.also):
            extra = (Companion(P50_LATENCY, label="p50"),)
        return extra + self.also


@dataclass(frozen=True)
class Check:
    kind: str
    factor: float | None = None
    above: float | None = None
    decades: float | None = None
    bound: float | None = None
    low: float | None = None     # between: inclusive bounds, in the paper's unit
    high: float | None = None
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
        if self.kind == "between":
            lo, hi = _with_unit(_fmt(self.low or 0), u), _with_unit(_fmt(self.high or 0), u)
            parts.append(f"between {lo} and {hi}")
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
    from harness.config import ConfigError, read_input_file
    path = Path(path)
    try:   # a regular file of bounded size: a FIFO or a device is one line, not a hang (issue 13)
        raw = read_input_file(path, "the claims file")
    except ConfigError as exc:
        raise ClaimsError(str(exc)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ClaimsError(f"{path}: not a claims file: not UTF-8 text (byte {exc.start})") from None
    try:
        doc = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 — a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ClaimsError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    except (RecursionError, ValueError, TypeError, OverflowError) as exc:
        raise ClaimsError(f"{path}: not usable as a claims file: {type(exc).__name__}: {exc}") from None
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
                     ["file", "metric", "where", "of", "over", "items", "group_by", "across", "within_trial",
                      "capacity", "also"])
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
    capacity = None
    if "capacity" in raw:
        capacity = _parse_metric(ctx, "ours.capacity", raw["capacity"])
        if len(capacity) != 1:
            raise ctx.error("ours.capacity", "names one metric column")
    also = _parse_also(ctx, raw["also"]) if "also" in raw else ()
    d = Derivation(file=file, metric=metric, where=where_f, derive=derive, of=of, over=over, items=items,
                   group_by=tuple(group_by),
                   across=ctx.choice("ours.across", raw.get("across", "each"), ACROSS),
                   within_trial=ctx.choice("ours.within_trial", raw.get("within_trial", "median"),
                                           WITHIN_TRIAL),
                   capacity=capacity[0] if capacity else None, also=also)
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
    dim = _UNITS[metric_unit((d.selections()[0].metric or d.metric or ("",))[0]) or ""][0]
    for key, extra in (("ours.capacity", d.capacity), *(("ours.also", a.metric) for a in d.also)):
        if extra is not None and _UNITS[metric_unit(extra) or ""][0] != dim:
            raise ctx.error(key, f"{extra!r} is not of the claim's dimension ({dim})")
    if d.capacity is not None and derive != "ratio":
        raise ctx.error("ours.capacity", f"only a ratio has an instance-capacity counterpart, not {derive}")
    return d


def _parse_also(ctx: _Ctx, raw: Any) -> tuple[Companion, ...]:
    """``also``: metric columns shown next to ours, each a name or {metric, within_trial, label}."""
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for i, it in enumerate(items):
        key = f"ours.also[{i}]" if isinstance(raw, list) else "ours.also"
        if isinstance(it, str):
            out.append(Companion(_parse_metric(ctx, key, it)[0]))
            continue
        it = ctx.fields(key, it, ["metric"], ["within_trial", "label"])
        within = ctx.choice(_join(key, "within_trial"), it["within_trial"], WITHIN_TRIAL) \
            if "within_trial" in it else None
        label = ctx.text(_join(key, "label"), str(it["label"])) if "label" in it else None
        out.append(Companion(_parse_metric(ctx, _join(key, "metric"), it["metric"])[0], within, label))
    return tuple(out)


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
        "between": (["min", "max"], []),
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
    low = ctx.number("check.min", raw["min"]) if "min" in raw else None
    high = ctx.number("check.max", raw["max"]) if "max" in raw else None
    if low is not None and high is not None and low > high:
        raise ctx.error("check.min", f"min {low:g} is above max {high:g}")
    direction = ctx.choice("check.direction", raw.get("direction", "descending"), ("descending", "ascending"))
    group = raw.get("group")
    if kind == "largest" and (group is None or isinstance(group, dict | list)):
        raise ctx.error("check.group", "must name one group value, e.g. mon")
    return Check(kind=kind, factor=factor, above=above, decades=decades, bound=bound, low=low, high=high,
                 direction=direction, group=group)


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
