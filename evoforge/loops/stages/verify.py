"""verify: the environment checks every sampled answer.

The verdicts decide the rest of the round: a task with passing and failing samples yields
sampled pairs; a task with no passing sample goes to the tree search; the sampled pass rate per
type steers the next round's curriculum.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from evoforge.envs.base import Verdict
from evoforge.envs.verify import safe_verify
from evoforge.loops.nodes import StageResult
from evoforge.loops.runtime import Runtime
from evoforge.loops.state import RunState


def verdict_row(v: Verdict) -> dict[str, Any]:
    """A verdict as run files record it."""
    return {
        "score": v.score,
        "passed": v.passed,
        "loose": bool(v.details.get("loose", v.passed)),
        "feedback": v.feedback,
    }


def sample_stats(
    tags: dict[str, tuple[str, ...]], verdicts: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """Pass rates of the samples: overall, per type, and how many tasks are mixed (some pass,
    some fail: sampled pairs), all-pass, or no-pass (tree search)."""
    by_type: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    mixed = all_pass = no_pass = passed = total = 0
    for tid, vs in verdicts.items():
        ok = sum(bool(v["passed"]) for v in vs)
        passed, total = passed + ok, total + len(vs)
        mixed += 0 < ok < len(vs)
        all_pass += ok == len(vs)
        no_pass += ok == 0
        for tag in tags[tid]:
            by_type[tag][0] += ok
            by_type[tag][1] += len(vs)
    return {
        "sample_pass_rate": round(passed / max(1, total), 4),
        "tasks_mixed": mixed,
        "tasks_all_pass": all_pass,
        "tasks_no_pass": no_pass,
        "sample_pass_by_type": {t: round(p / n, 4) for t, (p, n) in sorted(by_type.items()) if n},
    }


def verify(rt: Runtime, state: RunState) -> StageResult:
    store = rt.store(state)
    tasks = store.tasks()
    if not store.verdicts.exists():
        rows = store.samples.read()
        with rt.progress.bar(f"round {state['round']} verify", len(rows)) as bar:
            out = []
            for r in rows:
                task = tasks[r["task_id"]]
                out.append(
                    {
                        "task_id": r["task_id"],
                        "verdicts": [
                            verdict_row(safe_verify(rt.env, task, x)) for x in r["responses"]
                        ],
                    }
                )
                bar(1)
        store.verdicts.write(out)
    verdicts = {r["task_id"]: r["verdicts"] for r in store.verdicts.read()}
    stats = sample_stats({t: tasks[t].tags for t in verdicts}, verdicts)
    store.update_metrics(state["round"], **stats)
    return StageResult(
        counts={k: stats[k] for k in ("sample_pass_rate", "tasks_mixed", "tasks_no_pass")}
    )
