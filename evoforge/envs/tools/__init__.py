"""``tools``: function-calling tasks over a shipped catalogue of small APIs (multi-turn).

The model gets a calculator, unit conversion, a calendar and a lookup in a shipped city table
(catalogue.py), and a question that needs one call (``calc``, ``convert``, ``date``, ``lookup``)
or several, some needing one result before the next call (``lookup_convert``, ``lookup_calc``,
``date_chain``). Item i of a split depends only on (split, seed, i); train and heldout are
disjoint by construction (a task's text decides its split). Verification (grading.py) compares
the calls made, parsed, and the final answer; ``details["by_type"]`` gives per-type pass rates
and ``details["failed_turn"]`` the first turn that went wrong.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from evoforge.envs.base import Task, Verdict, check_split, item_rng
from evoforge.envs.multiturn import Message, Tool, as_messages
from evoforge.envs.tools.catalogue import CATALOGUE
from evoforge.envs.tools.grading import grade
from evoforge.envs.tools.tasks import TYPES

INSTRUCTION = (
    "Use the tools. When you have the result, reply without a tool call and end with "
    "'The answer is X.'"
)


def _split_of(text: str) -> str:
    return "heldout" if zlib.crc32(text.encode()) % 2 else "train"


class ToolsEnv:
    """Function calling over a calculator, units, a calendar and a city table (multi-turn)."""

    name = "tools"

    def tasks(self, split: str, n: int, seed: int) -> list[Task]:
        check_split(self.name, split)
        return [self.task(split, seed, i) for i in range(n)]

    def task(self, split: str, seed: int, index: int) -> Task:
        g = item_rng(self.name, split, seed, index)
        kind = list(TYPES)[index % len(TYPES)]  # types in turn: per-type counts stay balanced
        draft = TYPES[kind](g)
        while _split_of(draft.question) != split:  # redraw until the text belongs to the split
            draft = TYPES[kind](g)
        calls = "multi_call" if len(draft.calls) > 1 else "single_call"
        return Task(
            id=f"{self.name}/{split}/{seed}/{index}",
            messages=({"role": "user", "content": f"{draft.question} {INSTRUCTION}"},),
            metadata={
                "type": kind,
                "calls": draft.calls,
                "answer": draft.answer,
                "kind": draft.kind,
            },
            tags=(kind, calls),
        )

    def tools(self, task: Task) -> Sequence[Tool]:
        return CATALOGUE

    def verify(self, task: Task, messages: str | Sequence[Message]) -> Verdict:
        return grade(task, as_messages(task, messages))
