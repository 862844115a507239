"""The design registry (harness/platforms/designs.py) and how a design becomes serpensd's options
(harness/serpens/design_options.py), the rows' system/design/mechanism columns, and the claims' selectors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness import config as cfg
from harness import platforms
from harness.platforms import designs
from harness.platforms.base import PlatformError
from harness.platforms.designs import AXES, REGISTRY, SERPENS, Design, DesignError
from harness.serpens.design_options import design_options, usage_options

# Each registered design's serpensd options (a serpensd with every axis' option), written out by hand so
# that a changed registry entry shows up here: one option per axis. Fission's `stateless`, SAND's `fork` and
# Serpens' own scaling are all serpensd's `shared` (only the route moves: the state is already where every
# instance reaches it); the Fig. 14 variants name their protocol.
EXPECTED_OPTIONS = {
    "fission": ["--startup", "load", "--state-backend", "fission", "--chaining", "global-proxy",
                "--scaling", "shared"],
    "snf": ["--startup", "load", "--state-backend", "snf", "--chaining", "global-proxy", "--scaling", "snf"],
    "sand": ["--startup", "fork", "--state-backend", "fission", "--chaining", "local-proxy",
             "--scaling", "shared"],
    "serpens": ["--startup", "serpens", "--state-backend", "serpens", "--chaining", "consolidated",
                "--scaling", "shared"],
    "fission-state": ["--startup", "serpens", "--state-backend", "fission", "--chaining", "consolidated",
                      "--scaling", "shared"],
    "snf-state": ["--startup", "serpens", "--state-backend", "snf", "--chaining", "consolidated",
                  "--scaling", "shared"],
    "fission-chaining": ["--startup", "serpens", "--state-backend", "serpens", "--chaining", "global-proxy",
                         "--scaling", "shared"],
    "sand-chaining": ["--startup", "serpens", "--state-backend", "serpens", "--chaining", "local-proxy",
                      "--scaling", "shared"],
    "exec-startup": ["--startup", "exec", "--state-backend", "serpens", "--chaining", "consolidated",
                     "--scaling", "shared"],
    "fork-startup": ["--startup", "fork", "--state-backend", "serpens", "--chaining", "consolidated",
                     "--scaling", "shared"],
    "load-startup": ["--startup", "load", "--state-backend", "serpens", "--chaining", "consolidated",
                     "--scaling", "shared"],
    "snapshot-startup": ["--startup", "snapshot", "--state-backend", "serpens", "--chaining", "consolidated",
                         "--scaling", "shared"],
    "opennf-scaling": ["--startup", "serpens", "--state-backend", "serpens", "--chaining", "consolidated",
                       "--scaling", "opennf"],
    "opennf-loss-free-scaling": ["--startup", "serpens", "--state-backend", "serpens", "--chaining",
                                 "consolidated", "--scaling", "opennf-loss-free"],
    "s6-scaling": ["--startup", "serpens", "--state-backend", "serpens", "--chaining", "consolidated",
                   "--scaling", "s6"],
    "chc-scaling": ["--startup", "serpens", "--state-backend", "serpens", "--chaining", "consolidated",
                    "--scaling", "chc"],
    "snf-scaling": ["--startup", "serpens", "--state-backend", "serpens", "--chaining", "consolidated",
                    "--scaling", "snf"],
}


def test_every_registered_design_maps_to_one_serpensd_option_per_axis() -> None:
    assert set(REGISTRY) == set(EXPECTED_OPTIONS)
    for name, entry in REGISTRY.items():
        assert entry.design.serpensd_options() == EXPECTED_OPTIONS[name], name
        args, implied = design_options(entry.design, None, pool=4)
        axis_args = [a for a in args if a.startswith("--") and a != "--pool"]
        # the pool is a size, given only to the pooled startup methods
        assert ("--pool" in args) == (entry.design.startup in ("serpens", "load")), name
        if entry.design.scaling_implemented:
            assert axis_args == ["--startup", "--state-backend", "--chaining", "--scaling"], name
            assert args[:8] == EXPECTED_OPTIONS[name]
            assert implied == {}, name
        else:
            # scaling that cannot run with the design's other axes is not passed: serpensd runs its
            # instances as deployed and the platform refuses scaling requests (the implied text says why)
            assert axis_args == ["--startup", "--state-backend", "--chaining"], name
            assert args[:6] == EXPECTED_OPTIONS[name][:6]
            assert set(implied) == {"scaling"} and "not runnable with this design" in implied["scaling"]


def test_an_unknown_axis_value_is_one_clear_error_naming_the_known_ones() -> None:
    with pytest.raises(DesignError, match=r"unknown chaining value 'proxy'; known chaining values: "
                                          r"consolidated, local-proxy, global-proxy"):
        Design(startup="serpens", state="serpens", chaining="proxy", scaling="serpens")
    with pytest.raises(DesignError, match=r"unknown state value 'redis'; known state values: serpens, "
                                          r"remote, snf"):
        SERPENS.replace(state="redis")
    with pytest.raises(DesignError, match="unknown design axis 'loader'; the axes are startup, state, "
                                          "chaining"):
        SERPENS.replace(loader="shm")
    with pytest.raises(PlatformError, match=r"unknown platform 'fision'; known: wire, fission, snf, sand"):
        platforms.get("fision")


def test_single_axis_variants_differ_from_serpens_on_exactly_their_axis() -> None:
    variants = {n: e for n, e in REGISTRY.items() if not e.full_system}
    assert {"fission-state", "snf-state", "fission-chaining", "sand-chaining"} <= set(variants)
    for name, e in variants.items():
        assert e.design.differs(SERPENS) == [e.varies], name
        # named so that it cannot be taken for the system it borrows from
        assert name not in designs.FULL_SYSTEMS and name != e.system
    assert designs.variants("state") == ["fission-state", "snf-state"]
    assert designs.variants("chaining") == ["fission-chaining", "sand-chaining"]
    # the full systems, in the paper's order, each a design of its own on more than one axis
    assert designs.FULL_SYSTEMS == ("fission", "snf", "sand", "serpens")
    for name in ("fission", "snf", "sand"):
        assert len(REGISTRY[name].design.differs(SERPENS)) >= 3, name


def test_every_axis_value_has_a_serpensd_name_and_scaling_says_what_is_built() -> None:
    assert AXES["state"]["remote"].serpensd == "fission" and AXES["state"]["serpens"].serpensd == "serpens"
    # every scaling value is built: the three whose state every instance reaches move only the route
    # (serpensd's `shared`), the others are serpensd's protocol of the same name
    assert all(a.implemented for a in AXES["scaling"].values())
    assert {v: a.serpensd for v, a in AXES["scaling"].items()} == {
        "serpens": "shared", "stateless": "shared", "fork": "shared", "snf": "snf", "opennf": "opennf",
        "opennf-loss-free": "opennf-loss-free", "s6": "s6", "chc": "chc"}
    assert designs.OPTIONS["scaling"] == "--scaling"
    assert set(AXES["startup"]) == {"exec", "fork", "load", "serpens", "thread", "snapshot"}


def test_the_scaling_variants_move_state_and_run_only_where_their_protocol_can() -> None:
    assert designs.variants("scaling") == ["opennf-scaling", "opennf-loss-free-scaling", "s6-scaling",
                                           "chc-scaling", "snf-scaling"]
    for name in designs.variants("scaling"):
        d = REGISTRY[name].design
        assert d.moves_state and d.scaling_implemented, name
    # state every instance reaches: only the route moves, with any chaining or state backend
    for name in ("serpens", "fission", "sand", "fission-state", "sand-chaining"):
        assert not REGISTRY[name].design.moves_state and REGISTRY[name].design.scaling_implemented, name
    # a protocol that moves per-flow state moves the router's buckets (consolidated chaining) and leaves
    # the rest to the State Manager: with a proxy chaining or remote state it cannot run
    assert not REGISTRY["snf"].design.scaling_implemented                      # SNF's global proxy
    assert not SERPENS.replace(scaling="opennf", chaining="local-proxy").scaling_implemented
    assert not SERPENS.replace(scaling="s6", state="remote").scaling_implemented
    # CHC's external store is the run's redis-server, as remote state is
    assert REGISTRY["chc-scaling"].design.needs_redis and REGISTRY["fission"].design.needs_redis
    assert not REGISTRY["snf-scaling"].design.needs_redis and not SERPENS.needs_redis


def test_a_serpensd_without_an_axis_option_runs_only_its_builtin_mechanism() -> None:
    old = frozenset({"--control", "--runtime", "--pool", "--nf-loader", "--state-backend", "--redis"})
    args, implied = design_options(SERPENS, old, pool=4)
    assert args == ["--pool", "4", "--nf-loader", "shm", "--state-backend", "serpens"]
    assert set(implied) == {"startup", "chaining", "scaling"}
    args, _ = design_options(REGISTRY["load-startup"].design, old, pool=2)
    assert args[:4] == ["--pool", "2", "--nf-loader", "dlopen"]
    assert design_options(REGISTRY["exec-startup"].design, old, pool=4)[0][:2] == ["--pool", "0"]
    with pytest.raises(PlatformError, match="--chaining local-proxy is needed.*no --chaining option"):
        design_options(REGISTRY["sand-chaining"].design, old, pool=4)
    with pytest.raises(PlatformError, match="--startup fork is needed.*no --startup option"):
        design_options(REGISTRY["fork-startup"].design, old, pool=4)
    with pytest.raises(PlatformError, match="--scaling s6 is needed.*no --scaling option"):
        design_options(REGISTRY["s6-scaling"].design, old, pool=4)
    with pytest.raises(PlatformError, match="pool is 0, but startup serpens starts instances from a pool"):
        design_options(SERPENS, None, pool=0)


def test_serpensd_options_are_read_from_its_usage_text(tmp_path: Path) -> None:
    exe = tmp_path / "serpensd"
    # the usage split over several C strings, an option named only in an error message
    exe.write_bytes(b"\x7fELF...\0usage: serpensd [EAL args] -- --control PATH [--chaining MODE]\n\0"
                    b"       [--startup METHOD]\0--scaling is serpens\0")
    assert usage_options(exe) == {"--control", "--chaining", "--startup", "--scaling"}
    (tmp_path / "other").write_bytes(b"\x7fELF nothing here")
    with pytest.raises(PlatformError, match="no usage text found"):
        usage_options(tmp_path / "other")


def test_the_built_serpensd_usage_names_the_options_the_platform_passes() -> None:
    exe = cfg.repo_path(cfg.load()["platforms"]["serpens"]["serpensd"])
    if not exe.is_file():
        pytest.skip(f"{exe} is not built")
    opts = usage_options(exe)
    assert {"--control", "--runtime", "--state-backend", "--pool", "--redis"} <= opts


def test_rows_carry_system_design_and_mechanism() -> None:
    from experiments.figure_12 import Figure12
    from experiments.figure_13 import Figure13
    from experiments.figure_15 import Figure15
    from experiments.startup import Figure11a, Figure11b, Table4, memory_rows, startup_rows
    from experiments.table_2 import Table2
    from harness.traffic.measure import point_row

    conf = cfg.load(quick=True)
    for exp in (Figure12, Figure13, Figure15, Table2, Figure11a, Figure11b, Table4):
        assert {"platform", "system", "design", "mechanism"} <= set(exp.columns), exp.name

    def ids(exp: type) -> dict[str, tuple[str, str, str]]:
        e = exp(conf)
        return {p.platform: tuple(e.identity(p)[k] for k in ("system", "design", "mechanism"))
                for p in e.points()}

    assert ids(Figure12) == {"fission-state": ("fission", "fission-state", "remote"),
                             "snf-state": ("snf", "snf-state", "snf"),
                             "serpens": ("serpens", "serpens", "serpens")}
    assert ids(Figure13) == {"fission-chaining": ("fission", "fission-chaining", "global-proxy"),
                             "sand-chaining": ("sand", "sand-chaining", "local-proxy"),
                             "serpens": ("serpens", "serpens", "consolidated")}
    assert ids(Figure15) == {"wire": ("wire", "", ""), "fission": ("fission", "fission", ""),
                             "snf": ("snf", "snf", ""), "sand": ("sand", "sand", ""),
                             "serpens": ("serpens", "serpens", "")}
    f12 = Figure12(conf)
    point = f12.points()[0]
    row = point_row({**f12.identity(point), "workload": point.workload, "frame_size_b": 64, "trial": 0})
    assert (row["platform"], row["system"], row["design"], row["mechanism"]) == (
        "fission-state", "fission", "fission-state", "remote")
    started = startup_rows([{"kind": "startup", "method": "fork", "instances": 1, "rep": 0, "ok": True,
                             "ready_us": 9.0, "first_packet_us": 10.0, "instance_cpu": 0,
                             "requester_cpu": 0}])
    assert {k: started[0][k] for k in ("platform", "system", "design", "mechanism")} == {
        "platform": "startbench", "system": "sand", "design": "", "mechanism": "fork"}
    memory = memory_rows([{"kind": "memory", "method": "load", "resident": "pool", "deployed": 1,
                           "memory_kb": 2048.0, "processes": 2, "image_kb": 20.0}])
    assert (memory[0]["system"], memory[0]["mechanism"]) == ("sock", "load_pool")


def test_figure_13_measures_chains_of_distinct_fws_on_the_chaining_designs() -> None:
    from experiments.figure_13 import Figure13
    from harness.serpens.sfc import SfcSpec

    conf = cfg.load()
    points = Figure13(conf).points()
    assert sorted({dict(p.identity)["chain_length"] for p in points}) == [1, 2, 3, 4, 6]
    assert {p.platform for p in points} == {"fission-chaining", "sand-chaining", "serpens"}
    six = next(p for p in points if dict(p.identity)["chain_length"] == 6)
    spec = SfcSpec.linear(six.sfc or "")
    assert list(spec.nfs) == ["fw1", "fw2", "fw3", "fw4", "fw5", "fw6"] and six.workload == spec.workload
    assert len(Figure13(cfg.load(quick=True)).points()) == 2 * 3   # quick: two lengths
    conf["platforms"]["serpens"]["colocate"] = False
    with pytest.raises(RuntimeError, match="all NFs of an SFC on one core"):
        Figure13(conf).cores()


def test_a_config_that_sets_an_axis_is_told_the_design_decides(tmp_path: Path) -> None:
    f = tmp_path / "mine.yaml"
    f.write_text(yaml.safe_dump({"platforms": {"serpens": {"state_backend": "fission"}}}))
    with pytest.raises(cfg.ConfigError, match=r"mine.yaml: key 'platforms.serpens.state_backend' is no "
                                              r"longer a setting; the state axis: a design decides it"):
        cfg.load([f])
    with pytest.raises(cfg.ConfigError, match="platforms.serpens.chaining' is no longer a setting"):
        cfg.load(overrides=["platforms.serpens.chaining=local-proxy"])
    # put into a config dict directly, it is refused by the platform rather than silently ignored
    from harness.native import RunDir
    conf = cfg.load(overrides=[f"machine.runtime_dir={tmp_path}"])
    conf["platforms"]["serpens"]["chaining"] = "local-proxy"
    with pytest.raises(PlatformError, match="platforms.serpens.chaining is set, but the design 'serpens' "
                                            "decides every axis"):
        platforms.get("serpens")(conf, RunDir(conf), sfc="fw")


def test_claims_select_designs_and_mechanisms_never_platforms() -> None:
    path = Path(__file__).resolve().parents[2] / "experiments" / "claims.yaml"
    claims = yaml.safe_load(path.read_text())["claims"]

    def selectors(node: object) -> list[dict]:
        if isinstance(node, dict):
            return [node, *[s for v in node.values() for s in selectors(v)]]
        if isinstance(node, list):
            return [s for v in node for s in selectors(v)]
        return []

    by_file: dict[str, set[str]] = {}
    for c in claims:
        for sel in selectors(c["ours"]):
            assert "platform" not in sel and "system" not in sel, c["id"]
            f = sel.get("file", c["ours"].get("file"))
            if "design" in sel:
                by_file.setdefault(f, set()).add(sel["design"])
                assert sel["design"] in REGISTRY, (c["id"], sel["design"])
    assert by_file["figure-12.csv"] == {"serpens", "fission-state", "snf-state"}
    assert by_file["figure-13.csv"] == {"serpens", "fission-chaining", "sand-chaining"}
    assert by_file["figure-15.csv"] == {"serpens", "fission", "snf", "sand"}


def test_the_real_claims_find_the_rows_the_experiments_write(tmp_path: Path) -> None:
    """Rows labelled as Figure12/13/15 label them (their identity()) are what the claims select."""
    import pandas as pd

    from experiments.figure_12 import Figure12
    from experiments.figure_13 import Figure13
    from experiments.figure_15 import Figure15
    from harness import claims

    conf = cfg.load()
    value = {"fission-state": 1.0, "snf-state": 2.0, "fission-chaining": 1.0, "sand-chaining": 1.3,
             "fission": 0.082, "snf": 0.166, "sand": 0.082, "serpens": 2.5, "wire": 10.0}
    for exp in (Figure12, Figure13, Figure15):
        e = exp(conf)
        rows = [{**e.identity(p), "workload": p.workload, **dict(p.identity), "trial": t,
                 "ndr_mpps": value[p.platform], "instance_capacity_mpps": value[p.platform]}
                for t in range(3) for p in e.points()]
        pd.DataFrame(rows).to_csv(tmp_path / f"{e.name}.csv", index=False)
    path = Path(__file__).resolve().parents[2] / "experiments" / "claims.yaml"
    wanted = {"fig12-fw-throughput-vs-fission": 2.5, "fig12-mon-throughput-vs-snf": 1.25,
              "fig13-throughput-vs-fission": 2.5, "fig13-throughput-vs-sand": 2.5 / 1.3,
              "fig15-throughput-vs-snf": 2.5 / 0.166}
    got = {v.claim_id: v for v in claims.check(tmp_path, path) if v.claim_id in wanted}
    assert set(got) == set(wanted)
    for cid, ratio in wanted.items():
        assert got[cid].status is not claims.Status.NOT_MEASURED, (cid, got[cid].detail)
        assert {round(v, 3) for _, v in got[cid].values} == {round(ratio, 3)}, (cid, got[cid].values)
