"""critique: the critic judges every first answer (k votes), the verifier checks it; the answers
that fail become the roots of the round's search trees."""

from __future__ import annotations

from evoforge.agents.search import Node
from evoforge.loops.nodes import StageResult
from evoforge.loops.runtime import Runtime
from evoforge.loops.state import RunState


def critique(rt: Runtime, state: RunState) -> StageResult:
    store = rt.store(state)
    if not store.critiques.exists():
        search = rt.tree_search(store)
        roots = [
            Node(
                id=f"{r['task_id']}#0",
                task_id=r["task_id"],
                parent=None,
                depth=0,
                response=r["response"],
            )
            for r in store.responses.read()
        ]
        with rt.progress.bar(f"round {state['round']} critique", len(roots)) as bar:
            search.score(roots, bar)
        thr = rt.config.search.threshold
        failed = [n for n in roots if n.value is None or n.value <= thr]
        store.save_search("judged", search.start(failed))
        store.critiques.write(
            {
                "task_id": n.task_id,
                "votes": n.votes,
                "critiques": n.critiques,
                "judge_value": n.judge_value,
                "verdict": verdict_row(n),
                "value": n.value,
                "failed": n in failed,
            }
            for n in roots
        )
    rows = store.critiques.read()
    _, s = store.search()
    failed = sum(r["failed"] for r in rows)
    abst = sum(v is None for r in rows for v in r["votes"])
    store.update_metrics(state["round"], failed=failed, critique_abstentions=abst)
    return StageResult(
        counts={"judged": len(rows), "failed": failed, "abstentions": abst},
        update={"failed": failed, "active": len(s.active()), "level": s.level},
    )


def verdict_row(n: Node) -> dict:
    """The verifier's verdict on a scored node, as run files record it."""
    return {
        "score": n.verifier_score,
        "passed": n.verifier_passed,
        "loose": n.verifier_loose,
        "feedback": n.feedback,
    }
