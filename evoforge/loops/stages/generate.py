"""generate: the actor samples several answers per task (one request with n completions, so the
prompt is prefilled once), seeded per task so a re-run gives the same answers.

On a multi-turn environment a sample is a trajectory: ``generation.samples`` trajectories per
task, all advanced together turn by turn (one batched server call per turn), seeded by their keys.
"""

from __future__ import annotations

from typing import Any

from evoforge.loops.nodes import StageResult, stage
from evoforge.loops.runtime import Runtime
from evoforge.loops.state import RunState
from evoforge.loops.store import RoundStore


def generate_summary(rt: Runtime, state: RunState, store: RoundStore) -> StageResult:
    rows = store.samples.read()
    answers = sum(len(x["tokens"]) for x in rows)
    tokens = sum(sum(x["tokens"]) for x in rows)
    extra = {}
    if rt.multiturn:
        trajs = [t for ts in store.trajectories().values() for t in ts]
        extra["sample_turns"] = round(sum(len(t.turns) for t in trajs) / max(1, len(trajs)), 2)
        extra["sample_tool_calls"] = sum(len(turn.calls) for t in trajs for turn in t.turns)
    return StageResult(
        counts={"tasks": len(rows), "samples": answers, "tokens": tokens} | extra,
        metrics={"samples": answers, "sample_tokens": tokens} | extra,
    )


@stage(reads=("task_rows",), writes=("samples",), summary=generate_summary)
def generate(rt: Runtime, state: RunState, store: RoundStore) -> dict[str, Any]:
    tasks, r = list(store.tasks().values()), state["round"]
    if rt.multiturn:
        g = rt.config.generation
        total = len(tasks) * g.samples * g.max_turns  # turns at most
        with rt.progress.bar(f"round {r} generate", total, unit="turn") as bar:
            trajs = rt.rollouts(rt.env, tasks, rt.roles.actor_sampling, f"round{r}", g.samples, bar)
        return {"samples": store.trajectory_rows(trajs)}
    with rt.progress.bar(f"round {r} generate", len(tasks)) as bar:
        results = rt.roles.answer(tasks, key=f"round{r}", progress=bar)
    return {
        "samples": [
            {"task_id": x.id, "responses": x.texts, "tokens": x.completion_tokens} for x in results
        ]
    }
