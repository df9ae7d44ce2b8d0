"""Defaults that differ by environment: where a built-in environment is best served by other
settings than the general ones, its own values, applied under whatever the user sets.

``evoforge run env=tools`` takes these; ``evoforge run env=tools generation.samples=8`` (or a
config file) still wins, key by key. A run records the values it ran with in config.yaml, so a
resume never depends on this table. The reason for each entry is measured (docs/tuning.md).
"""

from __future__ import annotations

from typing import Any

ENV_DEFAULTS: dict[str, dict[str, Any]] = {
    # Round 0 on the default model, all defaults (docs/tuning.md, "tools"): the model never
    # calls a tool by itself, so sampling passes nothing and every pair comes from guided
    # exploration, where only the forced first call ever passed (feedback 0/32, hint 0/32 in
    # three runs); the judge and the tree search (229 s) made no pair. A round spends its time
    # on what teaches: fewer plain samples (they only find the rejected sides), the prefix
    # kind alone, no search, a held-out set of 200 (the gain is ~0.26, far past its noise).
    "tools": {
        "generation.samples": 4,
        "explore.kinds": "prefix",
        "search.max_tasks": 0,
        "critic.calibration_answers": 0,
        "eval.heldout_tasks": 200,
    },
}
"""Environment name -> dotted config key -> its default for that environment."""


def env_defaults(data: dict[str, Any], default_env: str) -> dict[str, Any]:
    """The defaults of the environment a config's raw ``data`` names (``default_env`` when it
    names none); empty for an environment without its own."""
    return dict(ENV_DEFAULTS.get(str(data.get("env", default_env)), {}))
