"""evoforge: self-improvement rounds for a language model.

    import evoforge
    result = evoforge.run(evoforge.load_config(None, ["model=tiny", "rounds=2"]))

The public API: :func:`run`, :func:`resume`, :func:`load_config`, and for environments
:class:`Environment`, :class:`Task`, :class:`Verdict` and :func:`register`. README.md shows the
command line; docs/architecture.md the design.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evoforge.config import load_config
from evoforge.envs.base import Environment, Task, Verdict
from evoforge.envs.registry import register

__version__ = "0.1.0"
__all__ = ["Environment", "Task", "Verdict", "load_config", "register", "resume", "run"]

if TYPE_CHECKING:
    from evoforge.driver.runner import resume, run


def __getattr__(name: str) -> Any:
    # Lazy: `import evoforge` stays light; the runner pulls in Ray, LangGraph and transformers.
    if name in ("resume", "run"):
        from evoforge.driver import runner

        return getattr(runner, name)
    raise AttributeError(name)
