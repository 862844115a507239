"""Configuration: one commented defaults file, user YAML merged over it, validated strictly.

The defaults (``defaults.yaml`` beside this file) define every key and, by their values, every type. A user's
file may only set keys that exist there, with values of the same type (an int is accepted where a float is
expected). Anything else is a :class:`ConfigError` naming the file, the dotted key and what was expected —
a typo is an error, never a silently ignored setting (the NFVbench way).
"""

from __future__ import annotations

import copy
import difflib
import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from harness.config import ranges
from harness.config.errors import ConfigError

__all__ = ["DEFAULTS_FILE", "REPO_ROOT", "Config", "ConfigError", "dump", "load", "parse_override",
           "read_input_file", "repo_path"]

DEFAULTS_FILE = Path(__file__).with_name("defaults.yaml")
REPO_ROOT = Path(__file__).resolve().parents[2]

Config = dict[str, Any]


# Keys that once chose a design axis. The design (``--platform NAME``, harness/platforms/designs.py) decides
# every axis now, so that a name means one design; a file that still sets one is told what replaced it.
_AXIS_INSTEAD = ("a design decides it: choose the platform (--platform NAME, e.g. serpens, fission-state, "
                 "sand-chaining; `harness designs` lists them) or add a design to "
                 "harness/platforms/designs.py")
RETIRED_KEYS: dict[str, str] = {
    "platforms.serpens.state_backend": "the state axis: " + _AXIS_INSTEAD,
    "platforms.serpens.nf_loader": "the startup axis (load: dlopen, serpens: shared-memory images): "
                                   + _AXIS_INSTEAD,
    "platforms.serpens.startup": "the startup axis: " + _AXIS_INSTEAD,
    "platforms.serpens.chaining": "the chaining axis: " + _AXIS_INSTEAD,
}


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean (true/false)"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _same_type(default: Any, value: Any) -> bool:
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


# a number as people write it, which YAML 1.1 (PyYAML) resolves to a string when it has an exponent without a
# dot or a signed exponent: 1e9, 5e-3
_YAML11_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _merge(base: Config, override: Mapping[str, Any], source: str, prefix: str = "") -> None:
    """Merge ``override`` into ``base`` in place, checking every key and type against ``base``."""
    if not isinstance(override, Mapping):
        where = f"key '{prefix.rstrip('.')}'" if prefix else "the top level"
        raise ConfigError(f"{source}: {where} must be a mapping, got {_type_name(override)}")
    for key, value in override.items():
        dotted = f"{prefix}{key}"
        if key not in base and dotted in RETIRED_KEYS:
            raise ConfigError(f"{source}: key '{dotted}' is no longer a setting; {RETIRED_KEYS[dotted]}")
        if key not in base:
            close = difflib.get_close_matches(str(key), [str(k) for k in base], n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            known = ", ".join(sorted(str(k) for k in base))
            raise ConfigError(f"{source}: unknown key '{dotted}'{hint}; known keys here: {known}")
        default = base[key]
        if isinstance(default, dict):
            _merge(default, value, source, dotted + ".")
            continue
        if isinstance(default, float) and isinstance(value, str) and _YAML11_NUMBER.fullmatch(value.strip()):
            value = float(value)   # YAML 1.1 reads 1e9 (no dot, no sign in the exponent) as text
        if not _same_type(default, value):
            raise ConfigError(
                f"{source}: key '{dotted}' must be {_type_name(default)} "
                f"(like the default {default!r}), got {value!r} ({_type_name(value)})")
        if isinstance(default, list) and default and value:
            for item in value:
                if not _same_type(default[0], item):
                    raise ConfigError(
                        f"{source}: key '{dotted}' must be a list of {_type_name(default[0])} values, "
                        f"got element {item!r}")
        base[key] = copy.deepcopy(value)


MAX_INPUT_BYTES = 16 << 20   # a configuration or SFC file; the largest here is a few KiB


def read_input_file(path: Path, what: str) -> bytes:
    """The bytes of a file a user names (``-c``, ``--sfc``): a regular file of at most MAX_INPUT_BYTES. A
    FIFO would block the harness for ever and /dev/zero would fill its memory (issue 13's hostile inputs):
    each is one :class:`ConfigError` line instead. Opened non-blocking, so that opening a FIFO returns."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise ConfigError(f"{path}: cannot read {what}: {kind}")
        if st.st_size > MAX_INPUT_BYTES:
            raise ConfigError(f"{path}: {what} of {st.st_size} bytes, at most {MAX_INPUT_BYTES}")
        chunks, size = [], 0
        while size <= MAX_INPUT_BYTES:   # it may grow while being read
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_INPUT_BYTES:
            raise ConfigError(f"{path}: {what} of more than {MAX_INPUT_BYTES} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _read_yaml(path: Path) -> Any:
    raw = read_input_file(path, "configuration file")
    data = yaml_text(raw, str(path), "a configuration file")
    return {} if data is None else data


def yaml_text(raw: bytes | str, source: str, what: str) -> Any:
    """Parse YAML that may be anything a user can point at (binary garbage, a deep nest): every failure is a
    :class:`ConfigError` naming ``source``, never a traceback."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not {what}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = " ".join(str(exc).split())   # one line
        raise ConfigError(f"{source}: not valid YAML: {first}") from None
    except (RecursionError, ValueError, TypeError, OverflowError) as exc:
        # a nest too deep for the parser, or a scalar the YAML resolver cannot turn into a value
        raise ConfigError(f"{source}: not usable as {what}: {type(exc).__name__}: {exc}") from None
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """``search.goals.pdr.loss_ratio=0.005`` → (``search.goals.pdr.loss_ratio``, 0.005); the value is parsed
    as YAML."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. search.goals.pdr.loss_ratio=0.005")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {text!r}: the key must be a dotted path such as search.max_search_s")
    return key, yaml_text(raw, f"--set {text!r}", "a value") if raw.strip() else None


def _nest(dotted: str, value: Any) -> Config:
    out: Config = {}
    node = out
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def load(files: Iterable[str | Path] = (), overrides: Iterable[str] = (), quick: bool = False) -> Config:
    """Defaults, then each user file in order, then the quick profile, then ``--set`` overrides."""
    defaults = _read_yaml(DEFAULTS_FILE)
    quick_profile = defaults.pop("quick", {})
    config: Config = copy.deepcopy(defaults)
    for f in files:
        path = Path(f)
        data = _read_yaml(path)
        if isinstance(data, Mapping) and "quick" in data:
            raise ConfigError(f"{path}: key 'quick' is the built-in QUICK=1 profile and cannot be set")
        _merge(config, data, str(path))
    if quick:
        _merge(config, quick_profile, f"{DEFAULTS_FILE} (quick profile)")
    for text in overrides:
        key, value = parse_override(text)
        _merge(config, _nest(key, value), f"--set {text}")
    ranges.check(config)
    return config


def repo_path(path: str | Path) -> Path:
    """A configured path: absolute as it is, relative to the repository root otherwise."""
    p = Path(path)
    return p if p.is_absolute() else REPO_ROOT / p


def dump(config: Config) -> str:
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
