"""Statistics of evaluations and judges: pass-rate intervals and judge-verifier agreement.

Pure functions (no Ray, no models), so every rule that uses them is testable on its own.
"""

from __future__ import annotations

import math


def wilson(passed: int, n: int, z: float = 1.96) -> list[float]:
    """95% Wilson score interval of a pass rate (sound at small n and near 0 or 1)."""
    if n == 0:
        return [0.0, 0.0]
    p = passed / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def agreement(judged: list[tuple[float, bool]], threshold: float = 0.5) -> float | None:
    """Share of (judge value, verifier passed) items where the judge's call (value above
    ``threshold``) matches the verifier; None when nothing was judged."""
    if not judged:
        return None
    return round(sum((v > threshold) == ok for v, ok in judged) / len(judged), 4)


def mcnemar_exact(gained: int, lost: int) -> float:
    """Two-sided exact McNemar p-value: the discordant outcomes (``gained`` tasks now passing
    that failed before, ``lost`` the reverse) under Binomial(gained + lost, 1/2)."""
    n = gained + lost
    if n == 0:
        return 1.0
    k = min(gained, lost)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_comparison(before: dict[str, bool], after: dict[str, bool], z: float = 1.96) -> dict:
    """The pass/fail outcomes of the same tasks under two models, compared task by task.

    Returns n, both pass rates, the difference with its 95% interval (the Wald interval of a
    difference of paired proportions), the discordant counts and McNemar's exact p. Tasks present
    in only one side are left out."""
    ids = sorted(set(before) & set(after))
    n = len(ids)
    gained = sum(after[i] and not before[i] for i in ids)
    lost = sum(before[i] and not after[i] for i in ids)
    if n == 0:
        return {"n": 0, "delta": 0.0, "ci95": [0.0, 0.0], "p": 1.0, "gained": 0, "lost": 0}
    d = (gained - lost) / n
    se = math.sqrt(max(0.0, (gained + lost) / n - d * d) / n)
    return {
        "n": n,
        "before": round(sum(before[i] for i in ids) / n, 4),
        "after": round(sum(after[i] for i in ids) / n, 4),
        "delta": round(d, 4),
        "ci95": [round(d - z * se, 4), round(d + z * se, 4)],
        "p": float(f"{mcnemar_exact(gained, lost):.4g}"),  # 22 gained, 0 lost is 4.8e-07, not 0
        "gained": gained,
        "lost": lost,
    }


def cohen_kappa(judge: list[bool], truth: list[bool]) -> float | None:
    """Cohen's kappa of two binary raters (the judge against the verifier): 1 = perfect
    agreement, 0 = what chance gives with the same marginals, below 0 = worse than chance.
    None when undefined (no items, or both raters constant and equal)."""
    n = len(judge)
    if n == 0 or n != len(truth):
        return None
    po = sum(a == b for a, b in zip(judge, truth, strict=True)) / n
    pj, pt = sum(judge) / n, sum(truth) / n
    pe = pj * pt + (1 - pj) * (1 - pt)
    if pe >= 1.0:
        return None
    return round((po - pe) / (1 - pe), 4)
