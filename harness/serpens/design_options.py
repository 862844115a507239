"""A design's serpensd options, for the serpensd binary at hand.

:meth:`Design.serpensd_options` is the design as serpensd's target command line: ``--startup``,
``--state-backend`` and ``--chaining``, one option per axis (scaling has no option yet). A serpensd built
before an axis got its option cannot be told that axis; it runs the one mechanism it has. So the options
are fitted to the options the binary names (:func:`usage_options`):

* an axis whose option the binary has: the option, always (never left to serpensd's default);
* an axis whose option the binary lacks: nothing, if the design's value is the only mechanism that binary
  has (chaining ``consolidated``; startup through the older ``--pool``/``--nf-loader`` pair: ``serpens`` is a
  pool with shared-memory images, ``load`` a pool with dlopen, ``exec`` no pool); otherwise a
  :class:`PlatformError` saying which option the design needs, never a silent substitute.

What was implied rather than passed is returned with the options, and the platform records it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from harness.platforms.base import PlatformError
from harness.platforms.designs import AXES, OPTIONS, Design

_USAGE_START = b"usage: serpensd"
_cache: dict[tuple[str, int, int], frozenset[str]] = {}

# What a serpensd without an axis' option does on that axis, and so the only value it can run.
BUILTIN = {"chaining": "consolidated", "scaling": "serpens"}  # scaling: serpensd's `shared`


def usage_options(serpensd: Path) -> frozenset[str]:
    """The long options (``--chaining``, ...) serpensd's text names, read from the binary itself: serpensd
    parses its options only after ``rte_eal_init``, so asking it would start a DPDK primary. Every
    ``--option`` string in the binary counts (its usage and its error messages name them), however the usage
    text is split into C strings; a DPDK string such as ``--file-prefix`` is harmless, since only the axes'
    options are looked up."""
    st = os.stat(serpensd)
    key = (str(serpensd), st.st_mtime_ns, st.st_size)
    if key not in _cache:
        data = Path(serpensd).read_bytes()
        if data.find(_USAGE_START) < 0:
            raise PlatformError(f"{serpensd}: no usage text found; is it serpensd? (run `make build`)")
        _cache[key] = frozenset(m.decode() for m in re.findall(rb"--[a-z][a-z-]*[a-z]", data))
    return _cache[key]


def design_options(design: Design, supported: frozenset[str] | None, pool: int
                   ) -> tuple[list[str], dict[str, str]]:
    """serpensd's options for ``design`` (``supported``: the binary's usage options; None: every option of
    :data:`OPTIONS` exists), with ``pool`` runtimes pre-launched for a pooled startup. Returns the options
    and {axis: how it was conveyed} for axes serpensd could not be told directly."""
    def has(option: str) -> bool:
        return supported is None or option in supported

    args: list[str] = []
    implied: dict[str, str] = {}
    for axis, option in OPTIONS.items():
        value = design.value(axis)
        if axis == "scaling" and not design.scaling_implemented:
            implied[axis] = (f"{value} is not runnable with this design ({design.chaining} chaining, "
                             f"{design.state} state): instances are fixed at deployment, scaling requests "
                             "are refused")
            continue
        if option is not None and has(option):
            args += [option, AXES[axis][value].serpensd]
        elif axis == "startup":
            legacy = _startup_without_option(value, pool)
            args += legacy
            implied[axis] = f"serpensd has no {option} option; {value} is conveyed as {' '.join(legacy)}"
        elif value == BUILTIN.get(axis):
            implied[axis] = (f"serpensd has no {option} option; {value} is the only {axis} it has"
                             if option else f"serpensd has no {axis} option; {value} is what it does")
        elif option is None:
            implied[axis] = (f"{value} is not implemented yet: instances are fixed at deployment, "
                             "scaling requests are refused")
        else:
            raise PlatformError(f"{option} {AXES[axis][value].serpensd} is needed (the design's {axis} is "
                                f"{value}), but this serpensd has no {option} option; rebuild it with the "
                                f"{axis} axis (`make build`)")
    if design.value("startup") in ("serpens", "load") and has("--pool"):
        if pool < 1:
            raise PlatformError(f"platforms.serpens.pool is {pool}, but startup {design.startup} starts "
                                "instances from a pool of pre-launched runtimes: set it to 1 or more")
        if "--pool" not in args:
            args += ["--pool", str(pool)]
    return args, implied


def _startup_without_option(method: str, pool: int) -> list[str]:
    """A serpensd that predates ``--startup`` chose its start-up from the pool size and the NF loader."""
    if method == "exec":
        return ["--pool", "0"]
    if method in ("serpens", "load"):
        if pool < 1:
            raise PlatformError(f"platforms.serpens.pool is {pool}, but startup {method} starts instances "
                                "from a pool of pre-launched runtimes: set it to 1 or more")
        return ["--pool", str(pool), "--nf-loader", "shm" if method == "serpens" else "dlopen"]
    raise PlatformError(f"--startup {method} is needed, but this serpensd has no --startup option; rebuild "
                        "it with the startup axis (`make build`)")
