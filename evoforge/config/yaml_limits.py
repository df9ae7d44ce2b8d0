"""A config file read safely, and config values shown safely in one-line messages.

The YAML loader is PyYAML's SafeLoader with limits: a mapping with the same key twice, a key that
is a list or a mapping, aliases that expand to more than ``MAX_VALUES`` values (an alias bomb:
counted on the composed nodes, each once, before any value is built), values nested past
Python's recursion limit and files over ``MAX_FILE_BYTES`` are each a one-line ConfigError. YAML
1.1 merge keys (``<<: *defaults``) work; keys written out beside them win.
"""

from __future__ import annotations

import math
import reprlib
import unicodedata
from pathlib import Path
from typing import Any

import yaml

from evoforge.errors import ConfigError

MAX_FILE_BYTES = 1 << 20
"""A config file is a few KB; a bigger one is a mistake, and is refused before it is read."""

MAX_VALUES = 10_000
"""A config holds about 150 values: more once YAML aliases are expanded is an alias bomb."""

MAX_TEXT = 4096
"""The longest string a config value may hold (PATH_MAX: the longest strings are paths)."""

SHOWN = 100
"""Values in error messages are cut to this many characters."""

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 60
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 4
_repr.maxlevel = 3


def shown(value: Any) -> str:
    """``repr(value)`` cut to a readable length: an error message never prints a huge value."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        digits = int(value.bit_length() * math.log10(2)) + 1  # str() refuses > 4300 digits
        return f"an integer of {digits - (abs(value) < 10 ** (digits - 1))} digits"
    if isinstance(value, str) and len(value) > 4 * SHOWN:
        value = value[: 4 * SHOWN]  # reprlib cuts it again; only the cut must stay cheap
    text = _repr.repr(value)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def _cut(text: str, limit: int = 120) -> str:
    """A message from a library, escaped and cut to ``limit`` characters."""
    text = text[: 4 * limit]
    text = text if text.isprintable() else repr(text)[1:-1]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def invisible(text: str) -> str | None:
    """The first control or invisible format character of ``text`` (unicodedata categories Cc
    and Cf: newlines, tabs, NUL, escapes, right-to-left overrides, zero-width spaces), described
    as e.g. "an invisible format character (U+202E RIGHT-TO-LEFT OVERRIDE) at position 4"; None
    when there is none."""
    for i, ch in enumerate(text):
        category = unicodedata.category(ch)
        if category in ("Cc", "Cf"):
            kind = "a control character" if category == "Cc" else "an invisible format character"
            name = unicodedata.name(ch, "")
            return f"{kind} (U+{ord(ch):04X}{' ' + name if name else ''}) at position {i}"
    return None


class _ConfigLoader(yaml.SafeLoader):
    """SafeLoader for a config: refuses a mapping with the same key twice (PyYAML keeps the
    last), keys that are lists or mappings, and aliases that expand past ``MAX_VALUES`` values;
    merges ``<<`` keys as YAML 1.1 does."""

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return self.construct_document(node)


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand to more than MAX_VALUES values, or refer to a
    node that holds them, before any value is built (each node is counted once: linear time)."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ConfigError(
                f"the alias at line {node.start_mark.line + 1} refers to a value "
                "that holds it (a cycle); write the value out"
            )
        active.add(key)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        total = 1 + sum(size(child) for child in children)
        active.discard(key)
        if total > MAX_VALUES:
            raise ConfigError(
                f"the value at line {node.start_mark.line + 1} expands to more than "
                f"{MAX_VALUES} values through YAML aliases (an alias bomb?); a config needs a "
                "few hundred: write the values out"
            )
        sizes[key] = total
        return total

    size(root)


def _key_name(node: yaml.Node) -> str:
    return "a list" if isinstance(node, yaml.SequenceNode) else "a mapping"


def _mapping(loader: _ConfigLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<:` merges, written-out keys win
            continue
        if not isinstance(key_node, yaml.ScalarNode):
            raise ConfigError(
                f"the key at line {key_node.start_mark.line + 1} is "
                f"{_key_name(key_node)}; keys are names, like rounds: 3"
            )
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(
                f"config key {shown(key)} appears twice (line {key_node.start_mark.line + 1}); "
                "keep one of them"
            )
        seen.add(key)
    loader.flatten_mapping(node)  # merged keys: their own keys were checked where written
    return loader.construct_mapping(node, deep=deep)


_ConfigLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _unshared(value: Any) -> Any:
    """A copy without shared parts: an alias or merge makes two keys hold one dict, which an
    override must not change twice."""
    if isinstance(value, dict):
        return {k: _unshared(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unshared(v) for v in value]
    return value


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML config file as a mapping, with one-line errors for every way it can be wrong."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            f"config file '{p}' not found; pass an existing YAML file or none for the default"
        )
    if p.stat().st_size > MAX_FILE_BYTES:
        raise ConfigError(
            f"config file '{p}' holds {p.stat().st_size} bytes; a config is a few KB "
            f"(the limit is {MAX_FILE_BYTES}): pass the right file"
        )
    try:
        loaded = yaml.load(p.read_text(encoding="utf-8"), Loader=_ConfigLoader)  # noqa: S506
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None)
        why = f" ({_cut(problem)})" if problem else ""
        raise ConfigError(
            f"config file '{p}' is not valid YAML{where}{why}; fix the syntax"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file '{p}' is not UTF-8 text") from None
    except RecursionError:
        raise ConfigError(
            f"config file '{p}' nests values too deeply; a config has sections one level deep"
        ) from None
    except ConfigError as e:  # refused by the loader: say which file
        raise ConfigError(f"config file '{p}': {e}") from None
    except ValueError as e:  # e.g. an integer of more than 4300 digits, or a date like 2024-13-01
        raise ConfigError(
            f"config file '{p}' holds a value YAML cannot read ({_cut(str(e))}); "
            "write it as plain text or a number in range"
        ) from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(
            f"config file '{p}' must hold a mapping of keys, not {type(loaded).__name__}"
        )
    return _unshared(loaded)
