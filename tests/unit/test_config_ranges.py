"""Configuration values in their ranges, not only of their types: each wrong value is one line naming the
key, what is allowed and what was given (harness/config/ranges.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import config as cfg


@pytest.mark.parametrize("override, key", [
    ("generator.local.catchup_us=-5", "generator.local.catchup_us"),
    ("traffic.flows=0", "traffic.flows"),
    ("traffic.frame_sizes_b=[64, 63]", "traffic.frame_sizes_b"),
    ("traffic.frame_sizes_b=[4000]", "traffic.frame_sizes_b"),        # beyond the built-in generator
    ("traffic.latency_pps=-1", "traffic.latency_pps"),
    ("measurement.latency_duration_s=0", "measurement.latency_duration_s"),
    ("measurement.latency_duration_s=1e9", "measurement.latency_duration_s"),
    ("measurement.latency_duration_s=.nan", "measurement.latency_duration_s"),
    ("measurement.repetitions=0", "measurement.repetitions"),
    ("search.max_rate_mpps=.inf", "search.max_rate_mpps"),
    ("search.min_rate_mpps=-1", "search.min_rate_mpps"),
    ("search.goals.pdr.loss_ratio=2", "search.goals.pdr.loss_ratio"),
    ("platforms.serpens.batch=0", "platforms.serpens.batch"),
    ("platforms.serpens.wake_batch=4294967296", "platforms.serpens.wake_batch"),
    ("cores.platform=-1", "cores.platform"),
    ("redis.core=-3", "redis.core"),
    ("machine.lock_wait_s=-1", "machine.lock_wait_s"),
])
def test_a_value_out_of_range_is_one_line_naming_the_key(override: str, key: str) -> None:
    with pytest.raises(cfg.ConfigError) as err:
        cfg.load(overrides=[override])
    msg = str(err.value)
    assert f"'{key}'" in msg and "\n" not in msg, msg


def test_search_bounds_the_wrong_way_round_are_refused() -> None:
    with pytest.raises(cfg.ConfigError, match="'search.min_rate_mpps' must be below 'search.max_rate_mpps'"):
        cfg.load(overrides=["search.min_rate_mpps=5", "search.max_rate_mpps=1"])


def test_trex_allows_jumbo_frames_the_built_in_generator_cannot_send() -> None:
    assert cfg.load(overrides=["generator.kind=trex", "traffic.frame_sizes_b=[9000]"])
    with pytest.raises(cfg.ConfigError, match="64..2052"):
        cfg.load(overrides=["traffic.frame_sizes_b=[9000]"])


def test_generator_and_platform_on_one_core_are_refused_unless_allowed() -> None:
    with pytest.raises(cfg.ConfigError, match="cores.allow_shared"):
        cfg.load(overrides=["cores.generator=0", "cores.platform=0"])
    conf = cfg.load(overrides=["cores.generator=0", "cores.platform=0", "cores.allow_shared=true"])
    assert conf["cores"]["generator"] == conf["cores"]["platform"] == 0
    # a TRex generator runs elsewhere: nothing shares the platform's core
    assert cfg.load(overrides=["generator.kind=trex", "cores.generator=0", "cores.platform=0"])


def test_binary_garbage_as_a_config_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "garbage.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(cfg.ConfigError) as err:
        cfg.load([path])
    assert str(err.value).startswith(f"{path}: not a configuration file") and "\n" not in str(err.value)


def test_a_broken_set_value_is_one_line() -> None:
    with pytest.raises(cfg.ConfigError) as err:
        cfg.load(overrides=["search.max_search_s=[1, 2"])
    assert "not valid YAML" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(cfg.ConfigError, match="dotted path"):
        cfg.load(overrides=["search..max_search_s=3"])


def test_an_unknown_start_placement_is_refused_naming_the_choices() -> None:
    for good in ("instance", "same", "other", "any"):
        assert cfg.load(overrides=[f"platforms.serpens.start_placement={good}"])
    with pytest.raises(cfg.ConfigError, match="'platforms.serpens.start_placement' must be one of "
                                              "instance, same, other, any .*'elsewhere'"):
        cfg.load(overrides=["platforms.serpens.start_placement=elsewhere"])
