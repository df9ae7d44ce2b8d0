"""Finding an environment: the registry, the ``evoforge.envs`` entry points, or ``module:attr``.

Config can name code only through an explicit ``module:attr`` or an installed entry point.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from evoforge.envs import data_file, reasoning_gym, verifiers_taskset
from evoforge.envs.arithmetic import ArithmeticEnv
from evoforge.envs.base import Environment
from evoforge.envs.code import CodeEnv
from evoforge.envs.instructions import InstructionsEnv
from evoforge.envs.parity import ParityEnv
from evoforge.envs.tools import ToolsEnv
from evoforge.errors import EvoforgeError
from evoforge.plugins import load_attr

GROUP = "evoforge.envs"


@dataclass(frozen=True)
class EnvEntry:
    name: str
    factory: Callable[[], Any]
    description: str
    source: str


_REGISTRY: dict[str, EnvEntry] = {}


def register(name: str, factory: Callable[[], Any], description: str = "") -> None:
    """Register an environment factory (a class or a zero-argument function) under ``name``."""
    _REGISTRY[name] = EnvEntry(name, factory, description or _doc_line(factory), "registry")


def _doc_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def _builtins() -> None:
    if "instructions" in _REGISTRY:
        return
    register("instructions", InstructionsEnv)
    register("arithmetic", ArithmeticEnv)
    register("code", CodeEnv)
    register("parity", ParityEnv)
    register("tools", ToolsEnv)


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def _instantiate(label: str, obj: Any) -> Environment:
    try:
        env = obj() if inspect.isclass(obj) or (callable(obj) and not _looks_like_env(obj)) else obj
    except Exception as e:
        raise EvoforgeError(
            f"environment '{label}' failed to construct: {type(e).__name__}: {e}"
        ) from e
    missing = [a for a in ("name", "tasks", "verify") if not hasattr(env, a)]
    if missing:
        raise EvoforgeError(
            f"environment '{label}' is missing {', '.join(missing)}; an Environment "
            "needs a name, tasks(split, n, seed) and verify(task, response)"
        )
    return env


def _looks_like_env(obj: Any) -> bool:
    return hasattr(obj, "tasks") and hasattr(obj, "verify")


def get_env(spec: str, data: Any = None) -> Environment:
    """An environment by registered name, entry-point name, ``module:attr``,
    ``reasoning-gym:NAME``, ``verifiers:MODULE[:NAME]`` or ``file:PATH`` (``data``: the config's
    data section, for files and verifiers tasksets)."""
    _builtins()
    if spec.startswith(verifiers_taskset.PREFIX):
        return verifiers_taskset.VerifiersTasksetEnv(
            spec[len(verifiers_taskset.PREFIX) :],
            pass_threshold=getattr(data, "pass_threshold", 1.0),
        )
    if spec.startswith(reasoning_gym.PREFIX):
        return reasoning_gym.ReasoningGymEnv(spec[len(reasoning_gym.PREFIX) :])
    if spec.startswith(data_file.PREFIX):
        d = data
        return data_file.DataFileEnv(
            spec[len(data_file.PREFIX) :],
            reward=getattr(d, "reward", ""),
            prompt_field=getattr(d, "prompt_field", "prompt"),
            answer_field=getattr(d, "answer_field", "answer"),
            pass_threshold=getattr(d, "pass_threshold", 1.0),
        )
    if spec in _REGISTRY:
        return _instantiate(spec, _REGISTRY[spec].factory)
    eps = _entry_points()
    if spec in eps:
        try:
            obj = eps[spec].load()
        except Exception as e:
            raise EvoforgeError(
                f"environment '{spec}' (entry point {eps[spec].value}) failed to import: "
                f"{type(e).__name__}: {e}"
            ) from e
        return _instantiate(spec, obj)
    if ":" in spec:
        return _instantiate(spec, load_attr(spec, "environment"))
    import difflib

    names = sorted(set(_REGISTRY) | set(eps))
    close = difflib.get_close_matches(spec, names, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise EvoforgeError(
        f"unknown environment '{spec}'; {hint}known: {', '.join(names)} (or pass module:attr)"
    )


def list_envs() -> list[EnvEntry]:
    """Every environment evoforge can find, with a one-line description."""
    _builtins()
    entries = dict(_REGISTRY)
    for name, ep in _entry_points().items():
        if name not in entries:
            entries[name] = EnvEntry(name, ep.load, f"entry point {ep.value}", "entry point")
    return [entries[k] for k in sorted(entries)]
