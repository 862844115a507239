"""Service function chains for the control plane: Fig. 8's chain / distribute / aggregate, SFC specs and
SFC files.

An SFC is a graph of deployed NFs (docs/serpens-control.md, ``deploy_sfc``). In JSON it is a list whose
elements are NF deployment names (``chain``) or ``{"distribute": [branch, ...], "selector": "<nf>.<sel>"}``:
the selector, exported by an NF object (nf.h: SP_SELECTOR), maps the previous NF's verdict to a branch; a
branch is an NF name or a list of names; the element after a distribute is where the branches join.
Python builds the same graph with the paper's three calls::

    graph = chain("fw", distribute("ids", "mon", selector="fw.suspicious"), aggregate("ids", "mon"), "nat")
    graph.to_json() == ["fw", {"distribute": ["ids", "mon"], "selector": "fw.suspicious"}, "nat"]

``aggregate`` names the NFs whose packets merge; it must follow a distribute and name the last NF of each
of its branches. It adds nothing to the JSON (the join is implicit in what comes next), so writing it is
optional, exactly as the protocol allows; writing it makes the merge explicit and checked.

:class:`SfcSpec` is what a platform deploys: the SFC's name, its gateway match, its graph, and the NFs the
graph names (deployment name → (NF type, arguments)). An NF type is the name of an NF object in
``platforms.serpens.nfs_dir`` (``fw`` → ``build/native/nfs/fw.so``) or a path to a ``.so``.

SFC files (``harness run --sfc my-sfcs.yaml``, experiments) are YAML, validated strictly: a key that is not
known is an error naming the file and the key, like the configuration::

    nfs:                                   # optional: deployment name -> type and arguments
      fw: {type: fw, args: {suspicious: "udp,16.0.0.0/24,*,*,*"}}
      nat: {args: {external_ip: 198.18.1.1}}         # type defaults to the deployment name
    sfcs:
      - name: web
        match: {dst: 48.0.0.0/8}                     # optional: dst, src (prefixes), proto, dport
        chain: [fw, {distribute: [ids, mon], selector: fw.suspicious}, {aggregate: [ids, mon]}, nat]
        tenant: alice                                # optional, default "default" (docs/security.md)

An SFC belongs to a tenant, and so do the NFs it deploys: an NF deployment is used by SFCs of one tenant
only (serpensd refuses the others), and its State Manager tables are that tenant's.

A name used in a chain but not declared under ``nfs:`` is an NF of that type with its default arguments
(``platforms.serpens.nfs.<type>``), if the type is known there.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config import Config, ConfigError, read_input_file, repo_path, yaml_text

DEFAULT_SELECTOR = "fw.suspicious"
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,63}$")  # no '/' (tables are name/table), no '.' (nf.selector)
TENANT_RE = re.compile(r"^[A-Za-z0-9_-]{1,31}$")  # serpensd's sm_tenant_valid (native/serpens/state.h)
DEFAULT_TENANT = "default"
MATCH_KEYS = ("dst", "src", "proto", "dport")
PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1}


class SfcError(ConfigError):
    """An SFC, its graph or an SFC file is wrong; the message says where and what was expected."""


# serpensd's fixed tables (native/serpens/ctl.h). What exceeds them it refuses only once it runs, one NF
# deployment at a time (a 1000-NF chain once failed at its 65th NF); :func:`check_limits` says it first.
MAX_SFC_POSITIONS = 16   # SP_MAX_POS: NFs in one SFC's graph, every branch's counted
MAX_BRANCHES = 8         # SP_MAX_BRANCH: branches of one distribute
MAX_SFCS = 32            # SP_MAX_SFCS
# Every NF of an SFC is in its graph, so SFCs deploy at most MAX_SFCS * MAX_SFC_POSITIONS = 512 NFs:
# serpensd's SP_MAX_NFS holds them all.


# --------------------------------------------------------------------------------------------------------
# Fig. 8: chain, distribute, aggregate

@dataclass(frozen=True)
class Distribute:
    """Each packet goes to one branch, chosen by ``selector`` from the previous NF's verdict."""

    branches: tuple[tuple[str, ...], ...]
    selector: str = DEFAULT_SELECTOR

    def to_json(self) -> dict[str, Any]:
        return {"distribute": [b[0] if len(b) == 1 else list(b) for b in self.branches],
                "selector": self.selector}


@dataclass(frozen=True)
class Aggregate:
    """Packets of the named NFs (the ends of the preceding distribute's branches) merge here."""

    nfs: tuple[str, ...]


Element = str | Distribute | Aggregate


@dataclass(frozen=True)
class Chain:
    """An SFC graph: NFs called in sequence, with distribute/aggregate for dynamic SFCs (Fig. 6b)."""

    elements: tuple[Element, ...]

    def validate(self, where: str = "chain") -> Chain:
        """Check the graph as a whole (an NF before each distribute, aggregates after them, ...)."""
        _check_graph(self.elements, where)
        return self

    def to_json(self) -> list[Any]:
        self.validate()
        return [e if isinstance(e, str) else e.to_json()
                for e in self.elements if not isinstance(e, Aggregate)]

    def nf_names(self) -> list[str]:
        """Every NF deployment name the graph uses, in order of first appearance."""
        seen: dict[str, None] = {}
        for e in self.elements:
            if isinstance(e, str):
                seen.setdefault(e, None)
            elif isinstance(e, Distribute):
                for b in e.branches:
                    for n in b:
                        seen.setdefault(n, None)
        return list(seen)

    def positions(self) -> int:
        """How many NFs serpensd's flattened graph of this chain holds: each NF once per place it appears,
        every branch's counted."""
        return sum(1 if isinstance(e, str) else sum(len(b) for b in e.branches) if isinstance(e, Distribute)
                   else 0 for e in self.elements)

    def __iter__(self):  # noqa: ANN204 — lets chain(...) nest and be passed where a list is expected
        return iter(self.elements)


def chain(*elements: str | Chain | Distribute | Aggregate | Sequence[Any]) -> Chain:
    """``chain(nf1, nf2, ...)``: the NFs in order. Nested chains are flattened; an element may also be
    ``distribute(...)`` or ``aggregate(...)``."""
    out: list[Element] = []
    for e in elements:
        if isinstance(e, Chain):
            out.extend(e.elements)
        elif isinstance(e, (str, Distribute, Aggregate)):
            out.append(e)
        else:
            raise SfcError(f"chain: an element must be an NF name, chain(), distribute() or aggregate(), "
                           f"got {e!r}")
    return Chain(tuple(out))


def distribute(*branches: str | Chain | Sequence[str], selector: str = DEFAULT_SELECTOR) -> Distribute:
    """``distribute(nf1, nf2, ..., selector)``: one branch per argument; a branch is an NF name or a chain
    of NF names. ``selector`` is "<nf>.<selector>", exported by that NF object."""
    out: list[tuple[str, ...]] = []
    for i, b in enumerate(branches):
        if isinstance(b, str):
            out.append((b,))
            continue
        names = tuple(b.elements) if isinstance(b, Chain) else tuple(b) if isinstance(b, Sequence) else None
        if not names or not all(isinstance(n, str) for n in names):
            raise SfcError(f"distribute: branch {i} must be an NF name or a non-empty chain of NF names "
                           f"(no distribute inside a branch), got {b!r}")
        out.append(names)
    if len(out) < 2:
        raise SfcError(f"distribute: needs at least two branches, got {len(out)}")
    if not isinstance(selector, str) or not re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z_][A-Za-z0-9_]*", selector):
        raise SfcError(f"distribute: selector must be '<nf>.<selector>' (e.g. {DEFAULT_SELECTOR}), "
                       f"got {selector!r}")
    for b in out:
        for n in b:
            _check_name(n, "distribute: NF name")
    return Distribute(tuple(out), selector)


def aggregate(*nfs: str) -> Aggregate:
    """``aggregate(nf1, nf2, ...)``: the branches ending in these NFs merge; the next element follows."""
    if len(nfs) < 2:
        raise SfcError(f"aggregate: needs the NFs of at least two branches, got {list(nfs)}")
    for n in nfs:
        if not isinstance(n, str):
            raise SfcError(f"aggregate: takes NF names, got {n!r}")
        _check_name(n, "aggregate: NF name")
    return Aggregate(tuple(nfs))


def _check_name(name: Any, what: str) -> None:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SfcError(f"{what} must be 1-63 letters, digits, '_' or '-', got {name!r}")


def _check_graph(elements: Sequence[Element], where: str) -> None:
    if not any(isinstance(e, (str, Distribute)) for e in elements):
        raise SfcError(f"{where}: an SFC needs at least one NF")
    nfs_so_far: list[str] = []
    for i, e in enumerate(elements):
        prev = elements[i - 1] if i > 0 else None
        if isinstance(e, str):
            _check_name(e, f"{where}[{i}]: NF name")
            nfs_so_far.append(e)
        elif isinstance(e, Distribute):
            if not isinstance(prev, str):
                raise SfcError(f"{where}[{i}]: a distribute must follow an NF (its selector reads that NF's "
                               f"verdict), not {'the start of the chain' if prev is None else repr(prev)}")
            nf = e.selector.split(".", 1)[0]
            if nf != prev:
                raise SfcError(f"{where}[{i}]: selector {e.selector!r} belongs to NF {nf!r}, but the "
                               f"distribute follows {prev!r}, whose verdict it selects on")
            for b in e.branches:
                nfs_so_far.extend(b)
        elif isinstance(e, Aggregate):
            if not isinstance(prev, Distribute):
                raise SfcError(f"{where}[{i}]: aggregate{list(e.nfs)} must directly follow a distribute")
            ends = [b[-1] for b in prev.branches]
            if sorted(e.nfs) != sorted(ends):
                raise SfcError(f"{where}[{i}]: aggregate{list(e.nfs)} must name the last NF of each branch "
                               f"of the distribute before it: {ends}")
        else:  # pragma: no cover — chain() only builds these three
            raise SfcError(f"{where}[{i}]: unknown element {e!r}")


# --------------------------------------------------------------------------------------------------------
# What a platform deploys

NfDecl = tuple[str, dict[str, str]]


@dataclass
class SfcSpec:
    """An SFC to deploy: name, gateway match, graph, and the NFs it names (deploy name → (type, args))."""

    name: str
    match: dict[str, Any] = field(default_factory=dict)
    graph: Any = None   # a Chain or a list of elements; stored as the JSON list
    nfs: dict[str, NfDecl] = field(default_factory=dict)
    tenant: str = DEFAULT_TENANT

    def __post_init__(self) -> None:
        _check_name(self.name, "SFC name")
        if not isinstance(self.tenant, str) or not TENANT_RE.match(self.tenant):
            raise SfcError(f"SFC {self.name!r}: tenant must be 1..31 characters of A-Z a-z 0-9 _ -, "
                           f"got {self.tenant!r}")
        g = self.graph
        if isinstance(g, Chain):
            self.chain = g.validate(f"SFC {self.name!r} graph")
        elif isinstance(g, Sequence) and not isinstance(g, str):
            self.chain = _chain_from_json(g, f"SFC {self.name!r} graph")
        else:
            raise SfcError(f"SFC {self.name!r}: graph must be chain(...) or a list, got {g!r}")
        self.graph = self.chain.to_json()
        self.match = check_match(self.match or {}, f"SFC {self.name!r} match")
        nfs: dict[str, NfDecl] = {}
        for dname in self.chain.nf_names():
            if dname in (self.nfs or {}):
                nf_type, args = self.nfs[dname]
            else:
                nf_type, args = dname, {}
            nfs[dname] = (str(nf_type), {str(k): _arg_text(v, f"NF {dname!r} argument {k!r}")
                                         for k, v in (args or {}).items()})
        extra = sorted(set(self.nfs or {}) - set(nfs))
        if extra:
            raise SfcError(f"SFC {self.name!r}: nfs {extra} are not used in its graph {self.graph}")
        self.nfs = nfs

    @property
    def nf_types(self) -> list[str]:
        return [nf_type_name(t) for t, _ in self.nfs.values()]

    @property
    def workload(self) -> str:
        """The SFC as a results ``workload``: NF types in graph order, e.g. "fw,mon,nat" or
        "fw,(ids|mon),nat"."""
        parts: list[str] = []
        for e in self.chain.elements:
            if isinstance(e, str):
                parts.append(nf_type_name(self.nfs[e][0]))
            elif isinstance(e, Distribute):
                parts.append("(" + "|".join(",".join(nf_type_name(self.nfs[n][0]) for n in b)
                                            for b in e.branches) + ")")
        return ",".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "match": self.match, "graph": self.graph,
                "nfs": {n: {"type": t, "args": a} for n, (t, a) in self.nfs.items()}}

    @classmethod
    def linear(cls, nf_types: str | Iterable[str], name: str | None = None,
               match: Mapping[str, Any] | None = None) -> SfcSpec:
        """A chain of NF types, e.g. "fw,mon,nat": each NF deployed under its type's name with default
        arguments; a type used more than once is numbered (fw,fw → fw1, fw2). No match: every packet."""
        types = [t.strip() for t in nf_types.split(",")] if isinstance(nf_types, str) else list(nf_types)
        if not types or any(not t for t in types):
            raise SfcError(f"an SFC is a comma-separated list of NF types such as fw,mon,nat; got "
                           f"{nf_types!r}")
        for t in types:
            _check_name(t, "NF type")
        counts = {t: types.count(t) for t in types}
        seen: dict[str, int] = {}
        names, nfs = [], {}
        for t in types:
            if counts[t] > 1:
                seen[t] = seen.get(t, 0) + 1
                dname = f"{t}{seen[t]}"
            else:
                dname = t
            names.append(dname)
            nfs[dname] = (t, {})
        return cls(name or linear_name(types), dict(match or {}), chain(*names), nfs)


def linear_name(types: Sequence[str]) -> str:
    """The generated name of a linear SFC: its types joined by '-' (fw-mon-nat). A chain too long for a name
    (1000 NFs would give 3000 characters) keeps its first types, the NF count and a hash of the whole list,
    so that two long chains never share a name."""
    name = "-".join(types)
    if NAME_RE.match(name):
        return name
    digest = hashlib.sha1(",".join(types).encode()).hexdigest()[:8]
    tail = f"-{len(types)}nfs-{digest}"
    head = name[:63 - len(tail) + 1]
    head = head.rsplit("-", 1)[0] if "-" in head else head[:-1]   # whole types only
    return f"{head}{tail}"


def nf_type_name(nf_type: str) -> str:
    """``fw`` → ``fw``; ``build/native/nfs/badflags.so`` → ``badflags``."""
    return Path(nf_type).stem if nf_type.endswith(".so") else nf_type


def nf_path(nf_type: str, nfs_dir: str | Path) -> Path:
    """The NF object of a type: ``<nfs_dir>/<type>.so``, or the type itself when it is a path to a .so
    (relative to the repository root)."""
    if nf_type.endswith(".so") or "/" in nf_type:
        return repo_path(nf_type)
    return repo_path(nfs_dir) / f"{nf_type}.so"


def effective_args(nf_type: str, args: Mapping[str, str], config: Config) -> dict[str, str]:
    """The NF type's default arguments (``platforms.serpens.nfs.<type>``) with ``args`` over them."""
    defaults = config["platforms"]["serpens"]["nfs"].get(nf_type_name(nf_type), {}) or {}
    out = {str(k): _arg_text(v, f"default argument {k!r} of NF type {nf_type!r}")
           for k, v in defaults.items()}
    out.update(args)
    return out


def check_match(match: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate a gateway match (all keys optional: dst, src prefixes; proto; dport)."""
    if not isinstance(match, Mapping):
        raise SfcError(f"{where}: must be a mapping with keys among {', '.join(MATCH_KEYS)}, got {match!r}")
    out: dict[str, Any] = {}
    for key, value in match.items():
        if key not in MATCH_KEYS:
            raise SfcError(f"{where}: unknown key {key!r}{_did_you_mean(key, MATCH_KEYS)}; "
                           f"known keys: {', '.join(MATCH_KEYS)}")
        if key in ("dst", "src"):
            try:
                out[key] = str(ipaddress.IPv4Network(str(value), strict=False))
            except ValueError:
                raise SfcError(f"{where}: {key} must be an IPv4 prefix like 48.0.0.0/8, "
                               f"got {value!r}") from None
        elif key == "proto":
            proto = PROTOCOLS.get(value.lower()) if isinstance(value, str) else value
            if isinstance(proto, bool) or not isinstance(proto, int) or not 0 <= proto <= 255:
                raise SfcError(f"{where}: proto must be 0-255 or one of {', '.join(PROTOCOLS)}, "
                               f"got {value!r}")
            out[key] = proto
        else:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
                raise SfcError(f"{where}: dport must be a port 0-65535, got {value!r}")
            out[key] = value
    return out


# An NF argument is a setting, not data (IDS patterns come from a file the argument names); serpensd reads a
# control request of at most 1 MiB, and one argument far beyond this would be refused there with a lost
# connection instead of a reason (issue 13: a 10 MB argument read as "serpensd is not running").
MAX_ARG_BYTES = 64 * 1024


def _arg_text(value: Any, what: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        text = str(value)
        if len(text.encode()) > MAX_ARG_BYTES:
            raise SfcError(f"{what} is {len(text.encode())} bytes, at most {MAX_ARG_BYTES} (an argument is a "
                           "setting: put data in a file and give its path)")
        return text
    raise SfcError(f"{what} must be a string or a number (NFs read arguments as text), got "
                   f"{value!r:.200}")


def _did_you_mean(key: Any, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(key), list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _chain_from_json(graph: Sequence[Any], where: str) -> Chain:
    """The JSON graph (or the YAML ``chain:``) as a :class:`Chain`."""
    if not isinstance(graph, Sequence) or isinstance(graph, str) or not graph:
        raise SfcError(f"{where}: must be a non-empty list of NF names and distribute/aggregate mappings, "
                       f"got {graph!r}")
    elements: list[Any] = []
    for i, e in enumerate(graph):
        here = f"{where}[{i}]"
        if isinstance(e, str):
            _check_name(e, f"{here}: NF name")
            elements.append(e)
        elif isinstance(e, Mapping) and "distribute" in e:
            _known_keys(e, ("distribute", "selector"), here)
            branches = e["distribute"]
            if not isinstance(branches, list):
                raise SfcError(f"{here}.distribute: must be a list of branches, got {branches!r}")
            try:
                elements.append(distribute(*branches, selector=e.get("selector", DEFAULT_SELECTOR)))
            except SfcError as exc:
                raise SfcError(f"{here}: {exc}") from None
        elif isinstance(e, Mapping) and "aggregate" in e:
            _known_keys(e, ("aggregate",), here)
            nfs = e["aggregate"]
            if not isinstance(nfs, list):
                raise SfcError(f"{here}.aggregate: must be a list of NF names, got {nfs!r}")
            try:
                elements.append(aggregate(*nfs))
            except SfcError as exc:
                raise SfcError(f"{here}: {exc}") from None
        else:
            keys = f" with keys {sorted(map(str, e))}" if isinstance(e, Mapping) else ""
            raise SfcError(f"{here}: must be an NF name, {{distribute: [...], selector: nf.sel}} or "
                           f"{{aggregate: [...]}}, got {e!r}{keys}")
    return chain(*elements).validate(where)


def _known_keys(m: Mapping[str, Any], known: Sequence[str], where: str) -> None:
    for k in m:
        if k not in known:
            raise SfcError(f"{where}: unknown key {k!r}{_did_you_mean(k, known)}; known keys here: "
                           f"{', '.join(known)}")


# --------------------------------------------------------------------------------------------------------
# SFC files

def load_sfc_file(path: str | Path, config: Config) -> list[SfcSpec]:
    """Read an SFC file (module docstring); every error names the file and the key."""
    path = Path(path)
    try:
        raw = read_input_file(path, "SFC file")
        data = yaml_text(raw, str(path), "an SFC file")
    except ConfigError as exc:
        raise SfcError(str(exc)) from None
    return parse_sfcs(data, config, str(path))


def parse_sfcs(data: Any, config: Config, source: str = "<sfcs>") -> list[SfcSpec]:
    known_types = set(config["platforms"]["serpens"]["nfs"])
    if not isinstance(data, Mapping):
        raise SfcError(f"{source}: the top level must be a mapping with keys 'sfcs' and optionally 'nfs'")
    _known_keys(data, ("nfs", "sfcs"), f"{source}: top level")

    declared: dict[str, NfDecl] = {}
    nfs = data.get("nfs") or {}
    if not isinstance(nfs, Mapping):
        raise SfcError(f"{source}: key 'nfs' must be a mapping of deployment name -> {{type, args}}")
    for dname, decl in nfs.items():
        where = f"{source}: key 'nfs.{dname}'"
        try:
            _check_name(dname, "NF deployment name")
        except SfcError as exc:
            raise SfcError(f"{where}: {exc}") from None
        decl = decl or {}
        if not isinstance(decl, Mapping):
            raise SfcError(f"{where} must be a mapping with keys type and args, got {decl!r}")
        for k in decl:
            if k not in ("type", "args"):
                raise SfcError(f"{source}: unknown key 'nfs.{dname}.{k}'{_did_you_mean(k, ('type', 'args'))};"
                               f" known keys here: args, type")
        nf_type = decl.get("type", dname)
        if not isinstance(nf_type, str) or not nf_type:
            raise SfcError(f"{source}: key 'nfs.{dname}.type' must be an NF type "
                           f"({', '.join(sorted(known_types))}) or a path to a .so, got {nf_type!r}")
        args = decl.get("args") or {}
        if not isinstance(args, Mapping):
            raise SfcError(f"{source}: key 'nfs.{dname}.args' must be a mapping of argument -> value, "
                           f"got {args!r}")
        try:
            declared[str(dname)] = (nf_type, {str(k): _arg_text(v, f"argument {k!r}")
                                              for k, v in args.items()})
        except SfcError as exc:
            raise SfcError(f"{source}: key 'nfs.{dname}.args': {exc}") from None

    sfcs = data.get("sfcs")
    if not isinstance(sfcs, list) or not sfcs:
        raise SfcError(f"{source}: key 'sfcs' must be a non-empty list of {{name, match, chain}}")
    specs: list[SfcSpec] = []
    names: set[str] = set()
    for i, s in enumerate(sfcs):
        where = f"{source}: key 'sfcs[{i}]'"
        if not isinstance(s, Mapping):
            raise SfcError(f"{where} must be a mapping with keys name, match, chain, got {s!r}")
        for k in s:
            if k not in ("name", "match", "chain", "tenant"):
                raise SfcError(f"{source}: unknown key 'sfcs[{i}].{k}'"
                               f"{_did_you_mean(k, ('name', 'match', 'chain', 'tenant'))}; known keys here: "
                               "chain, match, name, tenant")
        for k in ("name", "chain"):
            if k not in s:
                raise SfcError(f"{where}: missing key '{k}'")
        try:
            graph = _chain_from_json(s["chain"], "chain")
            used = graph.nf_names()
            for dname in used:
                if dname not in declared and dname not in known_types:
                    raise SfcError(f"NF {dname!r} is neither declared under 'nfs:' nor a known NF type "
                                   f"({', '.join(sorted(known_types))})")
            spec = SfcSpec(s["name"], s.get("match") or {}, graph,
                           {d: declared[d] for d in used if d in declared},
                           s.get("tenant", DEFAULT_TENANT))
        except SfcError as exc:
            raise SfcError(f"{where}: {exc}") from None
        if spec.name in names:
            raise SfcError(f"{where}: SFC name {spec.name!r} is used twice")
        names.add(spec.name)
        specs.append(spec)
    unused = sorted(set(declared) - {d for spec in specs for d in spec.nfs})
    if unused:
        raise SfcError(f"{source}: key 'nfs.{unused[0]}' declares an NF that no SFC's chain uses")
    return specs


def check_limits(specs: Sequence[SfcSpec]) -> list[SfcSpec]:
    """Refuse, in one line and before serpensd starts, SFCs beyond what one serpensd can hold."""
    if len(specs) > MAX_SFCS:
        raise SfcError(f"{len(specs)} SFCs: serpensd runs at most {MAX_SFCS} (SP_MAX_SFCS, "
                       "native/serpens/ctl.h)")
    for spec in specs:
        n = spec.chain.positions()
        if n > MAX_SFC_POSITIONS:
            raise SfcError(f"SFC {spec.name!r} has {n} NFs: serpensd runs at most {MAX_SFC_POSITIONS} in one "
                           "SFC (SP_MAX_POS, native/serpens/ctl.h)")
        for e in spec.chain.elements:
            if isinstance(e, Distribute) and len(e.branches) > MAX_BRANCHES:
                raise SfcError(f"SFC {spec.name!r}: a distribute with {len(e.branches)} branches; serpensd "
                               f"takes at most {MAX_BRANCHES} (SP_MAX_BRANCH, native/serpens/ctl.h)")
    return list(specs)


def from_cli(text: str, config: Config) -> list[SfcSpec]:
    """``--sfc``: a comma-separated chain of NF types (fw,mon,nat) or an SFC file (.yaml/.yml)."""
    if text.endswith((".yaml", ".yml")):
        return check_limits(load_sfc_file(text, config))
    return check_limits([SfcSpec.linear(text)])


def as_specs(sfc: SfcSpec | Sequence[SfcSpec] | str, config: Config) -> list[SfcSpec]:
    """What a platform's ``sfc=`` accepts: a spec, a list of specs, or --sfc text."""
    if isinstance(sfc, SfcSpec):
        return check_limits([sfc])
    if isinstance(sfc, str):
        return from_cli(sfc, config)
    specs = list(sfc)
    if not specs or not all(isinstance(s, SfcSpec) for s in specs):
        raise SfcError(f"expected SfcSpec objects, got {sfc!r}")
    return check_limits(specs)
