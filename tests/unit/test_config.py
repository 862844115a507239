"""Configuration: defaults load, user YAML merges strictly, errors name file, key and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from harness import config as cfg
from harness.cli import main


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "user.yaml"
    p.write_text(text)
    return p


def test_defaults_load_and_quick_profile_applies() -> None:
    normal, quick = cfg.load(), cfg.load(quick=True)
    assert normal["measurement"]["repetitions"] == 3
    assert quick["measurement"]["repetitions"] == 1
    assert quick["search"]["max_search_s"] < normal["search"]["max_search_s"]
    q, n = quick["search"]["goals"]["pdr"], normal["search"]["goals"]["pdr"]
    assert q["duration_sum_s"] < n["duration_sum_s"]
    assert quick["search"]["goals"]["pdr"]["loss_ratio"] == normal["search"]["goals"]["pdr"]["loss_ratio"]
    assert "quick" not in normal


def test_user_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    conf = cfg.load([write(tmp_path, "search:\n  max_search_s: 300\ncores:\n  generator: 0\n  platform: 1\n")
                     ])
    assert conf["search"]["max_search_s"] == 300
    assert conf["search"]["goals"] == cfg.load()["search"]["goals"]
    assert conf["cores"] == {"generator": 0, "platform": 1, "allow_shared": False}


def test_misspelled_key_names_file_key_and_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, "search:\n  max_search: 100\n")
    with pytest.raises(cfg.ConfigError) as err:
        cfg.load([path])
    msg = str(err.value)
    assert str(path) in msg and "'search.max_search'" in msg and "did you mean 'search.max_search_s'" in msg


def test_wrong_type_names_key_and_expected_type(tmp_path: Path) -> None:
    path = write(tmp_path, "measurement:\n  repetitions: three\n")
    with pytest.raises(cfg.ConfigError, match=r"user.yaml: key 'measurement.repetitions' must be an integer"):
        cfg.load([path])


def test_int_accepted_for_float_but_bool_is_not_a_number(tmp_path: Path) -> None:
    assert cfg.load([write(tmp_path, "search:\n  max_search_s: 7\n")])["search"]["max_search_s"] == 7
    with pytest.raises(cfg.ConfigError, match="must be a number"):
        cfg.load([write(tmp_path, "search:\n  max_search_s: true\n")])


def test_list_elements_are_typed(tmp_path: Path) -> None:
    with pytest.raises(cfg.ConfigError, match="list of an integer"):
        cfg.load([write(tmp_path, "traffic:\n  frame_sizes_b: [64, big]\n")])


def test_section_replaced_by_scalar_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(cfg.ConfigError, match="key 'search' must be a mapping"):
        cfg.load([write(tmp_path, "search: 3\n")])


def test_invalid_yaml_and_missing_file_are_clear(tmp_path: Path) -> None:
    with pytest.raises(cfg.ConfigError, match="not valid YAML"):
        cfg.load([write(tmp_path, "search: [\n")])
    with pytest.raises(cfg.ConfigError, match="cannot read"):
        cfg.load([tmp_path / "nope.yaml"])


def test_set_override_is_validated_like_a_file() -> None:
    assert cfg.load(overrides=["search.goals.pdr.loss_ratio=0.005"])["search"]["goals"]["pdr"]["loss_ratio"] \
        == 0.005
    with pytest.raises(cfg.ConfigError, match="unknown key 'search.goals.pdr.los_ratio'"):
        cfg.load(overrides=["search.goals.pdr.los_ratio=0.005"])


def test_cli_show_prints_merged_config_and_cli_rejects_typo(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["-c", str(write(tmp_path, "traffic:\n  flows: 7\n")), "config", "--show"])
    assert ok.exit_code == 0 and "flows: 7" in ok.output
    bad = runner.invoke(main, ["-c", str(write(tmp_path, "trafic:\n  flows: 7\n")), "config"])
    assert bad.exit_code != 0 and "unknown key 'trafic'" in bad.output and "user.yaml" in bad.output
