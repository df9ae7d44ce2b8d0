"""plan: choose the round's training tasks (the curriculum).

- informative (default): a type's weight is 4 p (1 - p) + floor, where p is its pass rate under
  sampling in the last round (before the first: its greedy pass rate at the last evaluation), or
  its pass rate under guided exploration where that gives more. Types that sometimes pass yield
  sampled pairs, types that only guidance passes yield guided ones; the floor keeps a share of
  those that never pass (the tree search works on them) and of those that always pass.
- weakness: (1 - p) + floor with p the last kept evaluation's pass rate.
- uniform: the first tasks of the pool.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from evoforge.agents.roles import stable_seed
from evoforge.envs.base import Task
from evoforge.errors import EvoforgeError
from evoforge.round.nodes import StageResult, stage
from evoforge.round.runtime import Runtime
from evoforge.round.state import RunState
from evoforge.storage.store import RoundStore

POOL_FACTOR = 4
"""A weighted curriculum draws from this many times tasks_per_round candidates."""


def type_weights(
    rates: dict[str, float], kind: str, floor: float, guided: dict[str, float] | None = None
) -> dict[str, float]:
    """The curriculum's weight of each type, from its pass rate. Under the informative
    curriculum a type is worth what it can teach: 4 p (1 - p) from its sampled pass rate, or from
    its pass rate under guided exploration (``guided``) where that is higher, so a type that
    sampling never passes but guidance does is drawn toward, not left at the floor."""
    guided = guided or {}
    if kind == "informative":
        return {
            t: max(4 * p * (1 - p), 4 * (g := guided.get(t, 0.0)) * (1 - g)) + floor
            for t, p in rates.items()
        }
    return {t: (1 - p) + floor for t, p in rates.items()}


def select_tasks(
    pool: list[Task],
    n: int,
    weights: dict[str, float] | None,
    rng: random.Random,
    default: float = 1.0,
) -> list[Task]:
    """Weighted sampling without replacement (Efraimidis-Spirakis): a task's weight is the mean
    weight of its types (``default`` for a type never measured). ``weights=None`` is the uniform
    curriculum."""
    if weights is None:
        return pool[:n]
    keyed = []
    for t in pool:
        ws = [weights.get(tag, default) for tag in t.tags] or [default]
        w = max(sum(ws) / len(ws), 1e-6)
        keyed.append((rng.random() ** (1.0 / w), t))
    keyed.sort(key=lambda kt: -kt[0])
    return [t for _, t in keyed[:n]]


def pass_rates(rt: Runtime, state: RunState) -> tuple[dict[str, float] | None, dict[str, float]]:
    """Per-type pass rates the curriculum steers by (None: uniform, or nothing measured yet),
    and the last round's per-type pass rates under guided exploration."""
    c, r = rt.config, state["round"]
    if c.curriculum == "uniform":
        return None, {}
    if c.curriculum == "informative" and r > 0:
        prev = rt.round_store(r - 1).metrics
        if prev.exists():
            m = prev.read()
            if m.get("sample_pass_by_type"):
                return m["sample_pass_by_type"], (m.get("explore") or {}).get("pass_by_type", {})
    last = rt.last_kept_store(state).eval
    if not last.exists():
        return None, {}
    by_type = last.read().heldout[rt.env.name]["by_type"]
    return {k: v["strict"] for k, v in by_type.items()}, {}


def plan_summary(rt: Runtime, state: RunState, store: RoundStore) -> StageResult:
    tasks = store.tasks()
    types = Counter(tag for t in tasks.values() for tag in t.tags)
    return StageResult(
        counts={"tasks": len(tasks)},
        metrics={
            "tasks": len(tasks),
            "task_types": dict(types),
            "curriculum": rt.config.curriculum,
        },
        update={"level": 0, "failed": 0, "active": 0},
    )


@stage(writes=("task_rows",), summary=plan_summary)
def plan(rt: Runtime, state: RunState, store: RoundStore) -> dict[str, Any]:
    c, r = rt.config, state["round"]
    rates, guided = pass_rates(rt, state)
    weights = (
        None if rates is None else type_weights(rates, c.curriculum, c.curriculum_floor, guided)
    )
    unmeasured = type_weights({"": 0.5}, c.curriculum, c.curriculum_floor)[""]
    pool_n = c.tasks_per_round * (POOL_FACTOR if weights is not None else 1)
    pool = rt.env.tasks("train", pool_n, c.seed * 1000 + r)
    if not isinstance(pool, list) or not pool:
        raise EvoforgeError(
            f"environment '{rt.env.name}' returned no train tasks; tasks() must return a "
            "non-empty list of Task"
        )
    rng = random.Random(stable_seed(c.seed, "plan", r))
    chosen = select_tasks(pool, c.tasks_per_round, weights, rng, unmeasured)
    return {"task_rows": [t.to_json() for t in chosen]}
