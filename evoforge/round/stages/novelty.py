"""Rounds that keep teaching: a row an earlier kept round already trained on is not trained again.

A second round that samples the same kinds of tasks can rebuild rows the model has already
learned (the same prompt and answer, the same pair); training on them again only pulls harder in
a direction already taken. Rows are compared by content (prompt and completion, or prompt,
chosen and rejected), so a repeat is found whichever round or task id made it. What is new is
counted per task type, so the report shows where a round's data came from.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import TypeVar

from evoforge.envs.base import Task
from evoforge.storage.records import Pair, SftRow
from evoforge.storage.store import RoundStore

Row = TypeVar("Row", Pair, SftRow)


def fingerprint(row: Pair | SftRow) -> str:
    """A row's content: an SFT row's prompt and completion, or a pair's prompt and both sides."""
    if isinstance(row, Pair):
        key = ["pair", row.prompt, row.chosen, row.rejected]
    else:
        key = ["sft", row.messages, row.completion]
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()


def trained_before(stores: list[RoundStore]) -> set[str]:
    """Fingerprints of the rows of every kept round among ``stores`` (earlier rounds)."""
    seen: set[str] = set()
    for store in stores:
        if store.eval.exists() and store.eval.read().kept:
            seen.update(fingerprint(r) for r in store.sft.read())
            seen.update(fingerprint(p) for p in store.pairs.read())
    return seen


def new_rows(rows: list[Row], seen: set[str]) -> tuple[list[Row], int]:
    """The rows not in ``seen`` (in order), and how many were dropped as repeats."""
    out = [r for r in rows if fingerprint(r) not in seen]
    return out, len(rows) - len(out)


def by_type(rows: list[Pair | SftRow], tasks: dict[str, Task]) -> dict[str, int]:
    """How many rows each task type has (a row of a task with several types counts for each)."""
    counts = Counter(tag for r in rows for tag in tasks[r.task_id].tags)
    return dict(sorted(counts.items()))
