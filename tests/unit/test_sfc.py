"""SFCs for the control plane: Fig. 8's chain/distribute/aggregate, SfcSpec, SFC files, --sfc text."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import config as cfg
from harness.config import REPO_ROOT
from harness.serpens.sfc import (
    SfcError,
    SfcSpec,
    aggregate,
    as_specs,
    chain,
    distribute,
    effective_args,
    from_cli,
    load_sfc_file,
    nf_path,
    parse_sfcs,
)

DOC_GRAPH = ["fw1", {"distribute": ["ids1", "mon1"], "selector": "fw1.suspicious"}, "nat1"]


# --- chain / distribute / aggregate ---------------------------------------------------------------------

def test_fig8_calls_give_the_protocols_json_graph() -> None:
    g = chain("fw1", distribute("ids1", "mon1", selector="fw1.suspicious"), aggregate("ids1", "mon1"), "nat1")
    assert g.to_json() == DOC_GRAPH  # docs/serpens-control.md, deploy_sfc
    # aggregate is implicit in the JSON: without it the graph is the same
    assert chain("fw1", distribute("ids1", "mon1", selector="fw1.suspicious"), "nat1").to_json() == DOC_GRAPH
    assert g.nf_names() == ["fw1", "ids1", "mon1", "nat1"]


def test_chains_nest_and_branches_may_be_chains() -> None:
    g = chain(chain("fw", "mon"), distribute(chain("ids", "vpn"), "nat", selector="mon.heavy"),
              aggregate("vpn", "nat"))
    assert g.to_json() == ["fw", "mon", {"distribute": [["ids", "vpn"], "nat"], "selector": "mon.heavy"}]
    g = chain("fw", distribute(["ids", "vpn"], "mon"))
    assert g.to_json()[1]["distribute"] == [["ids", "vpn"], "mon"]


def test_default_selector_is_the_firewalls() -> None:
    assert distribute("ids", "mon").selector == "fw.suspicious"


@pytest.mark.parametrize(("make", "message"), [
    (lambda: chain(distribute("ids", "mon"), "nat"), "must follow an NF"),
    (lambda: chain("mon", distribute("ids", "nat")), "belongs to NF 'fw'.*follows 'mon'"),
    (lambda: chain("fw", distribute("ids", "mon"), aggregate("ids", "nat"), "x"), r"last NF of each branch"),
    (lambda: chain("fw", aggregate("ids", "mon")), "must directly follow a distribute"),
    (lambda: chain("fw", distribute(chain("ids", "vpn"), "mon"), aggregate("ids", "mon")),
     r"\['vpn', 'mon'\]"),
    (lambda: chain(), "at least one NF"),
    (lambda: chain("fw/1"), "letters, digits"),
    (lambda: chain("fw.x"), "letters, digits"),
    (lambda: chain("fw", 3), "must be an NF name"),
])
def test_malformed_graphs_are_refused_with_the_reason(make, message: str) -> None:  # noqa: ANN001
    with pytest.raises(SfcError, match=message):
        make().to_json()


@pytest.mark.parametrize(("make", "message"), [
    (lambda: distribute("ids"), "at least two branches"),
    (lambda: distribute("ids", "mon", selector="suspicious"), "'<nf>.<selector>'"),
    (lambda: distribute("ids", chain("fw", distribute("a", "b"))), "no distribute inside a branch"),
    (lambda: distribute("ids", []), "non-empty chain"),
    (lambda: aggregate("ids"), "at least two branches"),
])
def test_malformed_distribute_and_aggregate_are_refused(make, message: str) -> None:  # noqa: ANN001
    with pytest.raises(SfcError, match=message):
        make()


# --- SfcSpec ---------------------------------------------------------------------------------------------

def test_spec_from_a_chain_or_a_json_list_is_the_same() -> None:
    nfs = {"fw1": ("fw", {"blacklist": "udp,16.0.0.3,*,*,*"}), "ids1": ("ids", {}), "mon1": ("mon", {}),
           "nat1": ("nat", {"external_ip": "198.18.1.1"})}
    a = SfcSpec("web", {"dst": "48.0.0.0/8"},
                chain("fw1", distribute("ids1", "mon1", selector="fw1.suspicious"), "nat1"), nfs)
    b = SfcSpec("web", {"dst": "48.0.0.0/8"}, DOC_GRAPH, nfs)
    assert a.graph == b.graph == DOC_GRAPH
    assert a.nfs == b.nfs == nfs
    assert a.workload == "fw,(ids|mon),nat"
    assert a.to_json()["nfs"]["nat1"] == {"type": "nat", "args": {"external_ip": "198.18.1.1"}}


def test_nfs_not_named_default_to_their_own_type_and_args_become_text() -> None:
    spec = SfcSpec("s", {}, ["fw", "nat"], {"nat": ("nat", {"ports": 2000, "strict": True})})
    assert spec.nfs == {"fw": ("fw", {}), "nat": ("nat", {"ports": "2000", "strict": "true"})}


def test_nfs_the_graph_does_not_use_are_an_error() -> None:
    with pytest.raises(SfcError, match=r"nfs \['mon'\] are not used"):
        SfcSpec("s", {}, ["fw"], {"fw": ("fw", {}), "mon": ("mon", {})})


def test_match_is_validated_and_normalised() -> None:
    spec = SfcSpec("s", {"dst": "48.0.0.1/8", "src": "16.0.0.0/16", "proto": "udp", "dport": 12}, ["fw"])
    assert spec.match == {"dst": "48.0.0.0/8", "src": "16.0.0.0/16", "proto": 17, "dport": 12}
    assert SfcSpec("s", {}, ["fw"]).match == {}
    with pytest.raises(SfcError, match="unknown key 'dts' \\(did you mean 'dst'\\?\\)"):
        SfcSpec("s", {"dts": "48.0.0.0/8"}, ["fw"])
    with pytest.raises(SfcError, match="IPv4 prefix"):
        SfcSpec("s", {"dst": "48.0.0.0/33"}, ["fw"])
    with pytest.raises(SfcError, match="dport must be a port"):
        SfcSpec("s", {"dport": 70000}, ["fw"])
    with pytest.raises(SfcError, match="proto must be"):
        SfcSpec("s", {"proto": "sctpx"}, ["fw"])


def test_linear_spec_from_cli_text() -> None:
    spec = SfcSpec.linear("fw,mon,nat")
    assert spec.name == "fw-mon-nat" and spec.match == {}  # no match: every packet, load and latency streams
    assert spec.graph == ["fw", "mon", "nat"]
    assert spec.nfs == {"fw": ("fw", {}), "mon": ("mon", {}), "nat": ("nat", {})}
    assert spec.workload == "fw,mon,nat"
    assert SfcSpec.linear(" fw , mon,nat ").workload == "fw,mon,nat"


def test_linear_spec_numbers_an_nf_type_used_twice() -> None:
    spec = SfcSpec.linear("fw,fw,nat,fw")
    assert spec.graph == ["fw1", "fw2", "nat", "fw3"]
    assert spec.nfs["fw3"] == ("fw", {})
    assert spec.workload == "fw,fw,nat,fw"


@pytest.mark.parametrize("text", ["", "fw,,nat", "fw,", "fw;nat", "fw,../x"])
def test_linear_spec_refuses_malformed_text(text: str) -> None:
    with pytest.raises(SfcError):
        SfcSpec.linear(text)


def test_nf_objects_and_default_arguments_come_from_the_config() -> None:
    conf = cfg.load()
    assert nf_path("fw", "build/native/nfs") == REPO_ROOT / "build/native/nfs/fw.so"
    assert nf_path("build/native/nfs/badflags.so", "x") == REPO_ROOT / "build/native/nfs/badflags.so"
    assert nf_path("/opt/my.so", "x") == Path("/opt/my.so")
    assert effective_args("nat", {}, conf) == {"external_ip": "198.18.1.1", "ports": "1024-65535"}
    assert effective_args("nat", {"ports": "2000-2999"}, conf)["ports"] == "2000-2999"
    assert effective_args("synthetic", {}, conf) == {"state_size": "64"}
    assert effective_args("/opt/mine.so", {"a": "1"}, conf) == {"a": "1"}
    assert set(conf["platforms"]["serpens"]["nfs"]) == {"fw", "nat", "mon", "ids", "vpn", "synthetic"}


def test_default_config_for_serpens() -> None:
    s = cfg.load()["platforms"]["serpens"]
    assert (s["wake_batch"], s["keep_warm_s"], s["state_region_mb"], s["instances"]) == (128, 30, 256, 1)
    assert s["colocate"] is True and s["nfs_dir"] == "build/native/nfs"
    assert s["nfs"]["vpn"]["key"] == "000102030405060708090a0b0c0d0e0f"


# --- SFC files ---------------------------------------------------------------------------------------------

FULL = """
nfs:
  fw1: {type: fw, args: {suspicious: "udp,16.0.0.0/24,*,*,*", blacklist: "udp,16.0.0.9,1025,48.0.0.1,12"}}
  nat: {args: {external_ip: 198.18.1.2}}
  mine: {type: build/native/nfs/synthetic.so, args: {state_size: 128}}
sfcs:
  - name: web
    match: {dst: 48.0.0.0/8, proto: udp}
    chain: [fw1, {distribute: [ids, mon], selector: fw1.suspicious}, {aggregate: [ids, mon]}, nat]
  - name: other
    chain: [mine]
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "sfcs.yaml"
    p.write_text(text)
    return p


def test_full_sfc_file(tmp_path: Path) -> None:
    web, other = load_sfc_file(write(tmp_path, FULL), cfg.load())
    assert web.name == "web" and web.match == {"dst": "48.0.0.0/8", "proto": 17}
    assert web.graph == ["fw1", {"distribute": ["ids", "mon"], "selector": "fw1.suspicious"}, "nat"]
    assert web.nfs["fw1"][0] == "fw" and web.nfs["fw1"][1]["suspicious"] == "udp,16.0.0.0/24,*,*,*"
    assert web.nfs["ids"] == ("ids", {}) and web.nfs["mon"] == ("mon", {})  # undeclared known types
    assert web.nfs["nat"] == ("nat", {"external_ip": "198.18.1.2"})       # type defaults to the name
    assert web.workload == "fw,(ids|mon),nat"
    assert other.nfs == {"mine": ("build/native/nfs/synthetic.so", {"state_size": "128"})}
    assert other.workload == "synthetic" and other.match == {}


@pytest.mark.parametrize(("text", "message"), [
    ("sfc: []\n", r"unknown key 'sfc' \(did you mean 'sfcs'\?\)"),
    ("sfcs:\n  - {name: a, chian: [fw]}\n", r"unknown key 'sfcs\[0\].chian' \(did you mean 'chain'\?\)"),
    ("sfcs:\n  - {name: a, chain: [fw], match: {dts: 48.0.0.0/8}}\n",
     r"key 'sfcs\[0\]': SFC 'a' match: unknown key 'dts'"),
    ("nfs:\n  fw: {typ: fw}\nsfcs:\n  - {name: a, chain: [fw]}\n", r"unknown key 'nfs.fw.typ'"),
    ("nfs:\n  fw: {args: {blacklist: [1, 2]}}\nsfcs:\n  - {name: a, chain: [fw]}\n",
     r"'nfs.fw.args'.*string or a number"),
    ("sfcs:\n  - {chain: [fw]}\n", r"key 'sfcs\[0\]': missing key 'name'"),
    ("sfcs:\n  - {name: a}\n", r"missing key 'chain'"),
    ("sfcs:\n  - {name: a, chain: [fw, nope]}\n", r"NF 'nope' is neither declared under 'nfs:' nor a known"),
    ("sfcs:\n  - {name: a, chain: [fw]}\n  - {name: a, chain: [mon]}\n", r"SFC name 'a' is used twice"),
    ("nfs:\n  ids2: {type: ids}\nsfcs:\n  - {name: a, chain: [fw]}\n",
     r"'nfs.ids2' declares an NF that no SFC"),
    ("sfcs:\n  - {name: a, chain: [fw, {distribute: [ids, mon], selectr: fw.suspicious}]}\n",
     r"chain\[1\]: unknown key 'selectr' \(did you mean 'selector'\?\)"),
    ("sfcs:\n  - {name: a, chain: [fw, {distribute: [ids, mon]}, {aggregate: [ids]}]}\n",
     r"chain\[2\].*aggregate: needs"),
    ("sfcs:\n  - {name: a, chain: [fw, {branch: [ids, mon]}]}\n", r"chain\[1\]: must be an NF name"),
    ("sfcs:\n  - {name: a, chain: []}\n", r"non-empty list"),
    ("sfcs: []\n", r"'sfcs' must be a non-empty list"),
    ("- a\n", r"top level must be a mapping"),
    ("sfcs: [\n", r"not valid YAML"),
    ("sfcs:\n  - {name: a, chain: [fw], tenat: x}\n",
     r"unknown key 'sfcs\[0\].tenat' \(did you mean 'tenant'\?\)"),
    ("sfcs:\n  - {name: a, chain: [fw], tenant: 'a:b'}\n", r"SFC 'a': tenant must be 1..31 characters"),
    ("sfcs:\n  - {name: a, chain: [fw], tenant: [x]}\n", r"SFC 'a': tenant must be"),
])
def test_sfc_file_errors_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(SfcError, match=message) as err:
        load_sfc_file(path, cfg.load())
    assert str(err.value).startswith(str(path))
    assert isinstance(err.value, cfg.ConfigError)


def test_an_sfc_belongs_to_a_tenant(tmp_path: Path) -> None:
    # docs/security.md: the tenant goes with deploy_nf and deploy_sfc; "default" when not given
    a, b = load_sfc_file(write(tmp_path, "sfcs:\n  - {name: a, chain: [fw], tenant: alice}\n"
                                         "  - {name: b, chain: [mon]}\n"), cfg.load())
    assert (a.tenant, b.tenant) == ("alice", "default")


def test_missing_sfc_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SfcError, match="cannot read SFC file"):
        load_sfc_file(tmp_path / "none.yaml", cfg.load())


def test_cli_text_is_a_chain_of_types_or_a_file(tmp_path: Path) -> None:
    conf = cfg.load()
    (spec,) = from_cli("fw,mon,nat", conf)
    assert spec.workload == "fw,mon,nat"
    specs = from_cli(str(write(tmp_path, FULL)), conf)
    assert [s.name for s in specs] == ["web", "other"]


@pytest.mark.parametrize(("args", "message"), [
    (["run", "--platform", "serpens"], "runs an SFC: give --sfc"),
    (["run", "--platform", "sand"], "runs an SFC: give --sfc"),          # every design runs NFs
    (["run", "--platform", "fission-state", "--sfc", "fw,,nat"], "comma-separated list of NF types"),
    (["run", "--platform", "wire", "--sfc", "fw"], "wire platform runs no NFs"),
    (["run", "--platform", "serpens", "--sfc", "fw,,nat"], "comma-separated list of NF types"),
    (["run", "--platform", "nosuch"], "unknown platform 'nosuch'"),
])
def test_cli_run_checks_the_sfc_before_starting_anything(args: list[str], message: str) -> None:
    from click.testing import CliRunner

    from harness.cli import main
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, res.output
    assert message in res.output


def test_a_thousand_nf_chain_gets_a_short_unique_name() -> None:
    long_a = SfcSpec.linear(",".join(["fw", "mon", "nat"] * 334))
    long_b = SfcSpec.linear(",".join(["fw", "mon", "nat"] * 333 + ["fw"]))
    assert len(long_a.name) <= 63 and len(long_b.name) <= 63 and long_a.name != long_b.name
    assert long_a.name.startswith("fw-mon-nat-") and "-1002nfs-" in long_a.name
    assert SfcSpec.linear("fw,mon,nat").name == "fw-mon-nat"      # short chains keep their plain name


def test_a_chain_longer_than_serpensd_runs_is_refused_before_anything_starts() -> None:
    # serpensd refused it only once running, at its 65th NF deployment: now one line, with the limit
    assert [s.name for s in from_cli(",".join(["fw"] * 16), cfg.load())] == ["-".join(["fw"] * 16)]
    for n in (17, 1000):
        with pytest.raises(SfcError, match=rf"has {n} NFs: serpensd runs at most 16 in one SFC") as err:
            from_cli(",".join((["fw", "mon", "nat"] * 400)[:n]), cfg.load())
        assert "\n" not in str(err.value)
    branches = [f"mon{i}" for i in range(9)]
    wide = SfcSpec("wide", {}, chain("fw", distribute(*branches)), {b: ("mon", {}) for b in branches})
    with pytest.raises(SfcError, match="a distribute with 9 branches; serpensd takes at most 8"):
        as_specs(wide, cfg.load())


def test_more_sfcs_or_nfs_than_one_serpensd_holds_are_refused() -> None:
    many = [SfcSpec.linear("fw", name=f"s{i}") for i in range(33)]
    with pytest.raises(SfcError, match="33 SFCs: serpensd runs at most 32"):
        as_specs(many, cfg.load())
    # 32 SFCs of 16 NFs each, every NF a deployment of its own: 512, as many as serpensd holds (SP_MAX_NFS),
    # so the positions and SFC limits above are the only ones a set of SFCs can reach
    specs = [SfcSpec(f"s{i}", {}, chain(*[f"fw{i}x{j}" for j in range(16)]),
                     {f"fw{i}x{j}": ("fw", {}) for j in range(16)}) for i in range(32)]
    assert len(as_specs(specs, cfg.load())) == 32


def test_a_huge_nf_argument_is_refused_before_anything_starts() -> None:
    data = {"nfs": {"fw": {"args": {"blacklist": "x" * (10 << 20)}}},
            "sfcs": [{"name": "a", "chain": ["fw"]}]}
    with pytest.raises(SfcError, match=r"argument 'blacklist' is 10485760 bytes, at most 65536") as err:
        parse_sfcs(data, cfg.load())
    assert len(str(err.value)) < 400


def test_binary_garbage_as_an_sfc_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "sfcs.yaml"
    path.write_bytes(bytes(range(256)))
    with pytest.raises(SfcError, match="not an SFC file: not UTF-8 text") as err:
        load_sfc_file(path, cfg.load())
    assert "\n" not in str(err.value)


def test_an_sfc_file_that_is_a_fifo_is_refused_not_waited_for(tmp_path: Path) -> None:
    import os
    path = tmp_path / "sfcs.yaml"
    os.mkfifo(path)
    with pytest.raises(SfcError, match=r"cannot read SFC file: not a regular file$"):
        load_sfc_file(path, cfg.load())
