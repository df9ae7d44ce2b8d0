"""generate: the actor answers the round's tasks (sampled, seeded per task)."""

from __future__ import annotations

from evoforge.loops.nodes import StageResult
from evoforge.loops.runtime import Runtime
from evoforge.loops.state import RunState


def generate(rt: Runtime, state: RunState) -> StageResult:
    store = rt.store(state)
    if not store.responses.exists():
        tasks = list(store.tasks().values())
        with rt.progress.bar(f"round {state['round']} generate", len(tasks)) as bar:
            results = rt.roles.answer(tasks, key=f"round{state['round']}", progress=bar)
        store.responses.write(
            {"task_id": r.id, "response": r.texts[0], "tokens": r.completion_tokens[0]}
            for r in results
        )
    n = len(store.responses.read())
    store.update_metrics(state["round"], responses=n)
    return StageResult(counts={"responses": n})
