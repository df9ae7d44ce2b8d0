"""baseline and evaluate: greedy held-out pass rates of the served weights, on the main
environment and the forgetting guard, compared task by task with the baseline and with the last
kept round (McNemar's exact test and the paired difference with its 95% interval).
``baseline`` runs once, on the starting model. A multi-turn environment is evaluated on greedy
rollouts (every held-out task's trajectory advanced turn by turn, verified whole): each
environment's kind of sample (round/samples.py) answers its held-out tasks."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Any

from evoforge.agents.serving.types import Sampling
from evoforge.envs.verify import safe_verify
from evoforge.errors import EvoforgeError
from evoforge.round.nodes import StageResult, stage
from evoforge.round.runtime import Runtime
from evoforge.round.samples import SampleKind
from evoforge.round.state import RunState
from evoforge.stats import paired_comparison, wilson
from evoforge.storage.records import EvalRecord, Evaluation
from evoforge.storage.store import RoundStore


def _rates(counts: dict[str, dict[str, int]]) -> dict[str, dict[str, Any]]:
    return {
        k: {
            "n": b["n"],
            "strict": round(b["strict"] / b["n"], 4),
            "loose": round(b["loose"] / b["n"], 4),
        }
        for k, b in sorted(counts.items())
    }


def summarize(records: list[EvalRecord], by_type: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Pass rates overall (with Wilson intervals), per type and per task group."""
    total = len(records)
    strict = sum(r.passed for r in records)
    loose = sum(r.loose for r in records)
    groups: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "strict": 0, "loose": 0})
    for r in records:
        if r.group:
            g = groups[r.group]
            g["n"], g["strict"], g["loose"] = (
                g["n"] + 1,
                g["strict"] + r.passed,
                g["loose"] + r.loose,
            )
    out = {
        "n": total,
        "strict": round(strict / total, 4),
        "loose": round(loose / total, 4),
        "ci95": wilson(strict, total),
        "ci95_loose": wilson(loose, total),
        "by_type": _rates(by_type),
    }
    if groups:
        out["by_group"] = _rates(groups)
    return out


def evaluate_env(
    samples: SampleKind, n: int, seed: int, max_tokens: int, progress=None
) -> tuple[dict[str, Any], list[EvalRecord]]:
    """Pass rates (strict, loose, 95% CI, per type, per group) of greedy heldout answers of
    ``samples.env`` (on a multi-turn environment a record's response is the trajectory's
    transcript)."""
    env = samples.env
    tasks = env.tasks("heldout", n, seed)
    if not tasks:
        raise EvoforgeError(
            f"environment '{env.name}' returned no heldout tasks; it must give at least one"
        )
    answers = samples.heldout(tasks, Sampling.greedy(max_tokens), progress)
    by_type: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "strict": 0, "loose": 0})
    records = []
    for t, (text, answer) in zip(tasks, answers, strict=True):
        v = safe_verify(env, t, answer)
        lo = bool(v.details.get("loose", v.passed))
        per_type = v.details.get("by_type") or {tag: v.passed for tag in t.tags}
        per_type_loose = v.details.get("by_type_loose") or per_type
        for tag, ok in per_type.items():
            b = by_type[tag]
            b["n"], b["strict"] = b["n"] + 1, b["strict"] + bool(ok)
            b["loose"] += bool(per_type_loose.get(tag, ok))
        records.append(
            EvalRecord(
                task_id=t.id,
                group=t.metadata.get("group"),
                response=text,
                passed=v.passed,
                loose=lo,
                score=v.score,
                feedback=v.feedback,
            )
        )
    return summarize(records, by_type), records


def outcomes(records: list[EvalRecord]) -> dict[str, dict[str, bool]]:
    """{env: {task id: passed}} of an evaluation's stored answers."""
    out: dict[str, dict[str, bool]] = defaultdict(dict)
    for r in records:
        out[r.env][r.task_id] = bool(r.passed)
    return out


def compare(
    now: dict[str, dict[str, bool]], then: dict[str, dict[str, bool]], groups: dict[str, str]
) -> dict[str, Any]:
    """Per env, the paired comparison of ``now`` against ``then`` (and per task group)."""
    out = {}
    for env, results in now.items():
        c = paired_comparison(then.get(env, {}), results)
        by_group: dict[str, dict[str, Any]] = {}
        for g in sorted({groups[t] for t in results if groups.get(t)}):
            ids = [t for t in results if groups.get(t) == g]
            by_group[g] = paired_comparison(
                {t: then.get(env, {})[t] for t in ids if t in then.get(env, {})},
                {t: results[t] for t in ids},
            )
        out[env] = c | ({"by_group": by_group} if by_group else {})
    return out


def evaluate_all(rt: Runtime, label: str) -> dict[str, Any]:
    """Held-out numbers of the weights the servers hold now, for the main and the guard env."""
    c = rt.config
    heldout, records = {}, {}
    kinds = [(rt.samples, c.eval.heldout_tasks)]
    kinds += [(rt.guard_samples, c.eval.guard_tasks)] if rt.guard_samples is not None else []
    for samples, n in kinds:
        name = samples.env.name
        total, unit = samples.steps(n, 1)  # trajectories: turns at most, as generate counts
        with rt.progress.bar(f"{label}: {name}", total, unit) as bar:
            heldout[name], records[name] = evaluate_env(samples, n, c.seed, c.eval.max_tokens, bar)
    return {"heldout": heldout, "records": records}


def _evaluation(rt: Runtime, state: RunState, round_: int, label: str) -> dict[str, Any]:
    """The outputs of an evaluation of the served weights: every response and the summary."""
    ev = evaluate_all(rt, label)
    responses = [replace(r, env=e) for e, recs in ev["records"].items() for r in recs]
    if round_ < 0:
        result = Evaluation(round=round_, kept=True, heldout=ev["heldout"])
        return {"eval_responses": responses, "eval": result}
    now = outcomes(responses)
    groups = {r.task_id: r.group for recs in ev["records"].values() for r in recs}
    base = outcomes(rt.baseline_store().eval_responses.read())
    kept = outcomes(rt.last_kept_store(state).eval_responses.read())
    cmp = {"baseline": compare(now, base, groups), "last_kept": compare(now, kept, groups)}
    result = Evaluation(round=round_, kept=None, heldout=ev["heldout"], compare=cmp)
    return {"eval_responses": responses, "eval": result}


def eval_summary(rt: Runtime, state: RunState, store: RoundStore) -> StageResult:
    ev = store.eval.read()
    h = ev.heldout[rt.env.name]
    counts = {"strict": h["strict"], "loose": h["loose"], "n": h["n"]}
    base = (ev.compare or {}).get("baseline", {}).get(rt.env.name)
    if base:
        counts |= {"delta": base["delta"], "p": base["p"]}
    return StageResult(counts=counts)


@stage(writes=("eval_responses", "eval"), summary=eval_summary, baseline=True)
def baseline(rt: Runtime, state: RunState, store: RoundStore) -> dict[str, Any]:
    """Held-out numbers of the starting model (the bar every round is compared with)."""
    return _evaluation(rt, state, -1, "baseline eval")


@stage(reads=("train_done",), writes=("eval_responses", "eval"), summary=eval_summary)
def evaluate(rt: Runtime, state: RunState, store: RoundStore) -> dict[str, Any]:
    r = state["round"]
    if not store.training_skipped():
        return _evaluation(rt, state, r, f"round {r} eval")
    last = rt.last_kept_store(state).eval.read()
    cmp = {"baseline": last.compare["baseline"]} if last.compare is not None else None
    return {"eval": Evaluation(round=r, unchanged=True, heldout=last.heldout, compare=cmp)}
