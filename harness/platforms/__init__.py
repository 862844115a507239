"""Platforms under test, by name. Each is a composition on the four axes of DESIGN.md section 3."""

from __future__ import annotations

from harness.baselines.state import FissionStatePlatform, SnfStatePlatform
from harness.platforms.base import Platform, PlatformError
from harness.platforms.wire import WirePlatform
from harness.serpens.platform import SerpensPlatform

# Registration order is the paper's order of platforms in its figures (Fission, SNF, ..., Serpens).
PLATFORMS: dict[str, type[Platform]] = {
    WirePlatform.name: WirePlatform,
    FissionStatePlatform.name: FissionStatePlatform,
    SnfStatePlatform.name: SnfStatePlatform,
    SerpensPlatform.name: SerpensPlatform,
}


def get(name: str) -> type[Platform]:
    try:
        return PLATFORMS[name]
    except KeyError:
        raise PlatformError(f"unknown platform {name!r}; known: {', '.join(sorted(PLATFORMS))}") from None


def runs_sfc(name: str) -> bool:
    """Whether a platform runs NFs: its constructor takes ``sfc=`` (SfcSpec(s), harness/serpens/sfc.py)."""
    return get(name).runs_sfc


def sfc_platforms(axis: str | None = None) -> list[str]:
    """Every registered platform that can run an SFC, in registration order; with ``axis``, only those that
    are their namesake on that design axis; with ``axis="all"``, only complete designs (Fig. 15's grid)."""
    want = ({"startup", "state", "chaining", "scaling"} if axis == "all" else {axis} if axis else set())
    return [n for n, cls in PLATFORMS.items() if cls.runs_sfc and want <= cls.axes]


__all__ = ["PLATFORMS", "Platform", "PlatformError", "get", "runs_sfc", "sfc_platforms"]
