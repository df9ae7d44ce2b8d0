"""Reading a config: YAML plus dotted ``key=value`` overrides, checked against the dataclasses.

Every check runs before any work: unknown keys (with the closest valid one), wrong types, strings
outside their choices or holding control or invisible format characters, numbers outside the range
their field declares, nan and inf, duplicate or non-scalar keys in a YAML file, YAML aliases that
expand past a small budget (an alias bomb is refused before it is built), and settings that are
each valid but cannot work together (``check_combinations``). Each is a one-line ConfigError
naming the key and the fix, showing a value cut to a readable length (yaml_limits.py reads the
file).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from evoforge.config.yaml_limits import MAX_TEXT, invisible, read_yaml, shown
from evoforge.errors import ConfigError


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def all_keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted key of a config class, sections excluded."""
    keys = []
    for f in dataclasses.fields(cls):
        tp = _hints(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            keys.extend(all_keys(tp, f"{prefix}{f.name}."))
        else:
            keys.append(prefix + f.name)
    return keys


def _unknown(key: str, valid: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = (
        f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(valid[:12])} ..."
    )
    return ConfigError(f"unknown config key {shown(key)}{hint}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _from_text(key: str, tp: Any, text: str) -> Any:
    try:
        if tp is bool:
            low = text.strip().lower()
            if low in ("true", "yes", "1", "on"):
                return True
            if low in ("false", "no", "0", "off"):
                return False
            raise ValueError
        if tp is int:
            return int(text)
        if tp is float:
            return float(text)
        return text
    except ValueError:
        raise ConfigError(
            f"config key '{key}' expects {_type_name(tp)}, got {shown(text)}"
        ) from None


def _coerce(key: str, tp: Any, value: Any, from_text: bool) -> Any:
    """Check (YAML) or convert (command-line text) one value against its field type."""
    if isinstance(tp, types.UnionType):  # not used by the schema; keep the error clear
        raise ConfigError(f"config key '{key}' has an unsupported type {tp}")
    if from_text:
        value = _from_text(key, tp, str(value))
    ok = (
        (tp is bool and isinstance(value, bool))
        or (tp is int and isinstance(value, int) and not isinstance(value, bool))
        or (tp is float and isinstance(value, int | float) and not isinstance(value, bool))
        or (tp is str and isinstance(value, str))
    )
    if not ok:
        raise ConfigError(
            f"config key '{key}' expects {_type_name(tp)}, got {type(value).__name__} "
            f"{shown(value)}"
        )
    if tp is str:
        _check_text(key, value)
    return float(value) if tp is float else value


def _check_text(key: str, value: str) -> None:
    if len(value) > MAX_TEXT:
        raise ConfigError(
            f"config key '{key}' holds {len(value)} characters ({shown(value)}); "
            f"the limit is {MAX_TEXT}: use a shorter value"
        )
    bad = invisible(value)
    if bad:
        raise ConfigError(f"config key '{key}' holds {bad} in {shown(value)}; use plain text")


def _check_range(key: str, value: Any, meta: dict[str, Any]) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key '{key}' must be a finite number, got {shown(value)}")
    bounds = []
    if "ge" in meta and value < meta["ge"]:
        bounds.append(f">= {meta['ge']}")
    if "gt" in meta and value <= meta["gt"]:
        bounds.append(f"> {meta['gt']}")
    if "le" in meta and value > meta["le"]:
        bounds.append(f"<= {meta['le']}")
    if bounds:
        raise ConfigError(f"config key '{key}' must be {' and '.join(bounds)}, got {shown(value)}")


def range_text(meta: dict[str, Any]) -> str:
    """A field's declared range, e.g. '>= 1, <= 64' (empty when unbounded)."""
    parts = [f"{op} {meta[k]}" for k, op in (("ge", ">="), ("gt", ">"), ("le", "<=")) if k in meta]
    return ", ".join(parts)


def _build(cls: type, data: dict[str, Any], prefix: str, textual: set[str], root: type) -> Any:
    hints = _hints(cls)
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        dotted = prefix + str(key)
        if key not in names:
            raise _unknown(dotted, all_keys(root))
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"config key '{dotted}' is a section; set its fields, e.g. "
                    f"{dotted}.{dataclasses.fields(tp)[0].name}=..."
                )
            kwargs[key] = _build(tp, value, dotted + ".", textual, root)
            continue
        value = _coerce(dotted, tp, value, dotted in textual)
        meta = names[key].metadata
        choices = meta.get("choices")
        if choices and meta.get("many"):
            items = [v.strip() for v in value.split(",") if v.strip()]
            for item in items:
                if item not in choices:
                    raise ConfigError(
                        f"config key '{dotted}' takes a comma-separated list of "
                        f"{', '.join(choices)}; got {shown(item)}"
                    )
                if items.count(item) > 1:
                    raise ConfigError(
                        f"config key '{dotted}' names {shown(item)} twice; list it once"
                    )
        elif choices and value not in choices:
            raise ConfigError(
                f"config key '{dotted}' must be one of {', '.join(choices)}; got {shown(value)}"
            )
        _check_range(dotted, value, meta)
        kwargs[key] = value
    return cls(**kwargs)


def build(
    cls: type,
    path: str | Path | None,
    overrides: list[str] | tuple[str, ...] = (),
    presets: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None,
) -> Any:
    """An instance of the config class ``cls`` from an optional YAML file and overrides.

    ``presets`` maps what the file and the overrides set to defaults of their own (dotted key ->
    value, e.g. an environment's): each applies where neither the file nor an override set its
    key, and is checked like a file's value."""
    data: dict[str, Any] = read_yaml(path) if path is not None else {}
    textual: set[str] = set()
    keys = all_keys(cls)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {shown(item)} is not key=value (e.g. rounds=3)")
        key, value = item.split("=", 1)
        key = key.strip()
        if key not in keys:
            raise _unknown(key, keys)
        section = _section(data, key)
        if section is None:
            raise ConfigError(f"config key '{key}' conflicts with a scalar in the config file")
        section[key.rsplit(".", 1)[-1]] = value
        textual.add(key)
    for key, value in (presets(data) if presets else {}).items():
        if key not in keys:
            raise _unknown(key, keys)
        section = _section(data, key)
        if section is not None:  # else the file set a section to a scalar: _build says so
            section.setdefault(key.rsplit(".", 1)[-1], value)
    return _build(cls, data, "", textual, cls)


def _section(data: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The dict of raw ``data`` that holds the dotted ``key`` (made where missing); None where
    the file set one of its sections to a scalar."""
    node: Any = data
    for part in key.split(".")[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            return None
    return node


def check_combinations(config: Any) -> Any:
    """Settings that are each in range but cannot work together (checked before any work)."""
    t = config.train
    if t.algorithm == "grpo":
        small, big = sorted((t.batch_size, t.grpo_generations))
        if big % small:
            raise ConfigError(
                f"train.batch_size={t.batch_size} and train.grpo_generations={t.grpo_generations}: "
                "GRPO trains on whole groups of completions, so one must divide the other "
                f"(e.g. train.batch_size={t.grpo_generations})"
            )
    window = config.serving.max_model_len
    for key, tokens in (
        ("generation.max_tokens", config.generation.max_tokens),
        ("refiner.max_tokens", config.refiner.max_tokens),
        ("critic.max_tokens", config.critic.max_tokens),
        ("eval.max_tokens", config.eval.max_tokens),
    ):
        if tokens >= window:
            raise ConfigError(
                f"{key}={tokens} leaves no room for a prompt in serving.max_model_len={window}; "
                f"lower {key} or raise serving.max_model_len"
            )
    return config


def differences(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested config dicts, as 'key (old -> new)'."""
    out = []
    for key in sorted(set(a) | set(b), key=str):
        x, y = a.get(key), b.get(key)
        if isinstance(x, dict) and isinstance(y, dict):
            out.extend(differences(x, y, f"{prefix}{key}."))
        elif x != y:
            out.append(f"{prefix}{key} ({shown(x)} -> {shown(y)})")
    return out


def to_dict(config: Any) -> dict[str, Any]:
    """The config as plain nested dicts (for config.yaml)."""
    return dataclasses.asdict(config)


def dump_yaml(config: Any) -> str:
    """The config as the YAML a run directory records."""
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def help_text(cls: type) -> str:
    """Every config key with its type or choices, range, default and documentation."""
    lines = []

    def walk(c: type, prefix: str) -> None:
        hints = _hints(c)
        for f in dataclasses.fields(c):
            tp = hints[f.name]
            if dataclasses.is_dataclass(tp):
                lines.append(f"\n  [{prefix}{f.name}] {f.metadata.get('help', '')}")
                walk(tp, f"{prefix}{f.name}.")
                continue
            choices = f.metadata.get("choices")
            kind = ("|".join(choices) if choices else _type_name(tp)) + (
                ",..." if f.metadata.get("many") else ""
            )
            bounds = range_text(f.metadata)
            if bounds:
                kind += f", {bounds}"
            setting = f"{prefix}{f.name}={f.default!r}"
            lines.append(f"  {setting:<40} ({kind}) {f.metadata.get('help', '')}")

    walk(cls, "")
    return "\n".join(lines)
