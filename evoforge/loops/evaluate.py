"""Held-out evaluation (greedy) and the promotion rule."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from evoforge.agents.serving.types import GenRequest, ModelServer, Sampling, generate
from evoforge.envs.base import Environment
from evoforge.envs.check import validate_verdict
from evoforge.errors import EvoforgeError


def wilson(passed: int, n: int, z: float = 1.96) -> list[float]:
    """95% Wilson score interval of a pass rate (sound at small n and near 0 or 1)."""
    if n == 0:
        return [0.0, 0.0]
    p = passed / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def safe_verify(env: Environment, task, response: str):
    """verify() with a clear error: a verifier failure is never turned into a score of 0."""
    name = getattr(env, "name", type(env).__name__)
    try:
        v = env.verify(task, response)
    except Exception as e:
        raise EvoforgeError(
            f"environment '{name}': verify() raised {type(e).__name__}: {e} on task "
            f"'{task.id}'; fix the verifier (it must return a Verdict)"
        ) from e
    try:
        return validate_verdict(name, v)
    except ValueError as e:
        raise EvoforgeError(f"{e} (task '{task.id}')") from None


def evaluate_env(
    server: ModelServer, env: Environment, n: int, seed: int, max_tokens: int, progress=None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Pass rates (strict, loose, 95% CI, per type) of greedy answers on the heldout split."""
    tasks = env.tasks("heldout", n, seed)
    if not tasks:
        raise EvoforgeError(
            f"environment '{env.name}' returned no heldout tasks; it must give at least one"
        )
    reqs = [
        GenRequest(t.messages, Sampling(temperature=0.0, max_tokens=max_tokens), id=t.id)
        for t in tasks
    ]
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


@dataclass(frozen=True)
class Decision:
    keep: bool
    gain: bool
    reason: str


def decide(
    candidate: dict[str, Any],
    last_kept: dict[str, Any],
    main_env: str,
    guard_env: str,
    tolerance: float,
) -> Decision:
    """Keep unless the main pass rate (or the guard's) fell by more than ``tolerance``."""
    new, old = candidate["heldout"][main_env]["strict"], last_kept["heldout"][main_env]["strict"]
    if new < old - tolerance:
        return Decision(
            False,
            False,
            f"{main_env} strict pass rate fell {old:.3f} -> {new:.3f} "
            f"(more than tolerance {tolerance})",
        )
    if guard_env and guard_env in candidate["heldout"] and guard_env in last_kept["heldout"]:
        g_new, g_old = (
            candidate["heldout"][guard_env]["strict"],
            last_kept["heldout"][guard_env]["strict"],
        )
        if g_new < g_old - tolerance:
            return Decision(
                False, False, f"guard {guard_env} regressed {g_old:.3f} -> {g_new:.3f} (forgetting)"
            )
    gain = new > old
    return Decision(
        True, gain, f"{main_env} strict {old:.3f} -> {new:.3f}" + ("" if gain else " (no gain)")
    )
