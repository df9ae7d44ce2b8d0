"""Pairs, RFT rows and refiner rows of a single-turn round, made from answers.

trajectory_pairs.py makes the same data from a multi-turn round's trajectories; both answer the
``PairBuilder`` protocol, so the pairs stage asks for a pair, a row or a refinement without
knowing which kind of sample it holds (round/samples.py picks the builder).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from evoforge.agents.roles import Roles
from evoforge.agents.search import Node, SearchState
from evoforge.envs.base import Task
from evoforge.envs.multiturn import Message
from evoforge.round.stages.pair_text import edit_distance
from evoforge.storage.records import Pair, SampleVerdict, SftRow
from evoforge.storage.store import GuidedSamples

GuidedPair = Callable[["GuidedSamples", int, int, str], "Pair | None"]
"""(guided samples, index among them, plain sample index, key) -> a guided pair, or None."""

MakePair = Callable[[str, int, int, str], "Pair | None"]
"""(source, chosen index, rejected index, key) -> the pair of two samples of a task, or None when
the two cannot pair (multi-turn: trajectories that never differ)."""


class PairBuilder(Protocol):
    """What the pairs stage asks of a round's samples (AnswerPairs, TrajectoryPairs)."""

    def samples(self, task: Task, verdicts: list[SampleVerdict]) -> MakePair:
        """The pair maker of a task's samples."""
        ...

    def guided(self, task: Task, verdicts: list[SampleVerdict]) -> GuidedPair:
        """The pair maker of a task's guided samples against its samples."""
        ...

    def nodes(self, task: Task, source: str, chosen: Node, rejected: Node, key: str) -> Pair | None:
        """The pair of two search nodes (an accepted refinement and its original)."""
        ...

    def rft_rows(
        self,
        texts: dict[str, list[str]],
        verdicts: dict[str, list[SampleVerdict]],
        state: SearchState,
        per_task: int,
        guided: list[tuple[str, Any]] = (),
    ) -> list[SftRow]:
        """The RFT rows of passing samples, passing guided samples and accepted refinements."""
        ...

    def refinement(
        self, roles: Roles, task: Task, parent: Node, node: Node
    ) -> tuple[list[Message], str]:
        """The refiner's prompt for ``parent`` and what it wrote (``node``)."""
        ...


def text_pair(
    task: Task, source: str, chosen: str, rejected: str, cs: float, rs: float, key: str
) -> Pair:
    """The pair record of two answers of ``task`` (``chosen`` scored ``cs``)."""
    return Pair(
        id=f"{task.id}|{source}|{key}",
        task_id=task.id,
        source=source,
        prompt=list(task.messages),
        chosen=chosen,
        rejected=rejected,
        chosen_score=cs,
        rejected_score=rs,
        edit_distance=edit_distance(chosen, rejected),
    )


def distinct(indices: list[int], texts: list[str]) -> list[int]:
    """``indices`` less those whose text (stripped) an earlier one already has."""
    seen, out = set(), []
    for i in indices:
        if texts[i].strip() not in seen:
            seen.add(texts[i].strip())
            out.append(i)
    return out


def text_pairs(task: Task, texts: list[str], verdicts: list[SampleVerdict]) -> MakePair:
    """The pair maker of a task's answers."""

    def make(source: str, c: int, r: int, key: str) -> Pair:
        s = (verdicts[c].score, verdicts[r].score)
        return text_pair(task, source, texts[c], texts[r], *s, key)

    return make


def guided_text_pairs(task: Task, texts: list[str], verdicts: list[SampleVerdict]) -> GuidedPair:
    """The pair maker of a task's guided answers against its answers."""

    def make(g: GuidedSamples, c: int, r: int, key: str) -> Pair:
        return text_pair(
            task, "guided", g.texts[c], texts[r], g.verdicts[c].score, verdicts[r].score, key
        )

    return make


def sft_row(task: Task, source: str, text: str) -> SftRow:
    """An RFT row: the task's prompt and an answer."""
    return SftRow(task_id=task.id, source=source, messages=list(task.messages), completion=text)


class AnswerPairs:
    """Makes the round's data from its sampled answers and searched trees."""

    def __init__(self, tasks: dict[str, Task], texts: dict[str, list[str]]) -> None:
        self.tasks, self.texts = tasks, texts

    def samples(self, task: Task, verdicts: list[SampleVerdict]) -> MakePair:
        """The pair maker of a task's answers (``MakePair``)."""
        return text_pairs(task, self.texts[task.id], verdicts)

    def guided(self, task: Task, verdicts: list[SampleVerdict]) -> GuidedPair:
        """The pair maker of a task's guided answers against its answers (``GuidedPair``)."""
        return guided_text_pairs(task, self.texts[task.id], verdicts)

    def nodes(self, task: Task, source: str, chosen: Node, rejected: Node, key: str) -> Pair:
        """The pair of two search nodes (an accepted refinement and its original)."""
        s = (chosen.verifier_score or 0.0, rejected.verifier_score or 0.0)
        return text_pair(task, source, chosen.response, rejected.response, *s, key)

    def rft_rows(
        self,
        texts: dict[str, list[str]],
        verdicts: dict[str, list[SampleVerdict]],
        state: SearchState,
        per_task: int,
        guided: list[tuple[str, str]] = (),
    ) -> list[SftRow]:
        """Passing answers (distinct, up to ``per_task`` a task), passing guided answers
        (``guided``: (task id, answer), already capped) and accepted, verified refinements."""
        out = []
        for tid, answers in texts.items():
            ok = distinct([i for i, v in enumerate(verdicts[tid]) if v.passed], answers)
            for i in ok[:per_task]:
                out.append(sft_row(self.tasks[tid], "sampled", answers[i]))
        for tid, text in guided:
            out.append(sft_row(self.tasks[tid], "guided", text))
        for tree in state.trees.values():
            node = state.nodes[tree.accepted] if tree.accepted else None
            if node is not None and node.verifier_passed:
                out.append(sft_row(self.tasks[tree.task_id], "refined", node.response))
        return out

    def refinement(
        self, roles: Roles, task: Task, parent: Node, node: Node
    ) -> tuple[list[Message], str]:
        """The refiner's prompt for ``parent`` and the answer it wrote (``node``)."""
        prompt = roles.refiner_prompt(task, parent.response, parent.critique, parent.feedback)
        return prompt, node.response
