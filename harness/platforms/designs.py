"""The design registry: a platform is four choices (DESIGN.md section 3), and every named platform that runs
NFs is one entry here.

A :class:`Design` is a point in the space (startup, state, chaining, scaling). Each axis has a closed set of
values (:data:`AXES`), each named by its mechanism where a name exists, with what it means, the system it
comes from and how serpensd is told (one option per axis).

:data:`REGISTRY` names the designs the harness runs: the paper's full systems (``serpens``, ``fission``,
``snf``, ``sand``) and single-axis variants, each Serpens with exactly one axis changed and named so that it
cannot be taken for the system it borrows from (``fission-state`` is Fission's state management on
Serpens, not Fission). A new design is one :class:`Entry` in :data:`REGISTRY`. docs/baselines.md cites,
for every full system, where each of its axis values comes from.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from harness.platforms.base import PlatformError


class DesignError(PlatformError):
    """A design names an axis value that does not exist, or a registry name is unknown."""


@dataclass(frozen=True)
class AxisValue:
    """One value of one axis: what it means, where it comes from, and what serpensd is given for it."""

    meaning: str
    origin: str               # the system(s) whose mechanism it is
    serpensd: str             # the value of the axis' serpensd option (docs: serpensd's own name)
    implemented: bool = True  # False: declared (a design may name it) but the mechanism is not built yet


AXES: dict[str, dict[str, AxisValue]] = {
    "startup": {
        "exec": AxisValue("fork + exec a fresh runtime per instance (cold start: EAL init, then the NFs)",
                          "cold start (Fission's newdeploy executor, Fig. 11a's Exec)", "exec"),
        "fork": AxisValue("fork the instance from a per-SFC zygote that has the NFs loaded and initialised",
                          "SAND", "fork"),
        "load": AxisValue("a pre-initialised pooled process dlopens the NFs on demand", "SOCK", "load"),
        "serpens": AxisValue("a pooled process memory-maps the NFs' images from shared memory", "Serpens",
                             "serpens"),
        "thread": AxisValue("a new thread in a running instance (scale up)", "Photons", "thread"),
        "snapshot": AxisValue("restore a process image from a snapshot", "Catalyzer", "snapshot"),
    },
    "state": {
        "serpens": AxisValue("every table in the local State Manager (shared memory, a long-running daemon)",
                             "Serpens", "serpens"),
        "remote": AxisValue("every table in the remote store (Redis), one pipelined round trip per NF "
                            "per batch each way", "Fission", "fission"),
        "snf": AxisValue("per-flow tables local to the instance, global tables in the remote store", "SNF",
                         "snf"),
    },
    "chaining": {
        "consolidated": AxisValue("the whole SFC in one instance: function calls over a label array",
                                  "Serpens", "consolidated"),
        "local-proxy": AxisValue("one process per NF; a per-server proxy delivers every hop", "SAND",
                                 "local-proxy"),
        "global-proxy": AxisValue("one process per NF; one proxy for the whole deployment, crossed between "
                                  "every two NFs", "Fission", "global-proxy"),
    },
    # serpensd --scaling (docs/scaling.md). `shared`: only the route moves, because the state already is
    # where the new instance reaches it; the others move per-flow state kept in the instances.
    "scaling": {
        "serpens": AxisValue("scale out from the pool; state stays in shared memory, nothing migrated "
                             "(global/write state split or replicated under the State Manager's pause)",
                             "Serpens", "shared"),
        "stateless": AxisValue("scale out stateless instances; all state stays in the remote store, only "
                               "the route moves", "Fission", "shared"),
        "fork": AxisValue("more forked workers; state stays in the remote store, only the route moves",
                          "SAND", "shared"),
        "snf": AxisValue("the old instance pushes each moved flow's state straight to the new one; that "
                         "flow's packets wait for it", "SNF", "snf"),
        "opennf": AxisValue("a controller buffers the moved flows' packets, moves their state one flow at "
                            "a time (each acknowledged), then releases the buffer first (loss-free and "
                            "order-preserving)", "OpenNF", "opennf"),
        "opennf-loss-free": AxisValue("OpenNF's move, loss-free only: the new instance does not wait for "
                                      "the buffer", "OpenNF", "opennf-loss-free"),
        "s6": AxisValue("the new instance pulls a flow's state from its owner (directory lookup) on first "
                        "access; that packet waits, others proceed", "S6", "s6"),
        "chc": AxisValue("external store (Redis) with an instance-local cache: the old instance flushes "
                         "and hands over, the new one waits for the store", "CHC", "chc"),
    },
}

# serpensd's option for each axis (None: serpensd has no option for it yet; the harness enforces the value)
OPTIONS: dict[str, str | None] = {"startup": "--startup", "state": "--state-backend",
                                  "chaining": "--chaining", "scaling": "--scaling"}


@dataclass(frozen=True)
class Design:
    """A point in the design space. Every value must be one of :data:`AXES`'s."""

    startup: str
    state: str
    chaining: str
    scaling: str

    def __post_init__(self) -> None:
        for axis in AXES:
            value = getattr(self, axis)
            if value not in AXES[axis]:
                raise DesignError(f"unknown {axis} value {value!r}; known {axis} values: "
                                  f"{', '.join(AXES[axis])}")

    def value(self, axis: str) -> str:
        if axis not in AXES:
            raise DesignError(f"unknown design axis {axis!r}; the axes are {', '.join(AXES)}")
        return str(getattr(self, axis))

    def replace(self, **axes: str) -> Design:
        """This design with some axes changed (validated like any design)."""
        unknown = sorted(set(axes) - set(AXES))
        if unknown:
            raise DesignError(f"unknown design axis {unknown[0]!r}; the axes are {', '.join(AXES)}")
        return Design(**{f.name: axes.get(f.name, getattr(self, f.name)) for f in fields(self)})

    def differs(self, other: Design) -> list[str]:
        """The axes on which two designs differ, in axis order."""
        return [a for a in AXES if self.value(a) != other.value(a)]

    def serpensd_options(self) -> list[str]:
        """serpensd's options for this design: one per axis that serpensd has an option for."""
        out: list[str] = []
        for axis, option in OPTIONS.items():
            if option is not None:
                out += [option, AXES[axis][self.value(axis)].serpensd]
        return out

    @property
    def uses_remote_store(self) -> bool:
        return self.state != "serpens"

    @property
    def moves_state(self) -> bool:
        """Its scaling keeps per-flow state in the instances and moves it (not only the route)."""
        return AXES["scaling"][self.scaling].serpensd != "shared"

    @property
    def scaling_implemented(self) -> bool:
        """Scaling requests run: the value is built, and a protocol that moves state has what it moves
        state with: the router's buckets (consolidated chaining) and the State Manager for the rest."""
        if not AXES["scaling"][self.scaling].implemented:
            return False
        return not self.moves_state or (self.chaining == "consolidated" and self.state == "serpens")

    @property
    def scaling_limit(self) -> str | None:
        """Why scaling requests cannot run on this design (None: they can)."""
        if not AXES["scaling"][self.scaling].implemented:
            return f"scaling {self.scaling!r} is not implemented yet"
        if not self.scaling_implemented:
            return (f"scaling {self.scaling!r} moves per-flow state between instances by router bucket, "
                    "which needs consolidated chaining and the serpens state backend (this design has "
                    f"{self.chaining} chaining and {self.state} state)")
        return None

    @property
    def needs_redis(self) -> bool:
        """The run needs its redis-server: remote state, or CHC's external store."""
        return self.uses_remote_store or self.scaling == "chc"

    def to_json(self) -> dict[str, str]:
        return {a: self.value(a) for a in AXES}


SERPENS = Design(startup="serpens", state="serpens", chaining="consolidated", scaling="serpens")


@dataclass(frozen=True)
class Entry:
    """A registered design: its name (``--platform``), the design, and what its results rows say.

    ``system`` is the paper's system the rows stand for: the system itself for a full system, and for a
    single-axis variant the system whose mechanism it borrows (its ``varies`` axis says which one)."""

    name: str
    design: Design
    system: str
    varies: str | None = None  # the one axis on which a variant differs from Serpens; None: a full system
    label: str = ""            # how plots name it

    @property
    def full_system(self) -> bool:
        return self.varies is None


def _variant(name: str, system: str, label: str, **axis: str) -> Entry:
    (varied,) = axis
    return Entry(name, SERPENS.replace(**axis), system, varies=varied, label=label)


# Registration order is the paper's order of platforms in its figures (Fission, SNF, SAND, ..., Serpens).
REGISTRY: dict[str, Entry] = {e.name: e for e in (
    # the full systems (docs/baselines.md: each value with its source)
    Entry("fission", Design(startup="load", state="remote", chaining="global-proxy", scaling="stateless"),
          "fission", label="Fission"),
    Entry("snf", Design(startup="load", state="snf", chaining="global-proxy", scaling="snf"), "snf",
          label="SNF"),
    Entry("sand", Design(startup="fork", state="remote", chaining="local-proxy", scaling="fork"), "sand",
          label="SAND"),
    Entry("serpens", SERPENS, "serpens", label="Serpens"),
    # one axis changed (Fig. 12: state; Fig. 13: chaining; startup for ad-hoc comparisons)
    _variant("fission-state", "fission", "Fission state (remote)", state="remote"),
    _variant("snf-state", "snf", "SNF state (global remote)", state="snf"),
    _variant("fission-chaining", "fission", "Fission chaining (global proxy)", chaining="global-proxy"),
    _variant("sand-chaining", "sand", "SAND chaining (local proxy)", chaining="local-proxy"),
    _variant("exec-startup", "exec", "Exec startup (cold start)", startup="exec"),
    _variant("fork-startup", "sand", "Fork startup (SAND)", startup="fork"),
    _variant("load-startup", "sock", "Load startup (SOCK)", startup="load"),
    _variant("snapshot-startup", "catalyzer", "Snapshot startup (Catalyzer-style)", startup="snapshot"),
    # Fig. 14: scaling (the state-moving protocols, with per-flow state in the instances)
    _variant("opennf-scaling", "opennf", "OpenNF", scaling="opennf"),
    _variant("opennf-loss-free-scaling", "opennf", "OpenNF (loss-free only)", scaling="opennf-loss-free"),
    _variant("s6-scaling", "s6", "S6", scaling="s6"),
    _variant("chc-scaling", "chc", "CHC", scaling="chc"),
    _variant("snf-scaling", "snf", "SNF", scaling="snf"),
)}

# The systems Fig. 15 compares, in the paper's order.
FULL_SYSTEMS: tuple[str, ...] = tuple(n for n, e in REGISTRY.items() if e.full_system)


def entry(name: str) -> Entry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise DesignError(f"unknown design {name!r}; registered designs: {', '.join(REGISTRY)}") from None


def variants(axis: str) -> list[str]:
    """The registered single-axis variants on ``axis``, in registration order."""
    if axis not in AXES:
        raise DesignError(f"unknown design axis {axis!r}; the axes are {', '.join(AXES)}")
    return [n for n, e in REGISTRY.items() if e.varies == axis]


def find(design: Design) -> str | None:
    """The registered name of a design, if it has one."""
    return next((n for n, e in REGISTRY.items() if e.design == design), None)


def row_identity(name: str, axis: str | None = None) -> dict[str, str]:
    """The ``system``, ``design`` and ``mechanism`` columns of a row measured on the platform ``name``.

    ``mechanism`` is the value on the axis an experiment compares (``axis``; a variant's own axis when
    none is given), empty for a full system compared as a whole. A platform that is not a design (the
    wire) has its own name as ``system`` and no design."""
    if name not in REGISTRY:
        return {"system": name, "design": "", "mechanism": ""}
    e = REGISTRY[name]
    axis = axis or e.varies
    return {"system": e.system, "design": name, "mechanism": e.design.value(axis) if axis else ""}


__all__ = ["AXES", "FULL_SYSTEMS", "OPTIONS", "REGISTRY", "SERPENS", "AxisValue", "Design", "DesignError",
           "Entry", "entry", "find", "row_identity", "variants"]
