"""One training sequence per trajectory: SFT rows whose tokens are a prefix of another row's.

A passing trajectory becomes one SFT row per assistant turn (round/stages/trajectory_pairs.py),
each the whole conversation up to that turn: a trajectory of three calls and an answer trains
the system prompt with its tools four times, and on this model's 400-token tool prompt that is
most of a round's training time. The per-turn rows of one trajectory are prefixes of its last
row, token for token, so the last row alone, with the loss on every turn the shorter rows train,
gives each of those tokens the same context and the same label (causal attention: a token never
sees what comes after it). Fewer rows also mean fewer optimizer steps over the same labelled
tokens (a step averages over the tokens of its batch).
"""

from __future__ import annotations

from typing import Any

IGNORE = -100
"""The label of a token outside the loss (transformers' and TRL's convention)."""


def merge_prefix_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tokenized SFT rows ({"input_ids", "labels", ...}) with every row whose ``input_ids`` are
    a prefix of a longer row's folded into that row: its labelled tokens are labelled there too.
    A row that is no prefix of another stays as it is; the order of the kept rows is kept."""
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]["input_ids"]))
    kept: list[int] = []
    labels: dict[int, list[int]] = {}
    for i in order:
        ids = rows[i]["input_ids"]
        into = next((k for k in kept if rows[k]["input_ids"][: len(ids)] == ids), None)
        if into is None:
            kept.append(i)
            labels[i] = list(rows[i]["labels"])
            continue
        target = labels[into]
        for pos, label in enumerate(rows[i]["labels"]):
            if label != IGNORE:
                target[pos] = label
    return [rows[i] | {"labels": labels[i]} for i in sorted(kept)]


def merged_dataset(dataset):
    """A datasets.Dataset of tokenized SFT rows after :func:`merge_prefix_rows` (the same object
    when nothing merges)."""
    from datasets import Dataset

    rows = dataset.to_list()
    merged = merge_prefix_rows(rows)
    return dataset if len(merged) == len(rows) else Dataset.from_list(merged)
