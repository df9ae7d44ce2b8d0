"""Calling a verifier: every verdict is checked, and a verifier's failure is an error, never a 0.

Every place that verifies a response (generation, the tree search, evaluation, GRPO's reward)
goes through :func:`safe_verify`, so a broken or inconsistent verifier stops the run with one
line naming the environment and the task instead of silently scoring answers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from evoforge.envs.base import Environment, Task, Verdict
from evoforge.errors import EvoforgeError


def env_name(env: object) -> str:
    """The environment's name as errors show it."""
    return str(getattr(env, "name", type(env).__name__))


def validate_verdict(env: str, v: object) -> Verdict:
    """Raise ValueError with a precise message when ``v`` is not a well-formed Verdict.

    Well-formed: a Verdict whose score is a finite number in [0, 1], whose ``passed`` is a bool,
    and whose ``passed`` does not contradict the score (a pass with score 0, a fail with score 1).
    """
    if not isinstance(v, Verdict):
        raise ValueError(
            f"environment '{env}': verify() must return a Verdict, got {type(v).__name__}"
        )
    score = v.score
    if not isinstance(score, int | float) or isinstance(score, bool) or not math.isfinite(score):
        raise ValueError(
            f"environment '{env}': verify() returned score {score!r}; it must be a number in [0, 1]"
        )
    if not 0.0 <= score <= 1.0:
        raise ValueError(
            f"environment '{env}': verify() returned score {score}; it must be in [0, 1]"
        )
    if not isinstance(v.passed, bool):
        raise ValueError(
            f"environment '{env}': verify() returned passed={v.passed!r}; it must be a bool"
        )
    if (v.passed and score == 0.0) or (not v.passed and score == 1.0):
        raise ValueError(
            f"environment '{env}': verify() returned passed={v.passed} with score {score}; "
            "a pass needs a score above 0 and a fail a score below 1"
        )
    return v


def safe_verify(env: Environment, task: Task, response: str | Sequence[dict[str, str]]) -> Verdict:
    """``env.verify`` with its verdict checked; any failure is an EvoforgeError naming the task.

    ``response``: one response, or a trajectory's messages for a multi-turn environment."""
    name = env_name(env)
    try:
        v = env.verify(task, response)
    except EvoforgeError:
        raise
    except Exception as e:
        raise EvoforgeError(
            f"environment '{name}': verify() raised {type(e).__name__}: {e} on task "
            f"'{task.id}'; fix the verifier (it must return a Verdict)"
        ) from e
    try:
        return validate_verdict(name, v)
    except ValueError as e:
        raise EvoforgeError(f"{e} (task '{task.id}')") from None
