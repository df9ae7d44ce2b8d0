"""plan: choose the round's training tasks (the weakness curriculum)."""

from __future__ import annotations

import random
from collections import Counter

from evoforge.agents.roles import stable_seed
from evoforge.envs.base import Task
from evoforge.errors import EvoforgeError
from evoforge.loops.nodes import StageResult
from evoforge.loops.runtime import Runtime
from evoforge.loops.state import RunState

POOL_FACTOR = 4
"""The weakness curriculum draws from this many times tasks_per_round candidates."""


def select_tasks(
    pool: list[Task], n: int, fail_rates: dict[str, float] | None, rng: random.Random
) -> list[Task]:
    """Weighted sampling without replacement (Efraimidis-Spirakis): a task's weight is the mean
    failure rate of its types in the last evaluation (unseen types count as 0.5), plus a floor
    so strong types still appear. ``fail_rates=None`` is the uniform curriculum."""
    if fail_rates is None:
        return pool[:n]
    keyed = []
    for t in pool:
        rates = [fail_rates.get(tag, 0.5) for tag in t.tags] or [0.5]
        w = sum(rates) / len(rates) + 0.05
        keyed.append((rng.random() ** (1.0 / w), t))
    keyed.sort(key=lambda kt: -kt[0])
    return [t for _, t in keyed[:n]]


def plan(rt: Runtime, state: RunState) -> StageResult:
    c, store = rt.config, rt.store(state)
    r = state["round"]
    if not store.task_rows.exists():
        last = rt.last_kept_store(state).eval
        fail_rates = None
        if c.curriculum == "weakness" and last.exists():
            by_type = last.read()["heldout"][rt.env.name]["by_type"]
            fail_rates = {k: 1.0 - v["strict"] for k, v in by_type.items()}
        pool_n = c.tasks_per_round * (POOL_FACTOR if fail_rates is not None else 1)
        pool = rt.env.tasks("train", pool_n, c.seed * 1000 + r)
        if not isinstance(pool, list) or not pool:
            raise EvoforgeError(
                f"environment '{rt.env.name}' returned no train tasks; tasks() must return a "
                "non-empty list of Task"
            )
        rng = random.Random(stable_seed(c.seed, "plan", r))
        store.write_tasks(select_tasks(pool, c.tasks_per_round, fail_rates, rng))
    tasks = store.tasks()
    types = Counter(tag for t in tasks.values() for tag in t.tags)
    store.update_metrics(r, tasks=len(tasks), task_types=dict(types), curriculum=c.curriculum)
    return StageResult(counts={"tasks": len(tasks)}, update={"level": 0, "failed": 0, "active": 0})
