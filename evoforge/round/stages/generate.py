"""generate: the actor samples several answers per task (one request with n completions, so the
prompt is prefilled once), seeded per task so a re-run gives the same answers.

On a multi-turn environment a sample is a trajectory: ``generation.samples`` trajectories per
task, all advanced together turn by turn (one batched server call per turn), seeded by their keys.
"""

from __future__ import annotations

from typing import Any

from evoforge.round.nodes import StageResult, stage
from evoforge.round.runtime import Runtime
from evoforge.round.stages.trajectory_stats import trajectory_stats
from evoforge.round.state import RunState
from evoforge.storage.records import TaskSamples
from evoforge.storage.store import RoundStore


def generate_summary(rt: Runtime, state: RunState, store: RoundStore) -> StageResult:
    rows = store.samples.read()
    answers = sum(len(x.tokens or ()) for x in rows)
    tokens = sum(sum(x.tokens or ()) for x in rows)
    counts: dict[str, Any] = {"tasks": len(rows), "samples": answers, "tokens": tokens}
    metrics: dict[str, Any] = {"samples": answers, "sample_tokens": tokens}
    if rt.multiturn:  # the model's own tool use, unguided
        stats = trajectory_stats([t for ts in store.trajectories().values() for t in ts])
        counts |= {k: stats[k] for k in ("turns_per_sample", "tool_calls_per_sample")}
        metrics["trajectories"] = stats
    return StageResult(counts=counts, metrics=metrics)


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
            TaskSamples(task_id=x.id, responses=x.texts, tokens=x.completion_tokens)
            for x in results
        ]
    }
