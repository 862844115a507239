"""No input gives a traceback: property-based tests (hypothesis) of the configuration loader, SFC parsing,
the claims file and the options of `harness run`, `experiment` and `check-paper`. Whatever they are given,
they either accept it or raise the one error type whose message the CLI prints as one line (ConfigError,
click's usage errors)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import config as cfg
from harness.cli import main
from harness.serpens.sfc import SfcError, SfcSpec, load_sfc_file, parse_sfcs

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# YAML-able values: scalars of every kind YAML has, nested in lists and mappings
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)), max_leaves=12)
# keys near the real ones, so that the checks behind the first unknown-key error are reached too
real_keys = ["machine", "cores", "generator", "traffic", "search", "measurement", "platforms", "redis",
             "flows", "frame_sizes_b", "goals", "pdr", "ndr", "loss_ratio", "generator", "platform",
             "allow_shared", "serpens", "batch", "kind", "local", "latency_duration_s", "min_rate_mpps"]
near_keys = st.one_of(st.sampled_from(real_keys), st.text(max_size=8))
configs = st.recursive(scalars, lambda inner: st.dictionaries(near_keys, inner, max_size=5), max_leaves=15)


def _load_text(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "user.yaml"
    path.write_bytes(data)
    try:
        cfg.load([path])
    except cfg.ConfigError as exc:
        assert str(exc)   # an error says something


@SETTINGS
@given(data=st.binary(max_size=400))
def test_any_bytes_as_a_config_file_load_or_fail_cleanly(tmp_path: Path, data: bytes) -> None:
    _load_text(tmp_path, data)


@SETTINGS
@given(data=configs)
def test_any_yaml_structure_as_a_config_loads_or_fails_cleanly(tmp_path: Path, data: Any) -> None:
    _load_text(tmp_path, yaml.safe_dump(data).encode())


@SETTINGS
@given(text=st.text(max_size=60))
def test_any_set_override_loads_or_fails_cleanly(text: str) -> None:
    with contextlib.suppress(cfg.ConfigError):
        cfg.load(overrides=[text])


@SETTINGS
@given(key=st.sampled_from(["traffic.flows", "measurement.latency_duration_s", "search.max_rate_mpps",
                            "platforms.serpens.batch", "cores.platform", "measurement.repetitions"]),
       value=st.one_of(st.integers(), st.floats()))
def test_a_loaded_number_is_always_in_its_range(key: str, value: float) -> None:
    try:
        conf = cfg.load(overrides=[f"{key}={value!r}".replace("nan", ".nan").replace("inf", ".inf")])
    except cfg.ConfigError:
        return
    got = conf
    for part in key.split("."):
        got = got[part]
    assert math.isfinite(got) and cfg.ranges.RANGES[key].holds(got)


# --- SFCs ---------------------------------------------------------------------------------------------

sfc_names = st.one_of(st.sampled_from(["fw", "mon", "nat", "ids", "vpn", "web", "fw1"]), st.text(max_size=8))
chains = st.lists(st.one_of(sfc_names, st.dictionaries(st.sampled_from(["distribute", "selector",
                                                                          "aggregate", "x"]),
                                                        st.one_of(sfc_names, st.lists(sfc_names,
                                                                                      max_size=3)),
                                                        max_size=2)), max_size=5)
sfc_docs = st.fixed_dictionaries({}, optional={
    "nfs": st.one_of(values, st.dictionaries(sfc_names, st.one_of(values, st.fixed_dictionaries(
        {}, optional={"type": st.one_of(sfc_names, scalars), "args": st.one_of(values, st.dictionaries(
            st.text(max_size=6), scalars, max_size=3))})), max_size=3)),
    "sfcs": st.one_of(values, st.lists(st.fixed_dictionaries({}, optional={
        "name": st.one_of(sfc_names, scalars), "match": values, "chain": st.one_of(chains, values)}),
        max_size=3)),
    "other": values,
})


@SETTINGS
@given(data=sfc_docs)
def test_any_sfc_document_parses_or_fails_cleanly(data: Any) -> None:
    conf = cfg.load()
    with contextlib.suppress(SfcError):
        specs = parse_sfcs(data, conf, "sfcs.yaml")
        assert specs and all(isinstance(s, SfcSpec) for s in specs)


@SETTINGS
@given(data=st.binary(max_size=300))
def test_any_bytes_as_an_sfc_file_parse_or_fail_cleanly(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "sfcs.yaml"
    path.write_bytes(data)
    with contextlib.suppress(SfcError):
        load_sfc_file(path, cfg.load())


@SETTINGS
@given(types=st.one_of(st.text(max_size=40), st.lists(st.sampled_from(["fw", "mon", "nat", "ids"]),
                                                        min_size=1, max_size=1200)))
def test_any_linear_chain_text_gives_a_valid_spec_or_one_error(types: Any) -> None:
    try:
        spec = SfcSpec.linear(types)
    except SfcError:
        return
    assert 1 <= len(spec.name) <= 63     # long chains get a short name, never a refused one


# --- `harness run` options ------------------------------------------------------------------------------

class _Stop(Exception):
    pass


@contextlib.contextmanager
def _no_rig(*args: Any, **kwargs: Any) -> Iterator[None]:
    # options that pass validation would start a real run: stop at the rig, as a platform error would
    from harness.platforms import PlatformError
    raise PlatformError("stopped before the rig (test)")
    yield


numbers = st.one_of(st.floats(), st.integers(min_value=-10**12, max_value=10**12))


@SETTINGS
@given(rate=st.one_of(st.none(), numbers), duration=st.one_of(st.none(), numbers),
       frame=st.one_of(st.none(), st.integers(min_value=-10**9, max_value=10**9)),
       flows=st.one_of(st.none(), st.integers(min_value=-10**12, max_value=10**12)),
       load=st.one_of(st.none(), numbers))
def test_run_options_are_validated_without_a_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                       rate: Any, duration: Any, frame: Any, flows: Any,
                                                       load: Any) -> None:
    import harness.rig
    monkeypatch.setattr(harness.rig, "rig", _no_rig)
    # a runtime directory of its own: the run lock taken before the rig is this test's alone
    args = ["--set", f"machine.runtime_dir={tmp_path}", "run", "--platform", "wire", "--out", str(tmp_path)]
    for flag, v in (("--rate-mpps", rate), ("--duration", duration), ("--frame-size", frame),
                    ("--flows", flows), ("--load", load)):
        if v is not None:
            args += [flag, str(v)]
    result = CliRunner().invoke(main, args, obj={})
    assert result.exit_code in (1, 2), (args, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), (args, result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 1:   # got as far as the rig: every option was in its range
        assert "stopped before the rig" in result.output
        assert rate is None or 0 < float(rate) <= 1000
        assert duration is None or 0.001 <= float(duration) <= 3600
        assert frame is None or 64 <= frame <= 9000


@SETTINGS
@given(sets=st.lists(st.text(max_size=40), max_size=3))
def test_any_set_on_the_command_line_is_accepted_or_one_error(sets: list[str]) -> None:
    args = [a for s in sets for a in ("--set", s)] + ["config"]
    result = CliRunner().invoke(main, args, obj={})
    assert result.exit_code in (0, 1, 2) and isinstance(result.exception, SystemExit | None), \
        (args, result.exception)


@SETTINGS
@given(text=st.one_of(st.text(max_size=80), st.lists(st.sampled_from(["fw", "mon", "nat", "ids", "x", ""]),
                                                     max_size=40).map(",".join)))
def test_any_sfc_option_text_gives_deployable_specs_or_one_error(text: str) -> None:
    from harness.serpens.sfc import MAX_SFC_POSITIONS, from_cli
    try:
        specs = from_cli(text, cfg.load())
    except SfcError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert all(s.chain.positions() <= MAX_SFC_POSITIONS and len(s.name) <= 63 for s in specs)


@SETTINGS
@given(data=st.one_of(st.binary(max_size=300), values.map(lambda v: yaml.safe_dump(v).encode())))
def test_any_claims_file_loads_or_is_one_error(tmp_path: Path, data: bytes) -> None:
    from harness.claims_file import ClaimsError, load_claims
    path = tmp_path / "claims.yaml"
    path.write_bytes(data)
    with contextlib.suppress(ClaimsError):
        load_claims(path)


@SETTINGS
@given(args=st.lists(st.one_of(st.text(max_size=20), st.sampled_from(
    ["experiment", "check-paper", "--results", "--claims", "--strict", "--plot-only", "limit", "/dev/null",
     "/tmp", "config", "--show", "designs"])), max_size=4))
def test_any_other_command_line_is_accepted_or_one_error(tmp_path: Path, args: list[str]) -> None:
    # no command here may start a run: an experiment name it accepts would (--plot-only draws from a CSV)
    if "experiment" in args and "--plot-only" not in args:
        args = [a for a in args if a not in ("limit",)]
    result = CliRunner().invoke(main, ["--set", f"results.dir={tmp_path}", *args], obj={})
    assert isinstance(result.exception, SystemExit | None), (args, result.output, result.exception)
    assert "Traceback" not in result.output
