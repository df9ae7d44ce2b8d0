"""tree: level-synchronous batched tree search against per-task search (one tree at a time, as the
SPaR code runs it), same model, tasks, settings and node budget, greedy sampling throughout."""

from __future__ import annotations

import time
from typing import Any

from evoforge.agents.models import resolve_model
from evoforge.agents.roles import Roles
from evoforge.agents.search import Node, SearchSettings, SearchState, TreeSearch
from evoforge.agents.serving import cluster
from evoforge.agents.serving.pool import ServerPool
from evoforge.agents.serving.types import Sampling
from evoforge.bench import server_spec
from evoforge.envs.registry import get_env


def _trees(state: SearchState) -> dict[str, list[str]]:
    return {tid: [state.nodes[n].response for n in t.nodes] for tid, t in state.trees.items()}


def _both_sides(roles, env, tasks, settings, roots):
    """The batched search over every task, then the same search one tree at a time."""
    start = time.time()
    search = TreeSearch(roles, env, tasks, settings)
    batched_roots = roots(set(tasks))
    search.score(batched_roots)
    batched = search.run(batched_roots)
    batched_s = time.time() - start

    start = time.time()
    per_task: dict[str, list[str]] = {}
    calls = 0
    for tid in tasks:  # one tree at a time
        one = TreeSearch(roles, env, {tid: tasks[tid]}, settings)
        r = roots({tid})
        one.score(r)
        st = one.run(r)
        calls += 1 + st.judge_calls + st.expand_calls
        per_task.update(_trees(st))
    return batched, batched_s, per_task, time.time() - start, calls


def bench_tree(model: str, backend: str, size: str) -> dict[str, Any]:
    n_tasks, tokens = (32, 64) if size == "full" else (4, 8)
    env = get_env("instructions")
    tasks = {t.id: t for t in env.tasks("train", n_tasks, 0)}
    info = cluster.connect()
    pool = ServerPool(
        "bench",
        "policy",
        server_spec(resolve_model(model).path, backend),
    )
    try:
        greedy = Sampling.greedy(tokens)
        roles = Roles(
            actor=pool,
            critic=pool,
            refiner=pool,
            actor_sampling=greedy,
            critic_sampling=Sampling(temperature=0.0, max_tokens=tokens, n=1),
            refiner_sampling=greedy,
        )
        answers = roles.answer(list(tasks.values()))
        # a high threshold: no early acceptance, every tree grows to the node budget on both sides
        settings = SearchSettings(
            strategy="bfs",
            children=2,
            keep=2,
            max_depth=2,
            threshold=1.01,
            node_budget=6,
            value="both",
            adaptive_stop=False,
            use_env_feedback=True,
        )

        def roots(ids) -> list[Node]:
            return [
                Node(id=f"{a.id}#0", task_id=a.id, parent=None, depth=0, response=a.texts[0])
                for a in answers
                if a.id in ids
            ]

        batched, batched_s, per_task, per_task_s, calls = _both_sides(
            roles, env, tasks, settings, roots
        )
    finally:
        pool.shutdown()
        if info.started_here:
            cluster.shutdown()
    same = sum(per_task[tid] == nodes for tid, nodes in _trees(batched).items())
    nodes = sum(len(t.nodes) for t in batched.trees.values())
    return {
        "model": model,
        "backend": pool.backend,
        "tasks": n_tasks,
        "nodes": nodes,
        "evoforge": {
            "name": "level-synchronous, all tasks per call",
            "seconds": round(batched_s, 2),
            "server_calls": 1 + batched.judge_calls + batched.expand_calls,
        },
        "baseline": {
            "name": "per-task search, one tree at a time",
            "seconds": round(per_task_s, 2),
            "server_calls": calls,
        },
        "same_trees": f"{same}/{n_tasks}",
        "ratio": per_task_s / batched_s,
        "target": 3.0,
        "table": [
            {
                "batched_s": round(batched_s, 1),
                "per_task_s": round(per_task_s, 1),
                "speedup": round(per_task_s / batched_s, 2),
                "same_trees": f"{same}/{n_tasks}",
            }
        ],
    }
