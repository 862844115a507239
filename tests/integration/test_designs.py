"""Every registered design on the real serpensd: it starts, forwards every packet the SFC does not drop, gives
the same packets as Serpens for the same input, reports the state backend its design names, and refuses
scaling where its scaling cannot run (Design.scaling_limit).

A design needs serpensd to have the option of each axis it does not share with serpensd's built-in
mechanism (harness/serpens/design_options.py). A design whose option the built serpensd lacks is skipped,
naming the option; once serpensd has ``--startup`` and ``--chaining`` every design here runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether

from harness import config as cfg
from harness.native import binary
from harness.platforms import designs
from harness.platforms.base import PlatformError
from harness.rig import rig
from harness.serpens.design_options import design_options, usage_options
from harness.serpens.sfc import SfcSpec
from harness.traffic import profiles
from tests.integration.packets import LOAD_DPORT, LOAD_DST, LOAD_SPORT, load_src, per_flow, read_pcap

pytestmark = pytest.mark.dpdk

N_FLOWS, COUNT, BLOCKED = 16, 160, 3
EXTERNAL_IP = "198.18.1.1"


def spec() -> SfcSpec:
    """FW (one flow blacklisted) → MON → NAT: per-flow and global state, a drop, a rewrite."""
    rule = f"17,{load_src(BLOCKED)},{LOAD_SPORT},{LOAD_DST},{LOAD_DPORT}"
    return SfcSpec("designs", {}, ["fw", "mon", "nat"], {"fw": ("fw", {"blacklist": rule})})


def unsupported(conf: cfg.Config, name: str) -> str | None:
    """Why the built serpensd cannot run the design (None: it can)."""
    s = conf["platforms"]["serpens"]
    try:
        design_options(designs.entry(name).design, usage_options(binary(s["serpensd"])), s["pool"])
    except PlatformError as exc:
        return str(exc)
    return None


def run(conf: cfg.Config, name: str, tmp_path: Path) -> tuple[Any, list[bytes], dict[str, Any], Any]:
    capture = tmp_path / f"{name}.pcap"
    with rig(conf, name, sfc=spec(), capture=capture, capture_count=COUNT) as r:
        res = r.generator.run_trial(profiles.udp_flows(8_000, 64, N_FLOWS, udp_checksum="hw"), duration=0.5)
        stats = r.platform.stats()
        refusal = None
        if not r.platform.design.scaling_implemented:
            with pytest.raises(PlatformError, match=f"scaling '{r.platform.design.scaling}' (moves per-flow "
                                                    "state|is not implemented yet)") as err:
                r.platform.start_instance("designs")
            refusal = err.value
        described = r.platform.describe()
    return res, read_pcap(capture), {"stats": stats, "describe": described}, refusal


@pytest.fixture(scope="module")
def reference(dpdk_ready: cfg.Config, tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    res, packets, _, _ = run(dpdk_ready, "serpens", tmp_path_factory.mktemp("serpens"))
    assert res.rx_packets == res.tx_packets - per_flow(res.tx_packets, N_FLOWS)[BLOCKED]
    assert len(packets) == COUNT and {Ether(p)[IP].src for p in packets} == {EXTERNAL_IP}
    return packets


@pytest.mark.parametrize("name", list(designs.REGISTRY))
def test_every_design_forwards_the_same_packets_as_serpens(dpdk_ready: cfg.Config, tmp_path: Path,
                                                           reference: list[bytes], name: str) -> None:
    why = unsupported(dpdk_ready, name)
    if why is not None:
        pytest.skip(f"the built serpensd cannot run {name} yet: {why}")
    res, packets, info, refusal = run(dpdk_ready, name, tmp_path)
    sent = per_flow(res.tx_packets, N_FLOWS)
    assert res.dut_rx_full == 0
    assert res.rx_packets == res.tx_packets - sent[BLOCKED], name     # FW dropped exactly its flow
    assert packets == reference, name                                # same NFs, same packets
    design = designs.entry(name).design
    assert info["stats"]["state"]["backend"] == designs.AXES["state"][design.state].serpensd
    d = info["describe"]
    assert d["design"] == name and d["design_axes"] == design.to_json()
    assert (refusal is None) == design.scaling_implemented


def test_a_design_whose_scaling_is_not_built_runs_fixed_and_refuses_scaling(dpdk_ready: cfg.Config) -> None:
    from harness.native import RunDir
    from harness.serpens.platform import DesignPlatform

    # OpenNF moves per-flow state kept in the instances, the rest stays in the State Manager: with remote
    # state it cannot run (Design.scaling_implemented)
    design = designs.SERPENS.replace(scaling="opennf", state="remote")
    assert not design.scaling_implemented
    p = DesignPlatform(dpdk_ready, RunDir(dpdk_ready, "custom"), design=design, sfc="fw")
    p.start()
    try:
        (slot,) = p.instances                     # deployment starts the configured instances
        with pytest.raises(PlatformError, match="cannot start an instance of SFC 'fw': scaling 'opennf' "
                                                "moves per-flow state .* needs consolidated chaining and the "
                                                "serpens state backend"):
            p.start_instance("fw")
        with pytest.raises(PlatformError, match=f"cannot stop instance {slot}: scaling 'opennf'"):
            p.stop_instance(slot)
        assert [i["sfc_name"] for i in p.stats()["instances"]] == ["fw"]   # serpensd still runs just one
    finally:
        p.stop()
        p.run_dir.remove()
