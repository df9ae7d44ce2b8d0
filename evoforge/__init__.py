"""evoforge: self-improvement rounds for a language model.

    import evoforge
    result = evoforge.run(evoforge.load_config(None, ["model=tiny", "rounds=2"]))

See README.md for the command line and how to plug in an environment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Config", "RunResult", "load_config", "resume", "run"]

if TYPE_CHECKING:
    from evoforge.loops.config import Config, load_config
    from evoforge.loops.runner import RunResult, resume, run


def __getattr__(name: str) -> Any:
    # Lazy: `import evoforge` stays light; the runner pulls in Ray, LangGraph and TRL.
    if name in ("Config", "load_config"):
        from evoforge.loops import config

        return getattr(config, name)
    if name in ("RunResult", "resume", "run"):
        from evoforge.loops import runner

        return getattr(runner, name)
    raise AttributeError(name)
