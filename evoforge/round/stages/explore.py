"""explore: guided exploration of the tasks that no sample passed.

Sampling alone only trains on what the model can already write. On a task where every sample
failed, the actor samples again with guidance (agents/guidance.py): the verifier's feedback on its
closest failed sample, the environment's ``hint(task)``, a forced opening of the answer (for a tool
environment, the start of a call). Every guided sample is verified against the plain task. A
passing one is stored against the plain prompt, the guidance removed and a forced opening kept
as part of the answer, and becomes an RFT row and the chosen side of a ``guided`` pair whose
rejected side is the closest plain failed sample (pairs.py). This is STaR's rationalization and
context distillation; where we depart from STaR: the hint is the verifier's own words, several
kinds are tried side by side, and a kind is credited with what it solved (metrics). The tree
search keeps the tasks that guidance did not solve. On a multi-turn environment the guided samples
are trajectories (guided rollouts); the runtime's kind of sample (round/samples.py) makes either.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from evoforge.agents.guidance import Guidance, guidance_for
from evoforge.config.sections import ExploreConfig
from evoforge.envs.base import Task
from evoforge.round.nodes import StageResult, stage
from evoforge.round.runtime import Runtime
from evoforge.round.state import RunState
from evoforge.storage.records import SampleVerdict
from evoforge.storage.store import RoundStore


def targets(verdicts: dict[str, list[SampleVerdict]], limit: int) -> list[tuple[str, int]]:
    """(task id, index of its best-scoring sample) of every task no sample passed, the ``limit``
    closest to passing first (ties in task order)."""
    out = []
    for order, (tid, vs) in enumerate(verdicts.items()):
        if vs and not any(v.passed for v in vs):
            best = max(range(len(vs)), key=lambda i: (vs[i].score, -i))
            out.append((-vs[best].score, order, tid, best))
    out.sort()
    return [(tid, best) for _, _, tid, best in out[:limit]]


def kinds(rt: Runtime) -> list[str]:
    return explore_kinds(rt.config.explore)


def explore_kinds(c: ExploreConfig) -> list[str]:
    """The guidance kinds ``explore.kinds`` names, in its order."""
    return [k.strip() for k in c.kinds.split(",") if k.strip()]


def guided_items(
    env: Any, tasks: dict[str, Task], verdicts: dict[str, list[SampleVerdict]], c: ExploreConfig
) -> list[tuple[Task, Guidance]]:
    """(task, guidance) for every kind that applies to each explored task (see ``targets``)."""
    wanted = explore_kinds(c)
    items = []
    for tid, best in targets(verdicts, c.max_tasks if wanted else 0):
        feedback = verdicts[tid][best].feedback
        for g in guidance_for(env, tasks[tid], feedback, combine="hint+prefix" in wanted):
            if g.kind in wanted:
                items.append((tasks[tid], g))
    return items


def explore_summary(rt: Runtime, state: RunState, store: RoundStore) -> StageResult:
    groups = store.guided_samples()
    samples = sum(len(g.verdicts) for g in groups)
    passed = sum(v.passed for g in groups for v in g.verdicts)
    solved_by_kind = Counter(g.kind for g in groups if any(v.passed for v in g.verdicts))
    tasks = {g.task_id for g in groups}
    solved = {g.task_id for g in groups if any(v.passed for v in g.verdicts)}
    tags = {t.id: t.tags for t in store.tasks().values()}
    per_type: dict[str, list[int]] = {}
    for g in groups:
        for tag in tags[g.task_id]:
            n = per_type.setdefault(tag, [0, 0])
            n[0] += sum(v.passed for v in g.verdicts)
            n[1] += len(g.verdicts)
    stats = {
        "tasks": len(tasks),
        "pass_by_type": {t: round(p / n, 4) for t, (p, n) in sorted(per_type.items()) if n},
        "samples": samples,
        "pass_rate": round(passed / samples, 4) if samples else None,
        "solved": len(solved),
        "solved_by_kind": {k: solved_by_kind.get(k, 0) for k in kinds(rt)},
    }
    # tool use under guidance, apart from the model's own (generate); nothing more for answers
    stats |= rt.samples.stats([x for g in groups for x in g.samples])[1]
    return StageResult(
        counts={"explored": len(tasks), "guided": samples, "solved": len(solved)}
        | {f"solved_{k}": n for k, n in stats["solved_by_kind"].items()},
        metrics={"explore": stats},
    )


@stage(reads=("task_rows", "samples", "verdicts"), writes=("guided",), summary=explore_summary)
def explore(rt: Runtime, state: RunState, store: RoundStore) -> dict[str, Any]:
    c, r = rt.config.explore, state["round"]
    items = guided_items(rt.env, store.tasks(), store.verdict_lists(), c)
    if not items:
        return {"guided": []}
    total, unit = rt.samples.steps(len(items), c.samples)
    with rt.progress.bar(f"round {r} explore", total, unit=unit) as bar:
        return {"guided": rt.samples.explore(items, c.samples, f"round{r}/explore", bar)}
