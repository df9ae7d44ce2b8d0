"""verify: the environment checks every sampled answer.

The verdicts decide the rest of the round: a task with passing and failing samples yields
sampled pairs; a task with no passing sample goes to the tree search; the sampled pass rate per
type steers the next round's curriculum. A multi-turn environment verifies whole trajectories;
each verdict row then also names the turn a refinement would rewrite (``failed_turn``). The
runtime's kind of sample (round/samples.py) verifies either.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from evoforge.round.nodes import StageResult, stage
from evoforge.round.runtime import Runtime
from evoforge.round.state import RunState
from evoforge.storage.records import SampleVerdict
from evoforge.storage.store import RoundStore


def sample_stats(
    tags: dict[str, tuple[str, ...]], verdicts: dict[str, list[SampleVerdict]]
) -> dict[str, Any]:
    """Pass rates of the samples: overall, per type, and how many tasks are mixed (some pass,
    some fail: sampled pairs), all-pass, or no-pass (tree search)."""
    by_type: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    mixed = all_pass = no_pass = passed = total = 0
    for tid, vs in verdicts.items():
        ok = sum(bool(v.passed) for v in vs)
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


def verify_summary(rt: Runtime, state: RunState, store: RoundStore) -> StageResult:
    tasks, verdicts = store.tasks(), store.verdict_lists()
    stats = sample_stats({t: tasks[t].tags for t in verdicts}, verdicts)
    return StageResult(
        counts={k: stats[k] for k in ("sample_pass_rate", "tasks_mixed", "tasks_no_pass")},
        metrics=stats,
    )


@stage(reads=("task_rows", "samples"), writes=("verdicts",), summary=verify_summary)
def verify(rt: Runtime, state: RunState, store: RoundStore) -> dict[str, Any]:
    n = len(store.samples.read())
    with rt.progress.bar(f"round {state['round']} verify", n) as bar:
        return {"verdicts": rt.samples.verify(store, store.tasks(), bar)}
