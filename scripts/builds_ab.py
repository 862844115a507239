"""What the A/B scripts share (startcost, firststart, deploycost): builds named by `--build DIR` (a meson
build dir holding serpens/serpensd, serpens/serpens-runtime and nfs/), each checked before anything runs,
and run block by block in alternating order, so that the machine's moods fall on every build alike."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from harness import config as cfg

PARTS = ("serpens/serpensd", "serpens/serpens-runtime", "nfs")


def check(prog: str, builds: Sequence[str], parts: Sequence[str] = PARTS) -> bool:
    """True if every build has every part; else one line naming the first missing one, on stderr."""
    for b in builds:
        for part in parts:
            if not (Path(b) / part).exists():
                print(f"{prog}: --build {b}: {Path(b) / part} is missing", file=sys.stderr)
                return False
    return True


def interleaved(builds: Sequence[str], blocks: int) -> Iterator[tuple[int, str]]:
    """(block, build) for every block, the builds' order reversed every other block."""
    for blk in range(blocks):
        for b in builds if blk % 2 == 0 else list(builds)[::-1]:
            yield blk, b


def config_for(build: str) -> cfg.Config:
    """The default configuration with serpensd, its runtime and the NFs taken from `build`."""
    p = Path(build).resolve()
    c = cfg.load()
    s = c["platforms"]["serpens"]
    s["serpensd"], s["runtime"] = str(p / "serpens/serpensd"), str(p / "serpens/serpens-runtime")
    s["nfs_dir"] = str(p / "nfs")
    return c
