"""critique: measure the judge against the verifier, then open the search on the tasks that no
sample passed.

The judge (the critic's k votes) is trusted only as far as it agrees with the verifier: it is
measured on a bounded, balanced sample of the round's verified answers (accuracy and Cohen's
kappa), and its weight in a node's value is its kappa. At or below ``critic.min_kappa`` (chance,
for the small models this runs on) it is benched for the round: no more critic calls, the search
runs on the verifier alone. SPaR trusts its judge unmeasured; its own judge started near chance
and was trained before use. An environment without a verifier (``verifiable = False``) keeps the
judge alone, as in SPaR. On a multi-turn environment the judge reads a whole trajectory (its
transcript) and a search root holds the trajectory itself (the runtime's kind of sample,
round/samples.py, gives a root its sample).
"""

from __future__ import annotations

import random
from typing import Any

from evoforge.agents.roles import stable_seed
from evoforge.agents.search import Node
from evoforge.round.nodes import StageResult, stage
from evoforge.round.runtime import Runtime
from evoforge.round.samples import Hold
from evoforge.round.state import RunState
from evoforge.stats import cohen_kappa
from evoforge.storage.records import SampleVerdict
from evoforge.storage.store import RoundStore, search_record

Item = tuple[str, int]
"""(task id, sample index)."""


def calibration_items(
    samples: dict[str, list[str]],
    verdicts: dict[str, list[SampleVerdict]],
    n: int,
    rng: random.Random,
) -> list[Item]:
    """Up to ``n`` distinct answers, half passing and half failing where the round has them."""
    seen: set[tuple[str, str]] = set()
    passing, failing = [], []
    for tid, texts in samples.items():
        for i, text in enumerate(texts):
            if (tid, text) not in seen:
                seen.add((tid, text))
                (passing if verdicts[tid][i].passed else failing).append((tid, i))
    rng.shuffle(passing)
    rng.shuffle(failing)
    take_pass = min(len(passing), max(n // 2, n - len(failing)))
    return passing[:take_pass] + failing[: n - take_pass]


def reliability(values: list[float | None], passed: list[bool], min_kappa: float) -> dict[str, Any]:
    """The judge's record on verified answers and the weight it earns (0 = benched).

    A judgement counts as "pass" when more than half of its parsed votes say yes; an answer on
    which every vote abstained counts as "fail" (the judge did not approve it)."""
    calls = [v is not None and v > 0.5 for v in values]
    kappa = cohen_kappa(calls, passed)
    n = len(calls)
    accuracy = round(sum(c == p for c, p in zip(calls, passed, strict=True)) / n, 4) if n else None
    weight = kappa if kappa is not None and kappa > min_kappa else 0.0
    return {
        "n": n,
        "passing": sum(passed),
        "accuracy": accuracy,
        "kappa": kappa,
        "abstained": sum(v is None for v in values),
        "weight": round(weight, 4),
        "benched": weight <= 0.0,
    }


def search_roots(
    samples: dict[str, list[str]],
    verdicts: dict[str, list[SampleVerdict]],
    limit: int,
    solved: set[str] = frozenset(),
    hold: Hold | None = None,
) -> list[Node]:
    """For each task with no passing sample and not ``solved`` by guided exploration, its
    best-scoring sample (closest to passing), carrying its verdict (with the turn to rewrite, on
    trajectories); the ``limit`` tasks closest to passing first. ``hold`` gives a root the rest of
    its sample (a trajectory)."""
    roots = []
    for order, (tid, vs) in enumerate(verdicts.items()):
        if any(v.passed for v in vs) or tid in solved:
            continue
        best = max(range(len(vs)), key=lambda i: (vs[i].score, -i))
        v = vs[best]
        node = Node(id=f"{tid}#0", task_id=tid, parent=None, depth=0, response=samples[tid][best])
        node.verifier_score, node.verifier_passed = float(v.score), bool(v.passed)
        node.verifier_loose, node.feedback = bool(v.loose), v.feedback
        node.failed_turn = v.failed_turn  # None for an answer
        if hold is not None:
            hold(node, best)
        roots.append((-v.score, order, node))
    roots.sort(key=lambda x: x[:2])
    return [n for _, _, n in roots[:limit]]


def _measure(
    rt: Runtime, state: RunState, store: RoundStore, samples, verdicts
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The judge's record and weight, and its votes on the calibration answers."""
    c = rt.config.critic
    if not getattr(rt.env, "verifiable", True):
        return {
            "n": 0,
            "weight": 1.0,
            "benched": False,
            "reason": "no verifier: the judge alone",
        }, []
    if c.calibration_answers == 0 or rt.config.search.value == "verifier":
        return {"n": 0, "weight": 1.0, "benched": rt.config.search.value == "verifier"}, []
    rng = random.Random(stable_seed(rt.config.seed, "calibration", state["round"]))
    items = calibration_items(samples, verdicts, c.calibration_answers, rng)
    tasks = store.tasks()
    with rt.progress.bar(f"round {state['round']} calibrate judge", len(items)) as bar:
        judged = rt.roles.judge(
            [(f"{tid}@{i}", tasks[tid], samples[tid][i]) for tid, i in items], bar
        )
    passed = [bool(verdicts[tid][i].passed) for tid, i in items]
    votes = [
        {
            "task_id": tid,
            "sample": i,
            "purpose": "calibration",
            "votes": j.votes,
            "critiques": j.critiques,
            "judge_value": j.value,
            "passed": ok,
        }
        for (tid, i), j, ok in zip(items, judged, passed, strict=True)
    ]
    return reliability([j.value for j in judged], passed, c.min_kappa), votes


def critique_summary(rt: Runtime, state: RunState, store: RoundStore) -> StageResult:
    judge = store.judge.read()
    _, s = store.search()
    return StageResult(
        counts={
            "kappa": judge.get("kappa"),
            "judge_weight": judge["weight"],
            "benched": judge["benched"],
            "trees": len(s.trees),
        },
        metrics={
            "judge": {k: judge.get(k) for k in ("n", "accuracy", "kappa", "weight", "benched")},
            "trees": len(s.trees),
        },
        update={"failed": len(s.trees), "active": len(s.active()), "level": s.level},
    )


@stage(
    reads=("task_rows", "samples", "verdicts", "guided"),
    writes=("critiques", "judge", "search_file"),
    summary=critique_summary,
)
def critique(rt: Runtime, state: RunState, store: RoundStore) -> dict[str, Any]:
    samples, verdicts = store.sample_texts(), store.verdict_lists()
    if not store.judge.exists():
        judge, votes = _measure(rt, state, store, samples, verdicts)
        # a checkpoint of its own: a crash while scoring the roots does not redo the calibration
        store.critiques.write(votes)  # empty when nothing was measured: the file says so
        store.judge.write(judge)
    solved = {g.task_id for g in store.guided_samples() if any(v.passed for v in g.verdicts)}
    hold = rt.samples.root_hold(store)
    roots = search_roots(samples, verdicts, rt.config.search.max_tasks, solved, hold)
    search = rt.tree_search(store)
    with rt.progress.bar(f"round {state['round']} critique", len(roots)) as bar:
        search.score(roots, bar)  # the critique the refiner reads (unless benched)
    return {"search_file": search_record("judged", search.start(roots))}
