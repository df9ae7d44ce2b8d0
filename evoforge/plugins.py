"""Naming code in config: ``module:attr`` only, imported with a one-line error for each failure.

Config can name code only through an explicit ``module:attr`` (or an installed entry point, see
envs/registry.py); a value without a colon is never imported, so a config file cannot run code
by accident.
"""

from __future__ import annotations

import importlib
from typing import Any

from evoforge.errors import EvoforgeError


def load_attr(spec: str, what: str = "plugin") -> Any:
    """Import ``module:attr`` (``attr`` may be dotted) with a one-line error for each way it can fail."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise EvoforgeError(f"{what} '{spec}' must be written module:attr")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise EvoforgeError(f"{what} '{spec}' failed to import: {type(e).__name__}: {e}") from e
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise EvoforgeError(
                f"{what} '{spec}': module '{module_name}' has no attribute '{attr}'"
            )
        obj = getattr(obj, part)
    return obj
