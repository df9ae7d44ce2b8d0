"""Rewards: a verdict as a reward, weighted sums of reward functions, and TRL's signature.

A reward function here is ``f(task, response) -> float``. ``as_trl`` turns one into the
signature TRL's GRPOTrainer calls: ``f(prompts, completions, **columns) -> list[float]``, where
the dataset column ``task`` carries the serialized Task.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from evoforge.envs.base import Environment, Task
from evoforge.envs.check import CheckedEnv
from evoforge.envs.registry import get_env
from evoforge.envs.verify import safe_verify
from evoforge.errors import EvoforgeError

RewardFn = Callable[[Task, str], float]


def verdict_reward(env: Environment, mode: str = "score") -> RewardFn:
    """Reward from the environment's verdict: its score (partial credit) or 1/0 for passed."""

    def reward(task: Task, response: str) -> float:
        v = safe_verify(env, task, response)
        return float(v.score) if mode == "score" else float(v.passed)

    reward.__name__ = f"{env.name}_{mode}"
    return reward


@dataclass
class WeightedReward:
    """A weighted sum of reward functions that keeps per-function statistics."""

    parts: dict[str, tuple[RewardFn, float]]
    totals: dict[str, float] = field(default_factory=dict)
    calls: int = 0

    def __call__(self, task: Task, response: str) -> float:
        total = 0.0
        for name, (fn, weight) in self.parts.items():
            value = float(fn(task, response))
            if math.isnan(value):
                raise EvoforgeError(
                    f"reward function '{name}' returned NaN on task '{task.id}'; it must return a number"
                )
            self.totals[name] = self.totals.get(name, 0.0) + value
            total += weight * value
        self.calls += 1
        return total

    def metrics(self) -> dict[str, float]:
        """Mean value of each function over the calls so far."""
        return {f"reward/{k}": v / max(1, self.calls) for k, v in self.totals.items()}


def completion_text(completion) -> str:
    """TRL passes conversational completions as [{'role': 'assistant', 'content': ...}]."""
    if isinstance(completion, list):
        return "".join(m.get("content", "") for m in completion if isinstance(m, dict))
    return str(completion)


def as_trl(fn: RewardFn) -> Callable[..., list[float]]:
    """``fn`` in TRL's reward-function signature (tasks come from the dataset column ``task``)."""

    def trl_reward(prompts, completions, task, **_: object) -> list[float]:
        return [
            fn(Task.from_json(json.loads(t)), completion_text(c))
            for t, c in zip(task, completions, strict=True)
        ]

    trl_reward.__name__ = getattr(fn, "__name__", "reward")
    return trl_reward


def env_reward_function(
    env_spec: str, data: object = None, verify_timeout_s: float = 0.0
) -> Callable[..., list[float]]:
    """The verifier of ``env_spec`` as a TRL reward function (used by GRPO and RLOO), each call
    held to ``verify_timeout_s`` as in the rest of a run (0 = no limit).

    ``data`` is the config's data section: a ``file:`` environment needs its reward function and
    columns, so the whole spec travels, not the name alone."""
    return as_trl(verdict_reward(CheckedEnv(get_env(env_spec, data), verify_timeout_s)))
