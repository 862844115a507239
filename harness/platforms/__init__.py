"""Platforms under test, by name. Each is a composition on the four axes of DESIGN.md section 3."""

from __future__ import annotations

from harness.platforms.base import Platform, PlatformError
from harness.platforms.wire import WirePlatform

PLATFORMS: dict[str, type[Platform]] = {
    WirePlatform.name: WirePlatform,
}


def get(name: str) -> type[Platform]:
    try:
        return PLATFORMS[name]
    except KeyError:
        raise PlatformError(f"unknown platform {name!r}; known: {', '.join(sorted(PLATFORMS))}") from None


__all__ = ["PLATFORMS", "Platform", "PlatformError", "get"]
