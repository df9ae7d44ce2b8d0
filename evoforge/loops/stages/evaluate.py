"""baseline and evaluate: greedy held-out pass rates of the served weights, on the main
environment and the forgetting guard. ``baseline`` runs once, on the starting model."""

from __future__ import annotations

from typing import Any

from evoforge.agents.serving.types import GenRequest, ModelServer, Sampling, generate
from evoforge.envs.base import Environment
from evoforge.envs.verify import safe_verify
from evoforge.errors import EvoforgeError
from evoforge.loops.nodes import StageResult
from evoforge.loops.runtime import Runtime
from evoforge.loops.state import RunState
from evoforge.loops.store import RoundStore
from evoforge.stats import wilson


def evaluate_env(
    server: ModelServer, env: Environment, n: int, seed: int, max_tokens: int, progress=None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Pass rates (strict, loose, 95% CI, per type) of greedy answers on the heldout split."""
    tasks = env.tasks("heldout", n, seed)
    if not tasks:
        raise EvoforgeError(
            f"environment '{env.name}' returned no heldout tasks; it must give at least one"
        )
    reqs = [GenRequest(t.messages, Sampling.greedy(max_tokens), id=t.id) for t in tasks]
    results = generate(server, reqs, progress)
    strict = loose = 0
    by_type: dict[str, dict[str, int]] = {}
    records = []
    for t, r in zip(tasks, results, strict=True):
        v = safe_verify(env, t, r.texts[0])
        lo = bool(v.details.get("loose", v.passed))
        strict += v.passed
        loose += lo
        per_type = v.details.get("by_type") or {tag: v.passed for tag in t.tags}
        per_type_loose = v.details.get("by_type_loose") or per_type
        for tag, ok in per_type.items():
            b = by_type.setdefault(tag, {"n": 0, "strict": 0, "loose": 0})
            b["n"] += 1
            b["strict"] += bool(ok)
            b["loose"] += bool(per_type_loose.get(tag, ok))
        records.append(
            {
                "task_id": t.id,
                "response": r.texts[0],
                "passed": v.passed,
                "loose": lo,
                "score": v.score,
                "feedback": v.feedback,
            }
        )
    total = len(tasks)
    summary = {
        "n": total,
        "strict": round(strict / total, 4),
        "loose": round(loose / total, 4),
        "ci95": wilson(strict, total),
        "ci95_loose": wilson(loose, total),
        "by_type": {
            k: {
                "n": b["n"],
                "strict": round(b["strict"] / b["n"], 4),
                "loose": round(b["loose"] / b["n"], 4),
            }
            for k, b in sorted(by_type.items())
        },
    }
    return summary, records


def evaluate_all(rt: Runtime, label: str) -> dict[str, Any]:
    """Held-out numbers of the weights the servers hold now, for the main and the guard env."""
    c = rt.config
    heldout, records = {}, {}
    envs = [(rt.env, c.eval.heldout_tasks)] + ([(rt.guard, c.eval.guard_tasks)] if rt.guard else [])
    for env, n in envs:
        with rt.progress.bar(f"{label}: {env.name}", n) as bar:
            heldout[env.name], records[env.name] = evaluate_env(
                rt.servers.actor, env, n, c.seed, c.eval.max_tokens, bar
            )
    return {"heldout": heldout, "records": records}


def _write_eval(rt: Runtime, store: RoundStore, round_: int, label: str) -> None:
    ev = evaluate_all(rt, label)
    store.eval_responses.write(r | {"env": e} for e, recs in ev["records"].items() for r in recs)
    store.eval.write(
        {"round": round_, "kept": None if round_ >= 0 else True, "heldout": ev["heldout"]}
    )


def _counts(rt: Runtime, store: RoundStore) -> dict[str, Any]:
    h = store.eval.read()["heldout"][rt.env.name]
    return {"strict": h["strict"], "loose": h["loose"], "n": h["n"]}


def baseline(rt: Runtime, state: RunState) -> StageResult:
    """Held-out numbers of the starting model (the bar every round is compared with)."""
    store = rt.baseline_store()
    if not store.eval.exists():
        _write_eval(rt, store, -1, "baseline eval")
    return StageResult(counts=_counts(rt, store))


def evaluate(rt: Runtime, state: RunState) -> StageResult:
    store, r = rt.store(state), state["round"]
    if not store.eval.exists():
        if store.training_skipped():
            last = rt.last_kept_store(state).eval.read()
            store.eval.write(
                {"round": r, "kept": None, "unchanged": True, "heldout": last["heldout"]}
            )
        else:
            _write_eval(rt, store, r, f"round {r} eval")
    return StageResult(counts=_counts(rt, store))
