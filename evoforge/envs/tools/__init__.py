"""``tools``: function-calling tasks over a shipped catalogue of small APIs (multi-turn).

The model gets a calculator, unit conversion, a calendar and a lookup in a shipped city table
(catalogue.py), and a question that needs one call (``calc``, ``convert``, ``date``, ``lookup``)
or several, some needing one result before the next call (``lookup_convert``, ``lookup_calc``,
``date_chain``). Item i of a split depends only on (split, seed, i); train and heldout are
disjoint by construction (a task's text decides its split). Verification (grading.py) compares
the calls made, parsed, and the final answer; ``details["by_type"]`` gives per-type pass rates
and ``details["failed_turn"]`` the first turn that went wrong.

For guided exploration (agents/guidance.py) a task also gives a ``hint`` (the tools to call in
order, the first call written out, never the answer), a ``response_prefix`` (its whole first
call) and ``followup_prefixes`` (its later calls, one per turn), so that a model that never calls
a tool by itself gets verified trajectories, chains included.
``demonstrations(n, seed)`` plays train tasks with their expected calls through the real tools:
worked trajectories for an optional warm-start SFT (off unless a run asks for it).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from evoforge.envs.base import Task, Verdict, check_split, item_rng
from evoforge.envs.multiturn import Message, Tool, Trajectory, apply_turn, as_messages
from evoforge.envs.toolcalls import call_text
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

    def hint(self, task: Task) -> str:
        """Which tools to call, in order and what for, and the first call in the call format
        (its arguments come from the question alone); never a result or the answer."""
        calls = task.metadata["calls"]
        steps = "; then ".join(f"{c['name']} to {c['why']}" for c in calls)
        return (
            f"Call {steps}. Write each call as <tool_call>JSON</tool_call>; the first one is "
            f"{self.response_prefix(task)}. After the last result, reply without a call and "
            "end with 'The answer is X.'"
        )

    def response_prefix(self, task: Task) -> str:
        """The task's whole first tool call (its arguments come from the question alone).

        Only the opening (``{"name": "calculate", "arguments": {``) is not enough for the
        default model: forced to it, it filled in well-formed arguments 1 time in 56 and passed
        0; forced to the whole first call, it read the result and answered: 9 passes in 28 on
        8 of 14 tasks (scripts/guided_probe.py tools). What it learns from such a trajectory is
        to write that call for the plain question, then to use its result."""
        first = task.metadata["calls"][0]
        return call_text(first["name"], first["arguments"])

    def followup_prefixes(self, task: Task) -> list[str]:
        """The task's later calls, each forced whole on its own turn after the first: with only
        the first call forced, the default model wrote no chain's second call in three round-0
        runs (``date_chain``, ``lookup_calc``, ``lookup_convert`` stayed at 0). The calls use
        the tools' real results (tasks.py computes them with the same tools), so a trajectory
        that follows them reads the same results; the model writes the answer from them."""
        return [call_text(c["name"], c["arguments"]) for c in task.metadata["calls"][1:]]

    def demonstrations(self, n: int, seed: int) -> list[Trajectory]:
        """``n`` worked trajectories of train tasks (``tasks("train", n, seed)``): each expected
        call in its own turn, run through the real tools, then the answer in the instructed form.
        Every one passes ``verify``."""
        tools = {t.name: t for t in CATALOGUE}
        out = []
        for task in self.tasks("train", n, seed):
            traj = Trajectory.start(task, f"{task.id}/demo")
            calls = task.metadata["calls"]
            for c in calls:
                apply_turn(self, traj, call_text(c["name"], c["arguments"]), len(calls) + 1, tools)
            answer = task.metadata["answer"]
            apply_turn(self, traj, f"The answer is {answer}.", len(calls) + 1, tools)
            out.append(traj)
        return out

    def verify(self, task: Task, messages: str | Sequence[Message]) -> Verdict:
        return grade(task, as_messages(task, messages))
