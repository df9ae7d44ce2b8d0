"""Environments: tasks plus a verifier. The plug-in unit of evoforge.

A custom environment is one small file with a ``name``, ``tasks(split, n, seed)`` and
``verify(task, response)``; see examples/custom_env.py and :func:`check_env`. A multi-turn
environment also gives ``tools(task)`` and verifies whole trajectories; see
evoforge/envs/multiturn.py, examples/custom_tool_env.py and docs/environments.md.
"""

from evoforge.envs.base import Environment, Task, Verdict
from evoforge.envs.multiturn import (
    EnvReply,
    MultiTurnEnvironment,
    Tool,
    ToolError,
    object_schema,
    optional,
)
from evoforge.envs.registry import get_env, list_envs, register
from evoforge.envs.toolcalls import TurnCalls, trajectory_calls

__all__ = [
    "EnvReply",
    "Environment",
    "MultiTurnEnvironment",
    "Task",
    "Tool",
    "ToolError",
    "TurnCalls",
    "Verdict",
    "get_env",
    "list_envs",
    "object_schema",
    "optional",
    "register",
    "trajectory_calls",
]
