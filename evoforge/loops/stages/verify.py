"""verify: collect the verifier's verdicts on each original answer and its accepted refinement,
and measure how far the judge agreed with the verifier.

Every answer was verified once, when it was scored (critique, judge); this stage only gathers
those verdicts, so no response is verified twice.
"""

from __future__ import annotations

from typing import Any

from evoforge.agents.search import Node, SearchState
from evoforge.loops.nodes import StageResult
from evoforge.loops.runtime import Runtime
from evoforge.loops.stages.critique import verdict_row
from evoforge.loops.state import RunState
from evoforge.stats import agreement


def judged_pairs(critiques: list[dict[str, Any]], s: SearchState) -> list[tuple[float, bool]]:
    """(judge value, verifier passed) of every judged answer: the first answers and the search's
    new nodes (a cached duplicate counts once)."""
    judged = [
        (r["judge_value"], bool(r["verdict"]["passed"]))
        for r in critiques
        if r["judge_value"] is not None
    ]
    judged += [
        (n.judge_value, bool(n.verifier_passed))
        for n in s.nodes.values()
        if n.depth > 0 and not n.cached and n.judge_value is not None
    ]
    return judged


def verify(rt: Runtime, state: RunState) -> StageResult:
    store = rt.store(state)
    if not store.verdicts.exists():
        _, s = store.search()
        critiques = store.critiques.read()
        rows = []
        for c in critiques:
            tree = s.trees.get(c["task_id"])
            accepted = s.nodes[tree.accepted] if tree and tree.accepted else None
            rows.append(
                {
                    "task_id": c["task_id"],
                    "original": c["verdict"],
                    "refined": verdict_row(accepted) if accepted else None,
                    "accepted_node": tree.accepted if tree else None,
                    "tree": "searched" if tree else "original passed the critique",
                }
            )
        trees = [tree_record(s, t.task_id) for t in s.trees.values()]
        store.tree.write(trees)
        store.update_metrics(
            state["round"],
            judge_verifier_agreement=agreement(judged_pairs(critiques, s)),
            judged_for_agreement=len(judged_pairs(critiques, s)),
            original_pass_rate=round(
                sum(bool(r["original"]["passed"]) for r in rows) / max(1, len(rows)), 4
            ),
            trees=len(trees),
            nodes_expanded=sum(t["budget_used"] for t in trees),
            accepted=sum(t["accepted"] is not None for t in trees),
            max_tree_depth=max((t["depth"] for t in trees), default=0),
            judge_calls=s.judge_calls,
            expand_calls=s.expand_calls,
            cache_hits=s.cache_hits,
        )
        store.verdicts.write(rows)
    m = store.metrics.read()
    keys = ("original_pass_rate", "trees", "accepted", "judge_verifier_agreement")
    return StageResult(counts={k: m.get(k) for k in keys})


def tree_record(s: SearchState, task_id: str) -> dict[str, Any]:
    """One searched tree as tree.jsonl records it."""
    t = s.trees[task_id]
    return {
        "task_id": t.task_id,
        "accepted": t.accepted,
        "reason": t.reason,
        "budget_used": t.budget_used,
        "depth": max(s.nodes[n].depth for n in t.nodes),
        "nodes": [node_record(s.nodes[n]) for n in t.nodes],
    }


def node_record(n: Node) -> dict[str, Any]:
    return {
        "id": n.id,
        "parent": n.parent,
        "depth": n.depth,
        "value": n.value,
        "judge_value": n.judge_value,
        "verifier_score": n.verifier_score,
        "votes": n.votes,
        "status": n.status,
        "cached": n.cached,
        "response": n.response,
    }
