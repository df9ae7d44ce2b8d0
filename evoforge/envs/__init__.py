"""Environments: tasks plus a verifier. The plug-in unit of evoforge.

A custom environment is one small file with a ``name``, ``tasks(split, n, seed)`` and
``verify(task, response)``; see examples/custom_env.py and :func:`check_env`.
"""

from evoforge.envs.base import Environment, Task, Verdict
from evoforge.envs.registry import get_env, list_envs, register

__all__ = ["Environment", "Task", "Verdict", "get_env", "list_envs", "register"]
