"""LocalGenerator's memif buffer size for jumbo frames (harness/traffic/local.py: memif_vdevs).

A frame longer than memif's default 2048-byte buffer must fit one buffer: chained buffers get merged with
the packets after them once the ring wraps (DPDK 22.11's memif copy-mode TX; docs/generator.md, "Jumbo
frames"). The integration test that sends 9 KB frames through the wire is
tests/integration/test_generator_profiles.py.
"""

from __future__ import annotations

import base64

import pytest

from harness.traffic import profiles
from harness.traffic.base import GeneratorError
from harness.traffic.local import longest_frame, memif_vdevs

VDEV = "net_memif0,role=client,socket=/run/x/memif.sock,id=0,rsize=14"


def test_standard_frames_leave_the_vdev_alone() -> None:
    assert memif_vdevs([VDEV], 2048) == [VDEV]


def test_a_jumbo_frame_gets_a_buffer_that_holds_it() -> None:
    assert memif_vdevs([VDEV, "net_ring0"], 9226) == [VDEV + ",bsize=9344", "net_ring0"]


def test_an_explicit_buffer_too_small_is_refused_with_the_reason() -> None:
    with pytest.raises(GeneratorError, match="shorter than the longest frame .9226 B.*merged"):
        memif_vdevs([VDEV + ",bsize=4096"], 9226)
    assert memif_vdevs([VDEV + ",bsize=9600"], 9226) == [VDEV + ",bsize=9600"]


def test_longest_frame_reads_the_templates() -> None:
    streams = [s.to_json() for s in profiles.udp_flows(1000, frame_size=9000) + profiles.udp_flows(1000)]
    assert longest_frame(streams) == 8996
    hundred = {"packet": {"binary": base64.b64encode(b"x" * 100).decode()}}
    assert longest_frame([hundred, {"packet": {}}]) == 100   # serpens-gen refuses the second itself
