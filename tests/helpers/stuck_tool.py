"""A multi-turn environment whose tool never returns (it waits on an event nobody sets), for the
tool time limit."""

from __future__ import annotations

import sys
import threading

from evoforge.envs import Task, Tool, object_schema
from tests.helpers.multiturn import ParityChatEnv

RELEASE = threading.Event()
"""Set by a test to let the stuck calls of this process end (they are daemon threads anyway)."""


def lookup(name: str) -> str:
    print(f"stuck tool: lookup({name!r}) called", file=sys.stderr, flush=True)
    RELEASE.wait()
    return f"{name}: found"


class StuckToolEnv(ParityChatEnv):
    """ParityChatEnv whose one tool hangs; its own time limit is 0.5 s."""

    name = "stucktool"
    tool_timeout_s = 0.5

    def tools(self, task: Task) -> list[Tool]:
        return [Tool("lookup", "Look a name up.", object_schema(name="string"), lookup)]


class SlowDefaultEnv(StuckToolEnv):
    """The same without a time limit of its own (the config's, else 30 s, applies)."""

    name = "stucktool-nolimit"
    tool_timeout_s = 0
