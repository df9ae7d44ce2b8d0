"""Fine-grained preference pairs on trajectories, and their TRL rows.

Two trajectories of one task that share every message up to an assistant turn and differ from
there (an original and its replay from a rewritten turn, or two samples) make a pair: the shared
messages are the prompt, the two continuations are chosen and rejected. TRL trains on them as
conversational rows (DPO: prompt/chosen/rejected; SFT: prompt/completion), with the tools either
in a ``tools`` column, for a chat template that renders tools, or in the system prompt with tool
results as user turns, exactly as the model saw them when generating (see engine_base.chat_for).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from evoforge.envs.multiturn import Message, Trajectory
from evoforge.envs.tool_prompt import text_chat
from evoforge.errors import EvoforgeError


@dataclass(frozen=True)
class TurnPair:
    """Two continuations of one shared trajectory prefix."""

    task_id: str
    turn: int
    """The assistant turn where the continuations start to differ."""
    prompt: list[Message] = field(hash=False)
    chosen: list[Message] = field(hash=False)
    rejected: list[Message] = field(hash=False)
    chosen_score: float = 0.0
    rejected_score: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "turn": self.turn,
            "prompt": self.prompt,
            "chosen": self.chosen,
            "rejected": self.rejected,
            "chosen_score": self.chosen_score,
            "rejected_score": self.rejected_score,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TurnPair:
        return cls(**d)


def divergence(a: Trajectory, b: Trajectory) -> int:
    """The first assistant turn at which ``a`` and ``b`` differ (they share every message before
    it); an error when they belong to different tasks or never differ."""
    if a.task.id != b.task.id:
        raise EvoforgeError(f"cannot pair trajectories of tasks '{a.task.id}' and '{b.task.id}'")
    for k in range(min(len(a.turns), len(b.turns))):
        ia, ib = a.turns[k].index, b.turns[k].index
        if ia != ib or a.messages[:ia] != b.messages[:ib]:
            raise EvoforgeError(
                f"trajectories '{a.key}' and '{b.key}' differ before assistant turn {k}; a pair "
                "needs a shared prefix that ends at an assistant turn"
            )
        if a.messages[ia] != b.messages[ib]:
            return k
    raise EvoforgeError(f"trajectories '{a.key}' and '{b.key}' do not differ at any turn")


def turn_pair(a: Trajectory, score_a: float, b: Trajectory, score_b: float) -> TurnPair:
    """The pair of two trajectories of one task: the higher score's continuation is chosen."""
    if score_a == score_b:
        raise EvoforgeError(
            f"trajectories '{a.key}' and '{b.key}' score the same ({score_a}); a pair needs a "
            "preference"
        )
    (win, ws), (lose, ls) = sorted([(a, score_a), (b, score_b)], key=lambda x: -x[1])
    return prefer(win, ws, lose, ls)


def prefer(win: Trajectory, ws: float, lose: Trajectory, ls: float) -> TurnPair:
    """The pair with ``win``'s continuation chosen (a verdict decided it, whatever the scores)."""
    k = divergence(win, lose)
    return TurnPair(
        task_id=win.task.id,
        turn=k,
        prompt=win.prefix(k),
        chosen=win.continuation(k),
        rejected=lose.continuation(k),
        chosen_score=ws,
        rejected_score=ls,
    )


def chat_row(
    prompt: list[Message], completions: dict[str, list[Message]], specs, native: bool
) -> dict[str, Any]:
    """One TRL conversational row: ``prompt`` and the ``completions`` by column name, with the
    tools in a ``tools`` column (``native``: the chat template renders tools) or in the system
    prompt with tool results as user turns (as ``engine_base.chat_for`` shows them to the model)."""
    if native:
        row: dict[str, Any] = {"prompt": prompt, **completions}
        if specs:
            row["tools"] = json.dumps(list(specs))
        return row
    return {
        "prompt": text_chat(prompt, specs),
        **{k: text_chat(v, ()) for k, v in completions.items()},
    }


def dpo_rows(
    pairs: Sequence[TurnPair],
    specs: Sequence[dict[str, Any]],
    native_tools: bool,
    turn_only: bool = False,
) -> list[dict[str, Any]]:
    """TRL conversational preference rows (prompt = the shared messages, chosen/rejected = the
    two continuations). ``specs``: the tools' function specs (``Tool.spec()``);
    ``native_tools``: the chat template renders tools (``engine_base.template_supports_tools``);
    ``turn_only``: chosen/rejected are only the two differing assistant turns (step-level pairs:
    no loss on what the environment said afterwards)."""
    end = 1 if turn_only else None
    return [
        chat_row(
            p.prompt,
            {"chosen": p.chosen[:end], "rejected": p.rejected[:end]},
            specs,
            native_tools,
        )
        for p in pairs
    ]


def sft_rows(
    pairs: Sequence[TurnPair],
    specs: Sequence[dict[str, Any]],
    native_tools: bool,
    turn_only: bool = False,
) -> list[dict[str, Any]]:
    """TRL conversational prompt-completion rows: the shared messages and the chosen continuation
    (only its first assistant turn with ``turn_only``)."""
    end = 1 if turn_only else None
    return [chat_row(p.prompt, {"completion": p.chosen[:end]}, specs, native_tools) for p in pairs]
