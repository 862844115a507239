"""Configuration values in their ranges, not only of their types: each wrong value is one line naming the
key, what is allowed and what was given (harness/config/ranges.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import config as cfg


@pytest.mark.parametrize("override, key", [
    ("generator.local.catchup_us=-5", "generator.local.catchup_us"),
    # what the built-in generator and serpensd refuse themselves (their EAL/usage text would bury it)
    ("generator.local.idle_sleep_us=20", "generator.local.idle_sleep_us"),
    ("generator.local.burst=600", "generator.local.burst"),
    ("platforms.wire.burst=600", "platforms.wire.burst"),
    ("platforms.serpens.wake_batch=5000", "platforms.serpens.wake_batch"),
    ("platforms.serpens.state_region_mb=2", "platforms.serpens.state_region_mb"),
    ("platforms.serpens.pool=513", "platforms.serpens.pool"),
    ("platforms.serpens.instances=17", "platforms.serpens.instances"),     # above max_instances (16)
    ("platforms.serpens.max_instances=101", "platforms.serpens.max_instances"),
    ("platforms.serpens.rx_gap_ns=-1", "platforms.serpens.rx_gap_ns"),
    # shorter than the generator's shortest trial (1 ms)
    ("measurement.latency_duration_s=0.0005", "measurement.latency_duration_s"),
    ("search.goals.ndr.final_trial_s=0.0001", "search.goals.ndr.final_trial_s"),
    ("search.warmup_s=0.0001", "search.warmup_s"),
    ("figure13.lengths=[0]", "figure13.lengths"),              # was a RuntimeError traceback
    ("figure13.lengths=[17]", "figure13.lengths"),             # beyond one serpensd's SFC
    ("platforms.serpens.gproxy_hold=0", "platforms.serpens.gproxy_hold"),
    ("doctor.floor_profile.lost_ratio=2", "doctor.floor_profile.lost_ratio"),
    ("traffic.flows=0", "traffic.flows"),
    ("traffic.frame_sizes_b=[64, 63]", "traffic.frame_sizes_b"),
    ("traffic.frame_sizes_b=[9004]", "traffic.frame_sizes_b"),        # beyond a jumbo frame
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


def test_both_generators_send_jumbo_frames_up_to_9000_bytes() -> None:
    assert cfg.load(overrides=["generator.kind=trex", "traffic.frame_sizes_b=[9000]"])
    assert cfg.load(overrides=["traffic.frame_sizes_b=[9000]"])
    for kind in ("local", "trex"):
        with pytest.raises(cfg.ConfigError, match="64..9000"):
            cfg.load(overrides=[f"generator.kind={kind}", "traffic.frame_sizes_b=[9001]"])


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


def test_numbers_yaml_reads_as_text_are_numbers() -> None:
    # PyYAML (YAML 1.1) resolves 1e9 and 5e-3 to strings; a user means the number, and its range decides
    conf = cfg.load(overrides=["search.max_search_s=1e3", "search.min_rate_mpps=5e-3"])
    assert conf["search"]["max_search_s"] == 1000.0 and conf["search"]["min_rate_mpps"] == 0.005
    with pytest.raises(cfg.ConfigError, match=r"'measurement.latency_duration_s' must be a number in "
                                              r"\[0.001, 3600\], got 1000000000.0"):
        cfg.load(overrides=["measurement.latency_duration_s=1e9"])


def test_zero_turns_off_what_0_means_none_for() -> None:
    assert cfg.load(overrides=["search.warmup_s=0", "generator.local.idle_sleep_us=0"])


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "huge"])
def test_a_file_that_is_not_a_small_regular_file_is_one_line(tmp_path: Path, kind: str) -> None:
    # a FIFO blocked the harness for ever; /dev/zero filled its memory (MemoryError)
    import os
    path = tmp_path / "conf.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path = Path("/dev/zero")
    elif kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"#" * (cfg.MAX_INPUT_BYTES + 1))
    with pytest.raises(cfg.ConfigError) as err:
        cfg.load([path])
    msg = str(err.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg, msg
    assert ("at most" if kind == "huge" else "cannot read configuration file") in msg


def test_an_unknown_start_placement_is_refused_naming_the_choices() -> None:
    for good in ("instance", "same", "other", "any"):
        assert cfg.load(overrides=[f"platforms.serpens.start_placement={good}"])
    with pytest.raises(cfg.ConfigError, match="'platforms.serpens.start_placement' must be one of "
                                              "instance, same, other, any .*'elsewhere'"):
        cfg.load(overrides=["platforms.serpens.start_placement=elsewhere"])
