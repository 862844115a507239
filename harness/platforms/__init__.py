"""Platforms under test, by name: the wire (no NFs, the machine's ceiling) and every design of the registry
(harness/platforms/designs.py), each one :class:`~harness.serpens.platform.DesignPlatform` given its design.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from harness.platforms import designs
from harness.platforms.base import Platform, PlatformError
from harness.platforms.wire import WirePlatform

# What get() returns: called as factory(config, run_dir) or factory(config, run_dir, sfc=...).
PlatformFactory = Callable[..., Platform]


def _design_factory(name: str) -> PlatformFactory:
    # harness.serpens imports this package; platforms.serpens.servers > 1: across servers (multiserver.py)
    from harness.serpens.multiserver import design_platform
    return functools.partial(design_platform, design=name)


def names() -> list[str]:
    """Every registered platform: the wire, then the designs in registration order (the paper's)."""
    return [WirePlatform.name, *designs.REGISTRY]


def get(name: str) -> PlatformFactory:
    if name == WirePlatform.name:
        return WirePlatform
    if name in designs.REGISTRY:
        return _design_factory(name)
    raise PlatformError(f"unknown platform {name!r}; known: {', '.join(names())}")


def runs_sfc(name: str) -> bool:
    """Whether a platform runs NFs: its factory takes ``sfc=`` (SfcSpec(s), harness/serpens/sfc.py)."""
    get(name)
    return name in designs.REGISTRY


def sfc_platforms() -> list[str]:
    """Every registered platform that can run an SFC (every design), in registration order."""
    return list(designs.REGISTRY)


__all__ = ["Platform", "PlatformError", "PlatformFactory", "designs", "get", "names", "runs_sfc",
           "sfc_platforms"]
