"""generate: the actor samples several answers per task (one request with n completions, so the
prompt is prefilled once), seeded per task so a re-run gives the same answers."""

from __future__ import annotations

from evoforge.loops.nodes import StageResult
from evoforge.loops.runtime import Runtime
from evoforge.loops.state import RunState


def generate(rt: Runtime, state: RunState) -> StageResult:
    store = rt.store(state)
    if not store.samples.exists():
        tasks = list(store.tasks().values())
        with rt.progress.bar(f"round {state['round']} generate", len(tasks)) as bar:
            results = rt.roles.answer(tasks, key=f"round{state['round']}", progress=bar)
        store.samples.write(
            {"task_id": r.id, "responses": r.texts, "tokens": r.completion_tokens} for r in results
        )
    rows = store.samples.read()
    answers = sum(len(r["responses"]) for r in rows)
    tokens = sum(sum(r["tokens"]) for r in rows)
    store.update_metrics(state["round"], samples=answers, sample_tokens=tokens)
    return StageResult(counts={"tasks": len(rows), "samples": answers, "tokens": tokens})
