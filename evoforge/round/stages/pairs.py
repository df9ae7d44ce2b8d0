"""pairs: preference pairs and SFT data from the round's verified answers.

- sampled: on a task with passing and failing samples, a passing sample is chosen and the failing
  sample closest to it (word edit distance) rejected: the two differ where the instruction was
  missed, SPaR's point, without the cost of a search (AutoIF, RS-DPO, Iterative RPO pair sampled
  answers by their verdicts the same way).
- guided: where no sample passed, a guided sample the verifier passes (explore.py; stored against
  the plain prompt) against the closest plain failed sample; the pair records the guidance kind.
- refined: an accepted refinement from the tree search (the verifier passes it) against the
  original it came from (the verifier fails it).
- partial: where no sample of a multi-constraint task passes, the best-scoring sample against the
  closest one scoring at least ``pairs.partial_credit_gap`` less (off by default).

Every pair records its source, both scores and the edit distance. A row an earlier kept round
already trained on is dropped (novelty.py); the rest are counted per task type. The RFT rows are the passing
samples and accepted refinements; the refiner's rows are its successful refinement chains and the
critiques that agreed with the verifier.

The choices run on the samples' texts (a trajectory's transcript on a multi-turn environment);
a pair, an RFT row and a refiner row are made by the round's pair builder (round/samples.py picks
it): answer_pairs.py from answers, trajectory_pairs.py from trajectories (the shared messages up
to the first differing turn are the prompt, the two continuations chosen and rejected).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

from evoforge.agents.search import SearchState
from evoforge.envs.base import Task
from evoforge.round.nodes import METRICS, StageResult, stage
from evoforge.round.runtime import Runtime
from evoforge.round.stages.answer_pairs import (
    AnswerPairs,
    GuidedPair,
    MakePair,
    PairBuilder,
    distinct,
    guided_text_pairs,
    text_pairs,
)
from evoforge.round.stages.novelty import by_type, new_rows, trained_before
from evoforge.round.stages.pair_text import edit_distance, side_text
from evoforge.round.stages.refiner_rows import refiner_data
from evoforge.round.stages.tree_search import search_metrics, tree_record
from evoforge.round.state import RunState
from evoforge.storage.records import Pair, SampleVerdict
from evoforge.storage.store import GuidedSamples, RoundStore

SOURCES = ("sampled", "guided", "refined", "partial")


def _closest(text: str, candidates: list[int], texts: list[str], used: set[int]) -> int | None:
    free = [i for i in candidates if i not in used]
    return min(free, key=lambda i: (edit_distance(text, texts[i]), i)) if free else None


def sampled_pairs(
    task: Task,
    texts: list[str],
    verdicts: list[SampleVerdict],
    per_task: int,
    make: MakePair | None = None,
) -> list[Pair]:
    """Each passing sample (up to ``per_task``) against the closest failing sample not yet used.
    ``make`` builds a pair from two sample indices (default: the two answers)."""
    make = make or text_pairs(task, texts, verdicts)
    passing = distinct([i for i, v in enumerate(verdicts) if v.passed], texts)
    failing = distinct([i for i, v in enumerate(verdicts) if not v.passed], texts)
    out, used = [], set()
    for c in passing[:per_task]:
        r = _closest(texts[c], failing, texts, used)
        if r is None:
            break
        used.add(r)
        if (p := make("sampled", c, r, f"{c}-{r}")) is not None:
            out.append(p)
    return out


def guided_pairs(
    task: Task,
    texts: list[str],
    verdicts: list[SampleVerdict],
    guided: list[GuidedSamples],
    per_task: int,
    make: GuidedPair | None = None,
) -> list[Pair]:
    """Passing guided samples of ``task`` (distinct, up to ``per_task`` over all kinds, kinds in
    their order) each against the closest plain failing sample not yet used. ``make(group, c, r,
    key)`` builds a pair from guided sample ``c`` of ``group`` and plain sample ``r`` (default:
    the two answers)."""
    make = make or guided_text_pairs(task, texts, verdicts)
    failing = distinct([i for i, v in enumerate(verdicts) if not v.passed], texts)
    out, used, seen = [], set(), set()
    for g in guided:
        for c in [i for i, v in enumerate(g.verdicts) if v.passed]:
            if len(out) >= per_task or g.texts[c].strip() in seen:
                continue
            seen.add(g.texts[c].strip())
            r = _closest(g.texts[c], failing, texts, used)
            if r is None:
                return out
            used.add(r)
            if (p := make(g, c, r, f"{g.kind}-{c}-{r}")) is not None:
                out.append(replace(p, guidance=g.kind))
    return out


def partial_pairs(
    task: Task,
    texts: list[str],
    verdicts: list[SampleVerdict],
    gap: float,
    per_task: int,
    make: MakePair | None = None,
) -> list[Pair]:
    """Where nothing passes a task of several checks: the best sample against the closest sample
    scoring at least ``gap`` less."""
    make = make or text_pairs(task, texts, verdicts)
    if gap <= 0 or len(task.tags) < 2 or any(v.passed for v in verdicts):
        return []
    order = distinct(sorted(range(len(texts)), key=lambda i: (-verdicts[i].score, i)), texts)
    out, used = [], set()
    for c in order[:per_task]:
        lower = [i for i in order if verdicts[i].score <= verdicts[c].score - gap]
        r = _closest(texts[c], lower, texts, used)
        if r is None:
            continue
        used.add(r)
        if (p := make("partial", c, r, f"{c}-{r}")) is not None:
            out.append(p)
    return out


def refined_pairs(
    tasks: dict[str, Task],
    state: SearchState,
    require_verifier: bool,
    builder: PairBuilder | None = None,
) -> tuple[list[Pair], dict[str, int]]:
    """Accepted refinements against their originals; counts of trees that made no pair.
    ``builder`` makes a pair of two nodes (default: of their answers)."""
    builder = builder or AnswerPairs(tasks, {})
    out, dropped = [], Counter()
    for tree in state.trees.values():
        if tree.accepted is None:
            dropped["no_accepted_refinement"] += 1
            continue
        chosen, rejected = state.nodes[tree.accepted], state.nodes[tree.root]
        if require_verifier and not chosen.verifier_passed:
            dropped["chosen_fails_verifier"] += 1
            continue
        if require_verifier and rejected.verifier_passed:
            dropped["rejected_passes_verifier"] += 1
            continue
        pair = builder.nodes(tasks[tree.task_id], "refined", chosen, rejected, chosen.id)
        if pair is None:
            dropped["no_divergence"] += 1
            continue
        out.append(replace(pair, depth=chosen.depth))
    return out, dict(dropped)


def filter_pairs(pairs: list[Pair], max_length_ratio: float) -> tuple[list[Pair], dict[str, int]]:
    """Drop identical sides, lopsided lengths and duplicates."""
    kept, seen, dropped = [], set(), Counter()
    for p in pairs:
        c, r = side_text(p.chosen), side_text(p.rejected)
        lc, lr = max(len(c), 1), max(len(r), 1)
        if c == r:
            dropped["identical"] += 1
        elif max(lc, lr) / min(lc, lr) > max_length_ratio:
            dropped["length_ratio"] += 1
        elif (p.task_id, c, r) in seen:
            dropped["duplicate"] += 1
        else:
            seen.add((p.task_id, c, r))
            kept.append(p)
    return kept, dict(dropped)


def guided_passes(guided: list[GuidedSamples], per_task: int) -> list[tuple[str, Any]]:
    """(task id, sample) of the passing guided samples, distinct and up to ``per_task`` a task;
    a sample is the trajectory where there is one, else the answer."""
    out, seen, count = [], set(), Counter()
    for g in guided:
        for i, v in enumerate(g.verdicts):
            key = (g.task_id, g.texts[i].strip())
            if v.passed and key not in seen and count[g.task_id] < per_task:
                seen.add(key)
                count[g.task_id] += 1
                out.append((g.task_id, g.samples[i]))
    return out


def build_round_data(rt: Runtime, state: RunState) -> dict[str, Any]:
    """Every pair source, the RFT rows and the refiner's rows of a round."""
    store, c = rt.store(state), rt.config.pairs
    tasks = store.tasks()
    _, s = store.search()
    samples, verdicts = store.sample_texts(), store.verdict_lists()
    guided = store.guided_samples(tasks)
    guided_by_task: dict[str, list[GuidedSamples]] = {}
    for g in guided:
        guided_by_task.setdefault(g.task_id, []).append(g)
    builder = rt.samples.pairs(store, tasks, c.turn_only)
    candidates = []
    for tid, texts in samples.items():
        task, vs = tasks[tid], verdicts[tid]
        make = builder.samples(task, vs)
        candidates += sampled_pairs(task, texts, vs, c.per_task, make)
        candidates += guided_pairs(
            task, texts, vs, guided_by_task.get(tid, []), c.per_task, builder.guided(task, vs)
        )
        candidates += partial_pairs(task, texts, vs, c.partial_credit_gap, c.per_task, make)
    refined, dropped = refined_pairs(tasks, s, c.require_verifier, builder)
    kept, filtered = filter_pairs(candidates + refined, c.max_length_ratio)
    per_task = rt.config.train.rft_per_task
    sft = builder.rft_rows(samples, verdicts, s, per_task, guided_passes(guided, per_task))
    seen = trained_before([rt.round_store(k) for k in range(state["round"])])
    kept, repeated_pairs = new_rows(kept, seen)
    sft, repeated_sft = new_rows(sft, seen)
    return {
        "pairs": kept,
        "dropped": dropped | filtered | ({"repeated": repeated_pairs} if repeated_pairs else {}),
        "sft": sft,
        "refiner": refiner_data(tasks, s, rt.roles, store.critiques.read(), samples, builder),
        "trees": [tree_record(s, t) for t in s.trees],
        "search": search_metrics(s),
        "rows": {
            "repeated": {"pairs": repeated_pairs, "sft": repeated_sft},
            "new_by_type": by_type(kept + sft, tasks),
        },
    }


def pairs_summary(rt: Runtime, state: RunState, store: RoundStore) -> StageResult:
    built = store.pairs.read()
    by_source = {src: sum(p.source == src for p in built) for src in SOURCES}
    sft = Counter(r.source for r in store.sft.read())
    refiner = Counter(r.kind for r in store.refiner.read())
    return StageResult(
        counts={"pairs": len(built), **{f"pairs_{k}": v for k, v in by_source.items()}}
        | {"rft": sum(sft.values()), "refinements": refiner.get("refinement", 0)},
        metrics={
            "pairs": len(built),
            "pairs_by_source": by_source,
            "rft_examples": dict(sft),
            "refiner_examples": dict(refiner),
        },
    )


@stage(
    reads=("task_rows", "samples", "verdicts", "guided", "search_file"),
    writes=("tree", "sft", "refiner", "pairs"),
    summary=pairs_summary,
)
def pairs(rt: Runtime, state: RunState, store: RoundStore) -> dict[str, Any]:
    data = build_round_data(rt, state)
    dist = [p.edit_distance for p in data["pairs"]]
    return {
        "tree": data["trees"],
        "sft": data["sft"],
        "refiner": data["refiner"],
        "pairs": data["pairs"],
        METRICS: {
            "pairs_dropped": data["dropped"],
            "mean_edit_distance": round(sum(dist) / len(dist), 2) if dist else None,
            "training_rows": data["rows"],
            **data["search"],
        },
    }
