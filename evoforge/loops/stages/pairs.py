"""pairs: preference pairs (refined vs original) and the refiner's training data.

SPaR's point: chosen and rejected come from the same answer, the chosen one refined only where
the instruction was missed, so the pair isolates the mistake. We record the word-level edit
distance between the two to show how close they are.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from evoforge.agents.roles import Roles
from evoforge.agents.search import Node, SearchState
from evoforge.config import PairsConfig
from evoforge.envs.base import Task
from evoforge.loops.nodes import StageResult
from evoforge.loops.runtime import Runtime
from evoforge.loops.state import RunState


def edit_distance(a: str, b: str) -> int:
    """Word-level Levenshtein distance."""
    x, y = a.split(), b.split()
    prev = list(range(len(y) + 1))
    for i, wx in enumerate(x, 1):
        cur = [i] + [0] * len(y)
        for j, wy in enumerate(y, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (wx != wy))
        prev = cur
    return prev[-1]


def build_pairs(
    tasks: dict[str, Task],
    state: SearchState,
    verdicts: dict[str, dict[str, Any]],
    rules: PairsConfig,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Pairs from accepted refinements; returns (pairs, counts of why candidates were dropped)."""
    pairs, seen = [], set()
    dropped = {
        "no_accepted_refinement": 0,
        "chosen_fails_verifier": 0,
        "rejected_passes_verifier": 0,
        "length_ratio": 0,
        "duplicate": 0,
        "identical": 0,
    }
    for tree in state.trees.values():
        if tree.accepted is None:
            dropped["no_accepted_refinement"] += 1
            continue
        chosen: Node = state.nodes[tree.accepted]
        rejected: Node = state.nodes[tree.root]
        v = verdicts[tree.task_id]
        if rules.require_verifier:
            if not v["refined"]["passed"]:
                dropped["chosen_fails_verifier"] += 1
                continue
            if v["original"]["passed"]:
                dropped["rejected_passes_verifier"] += 1
                continue
        if chosen.response.strip() == rejected.response.strip():
            dropped["identical"] += 1
            continue
        lc, lr = max(len(chosen.response), 1), max(len(rejected.response), 1)
        if max(lc, lr) / min(lc, lr) > rules.max_length_ratio:
            dropped["length_ratio"] += 1
            continue
        task = tasks[tree.task_id]
        key = (task.id, chosen.response, rejected.response)
        if key in seen:
            dropped["duplicate"] += 1
            continue
        seen.add(key)
        pairs.append(
            {
                "id": f"{tree.task_id}|{chosen.id}",
                "task_id": tree.task_id,
                "node_id": chosen.id,
                "prompt": list(task.messages),
                "chosen": chosen.response,
                "rejected": rejected.response,
                "chosen_score": v["refined"]["score"],
                "rejected_score": v["original"]["score"],
                "depth": chosen.depth,
                "edit_distance": edit_distance(chosen.response, rejected.response),
            }
        )
    return pairs, dropped


def refiner_data(
    tasks: dict[str, Task], state: SearchState, roles: Roles, verdicts: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """SPaR trains the refiner on successful refinement chains and on judgements.

    - refinement: each step on the path root -> accepted node, when the accepted node passes
      the verifier: (refiner prompt for the parent, the child's response);
    - judgement: critiques whose verdict agrees with the verifier on that node.
    """
    out = []
    for tree in state.trees.values():
        if tree.accepted is None or not verdicts[tree.task_id]["refined"]["passed"]:
            continue
        task = tasks[tree.task_id]
        node = state.nodes[tree.accepted]
        while node.parent is not None:
            parent = state.nodes[node.parent]
            out.append(
                {
                    "kind": "refinement",
                    "task_id": task.id,
                    "node_id": node.id,
                    "messages": roles.refiner_prompt(
                        task, parent.response, parent.critique, parent.feedback
                    ),
                    "completion": f"<response>\n{node.response}\n</response>",
                }
            )
            node = parent
    for n in state.nodes.values():
        if n.cached or n.verifier_passed is None:
            continue
        want = "yes" if n.verifier_passed else "no"
        agreeing = [c for c, v in zip(n.critiques, n.votes, strict=True) if v == want]
        if agreeing:  # one judgement per node: the first that reached the verifier's verdict
            out.append(
                {
                    "kind": "judgement",
                    "task_id": n.task_id,
                    "node_id": n.id,
                    "messages": roles.critic_prompt(tasks[n.task_id], n.response),
                    "completion": agreeing[0],
                }
            )
    return out


def _fill(v: dict[str, Any]) -> dict[str, Any]:
    """A verdict row with a failing placeholder where no refinement was accepted."""
    return v if v["refined"] is not None else v | {"refined": {"score": 0.0, "passed": False}}


def pairs(rt: Runtime, state: RunState) -> StageResult:
    store = rt.store(state)
    if not store.pairs.exists():
        tasks = store.tasks()
        _, s = store.search()
        verdicts = {r["task_id"]: r for r in store.verdicts.read()}
        searched = {tid: _fill(v) for tid, v in verdicts.items() if tid in s.trees}
        built, dropped = build_pairs(tasks, s, searched, rt.config.pairs)
        store.refiner.write(refiner_data(tasks, s, rt.roles, searched))
        dist = [p["edit_distance"] for p in built]
        store.update_metrics(
            state["round"],
            pairs_dropped=dropped,
            mean_edit_distance=round(sum(dist) / len(dist), 2) if dist else None,
        )
        store.pairs.write(built)
    n = len(store.pairs.read())
    refiner = Counter(r["kind"] for r in store.refiner.read())
    store.update_metrics(state["round"], pairs=n, refiner_examples=dict(refiner))
    return StageResult(
        counts={
            "pairs": n,
            "refinements": refiner.get("refinement", 0),
            "judgements": refiner.get("judgement", 0),
        }
    )
