"""How the pairs stage compares two sides of a pair: as text, by word edit distance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def side_text(side: str | Sequence[Mapping[str, str]]) -> str:
    """A pair's side as text: an answer, or the contents of a continuation's messages."""
    if isinstance(side, str):
        return side.strip()
    return "\n".join(m.get("content", "") for m in side).strip()


def edit_distance(a: str, b: str) -> int:
    """Word-level Levenshtein distance."""
    x, y = a.split(), b.split()
    prev = list(range(len(y) + 1))
    for i, wx in enumerate(x, 1):
        cur = [i] + [0] * len(y)
        for j, wy in enumerate(y, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (wx != wy))
        prev = cur
    return prev[-1]
