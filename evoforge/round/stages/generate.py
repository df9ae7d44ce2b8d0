"""generate: the actor samples several answers per task (one request with n completions, so the
prompt is prefilled once), seeded per task so a re-run gives the same answers.

On a multi-turn environment a sample is a trajectory: ``generation.samples`` trajectories per
task, all advanced together turn by turn (one batched server call per turn), seeded by their keys.
The runtime's kind of sample (round/samples.py) does either.
"""

from __future__ import annotations

from typing import Any

from evoforge.round.nodes import StageResult, stage
from evoforge.round.runtime import Runtime
from evoforge.round.state import RunState
from evoforge.storage.store import RoundStore


def generate_summary(rt: Runtime, state: RunState, store: RoundStore) -> StageResult:
    rows = store.samples.read()
    answers = sum(len(x.tokens or ()) for x in rows)
    tokens = sum(sum(x.tokens or ()) for x in rows)
    counts: dict[str, Any] = {"tasks": len(rows), "samples": answers, "tokens": tokens}
    metrics: dict[str, Any] = {"samples": answers, "sample_tokens": tokens}
    # the model's own tool use, unguided (trajectories; nothing more for answers)
    shown, kept = rt.samples.stats([x for xs in rt.samples.read(store).values() for x in xs])
    return StageResult(counts=counts | shown, metrics=metrics | kept)


@stage(reads=("task_rows",), writes=("samples",), summary=generate_summary)
def generate(rt: Runtime, state: RunState, store: RoundStore) -> dict[str, Any]:
    tasks, r = list(store.tasks().values()), state["round"]
    total, unit = rt.samples.steps(len(tasks), rt.config.generation.samples)
    with rt.progress.bar(f"round {r} generate", total, unit=unit) as bar:
        return {"samples": rt.samples.generate(tasks, f"round{r}", bar)}
