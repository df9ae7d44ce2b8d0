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
