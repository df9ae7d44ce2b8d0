"""expand and select: one level of the tree search each, for every active tree at once.

expand sends every frontier node of every task to the refiner as one batch; select has every new
node judged as one batch (``TreeSearch.judge``: the critic's votes and the verifier), accepts,
prunes and picks the next frontier. The graph loops expand -> select while trees are active and
depth allows.
"""

from __future__ import annotations

from typing import Any

from evoforge.agents.search import Node, SearchState
from evoforge.round.nodes import StageResult, stage
from evoforge.round.runtime import Runtime
from evoforge.round.state import RunState
from evoforge.storage.store import RoundStore


@stage()
def expand(rt: Runtime, state: RunState, store: RoundStore) -> StageResult:
    phase, s = store.search()
    if phase != "expanded":
        search = rt.tree_search(store)
        search.bind(s)
        planned = search.planned_expansions(s)
        with rt.progress.bar(f"round {state['round']} expand L{s.level + 1}", planned) as bar:
            search.expand(s, bar)
        store.save_search("expanded", s)
    return StageResult(
        counts={
            "level": s.level + 1,
            "new_nodes": len(s.pending()),
            "active_trees": len(s.active()),
        }
    )


@stage()
def select(rt: Runtime, state: RunState, store: RoundStore) -> StageResult:
    phase, s = store.search()
    if phase != "judged":
        search = rt.tree_search(store)
        search.bind(s)
        with rt.progress.bar(
            f"round {state['round']} select L{s.level + 1}", len(s.pending())
        ) as bar:
            search.judge(s, bar)
        store.save_search("judged", s)
    accepted = sum(t.accepted is not None for t in s.trees.values())
    return StageResult(
        counts={
            "level": s.level,
            "accepted": accepted,
            "active_trees": len(s.active()),
            "cache_hits": s.cache_hits,
        },
        update={"active": len(s.active()), "level": s.level},
    )


def search_metrics(s: SearchState) -> dict[str, Any]:
    """What the round's search did, for metrics.json."""
    trees = s.trees.values()
    return {
        "nodes_expanded": sum(t.budget_used for t in trees),
        "accepted": sum(t.accepted is not None for t in trees),
        **({"stopped": n} if (n := sum(t.stopped for t in trees)) else {}),
        "max_tree_depth": max((s.nodes[n].depth for t in trees for n in t.nodes), default=0),
        "judge_calls": s.judge_calls,
        "expand_calls": s.expand_calls,
        "cache_hits": s.cache_hits,
    }


def tree_record(s: SearchState, task_id: str) -> dict[str, Any]:
    """One searched tree as tree.jsonl records it."""
    t = s.trees[task_id]
    stopped = {"stopped": t.stopped} if t.stopped else {}
    return stopped | {
        "task_id": t.task_id,
        "accepted": t.accepted,
        "reason": t.reason,
        "budget_used": t.budget_used,
        "depth": max(s.nodes[n].depth for n in t.nodes),
        "nodes": [node_record(s.nodes[n]) for n in t.nodes],
    }


def node_record(n: Node) -> dict[str, Any]:
    multi = {}
    if n.trajectory is not None or n.turn is not None:  # a multi-turn node
        multi = {"turn": n.turn, "failed_turn": n.failed_turn}
    return multi | {
        "id": n.id,
        "parent": n.parent,
        "depth": n.depth,
        "value": n.value,
        "judge_value": n.judge_value,
        "verifier_score": n.verifier_score,
        "verifier_passed": n.verifier_passed,
        "votes": n.votes,
        "status": n.status,
        "cached": n.cached,
        "response": n.response,
    }
