"""A multi-turn environment that the tiny random model passes about a quarter of the time, so
that a whole round on trajectories has work at every node (sampled and refined pairs, training)."""

from __future__ import annotations

from evoforge.envs import EnvReply, Task, Tool, Verdict, object_schema
from evoforge.envs.multiturn import as_messages, assistant_turns

AGAIN = "Once more, please."


def flip(text: str) -> str:
    return text[::-1]


TOOLS = [Tool("flip", "The text reversed.", object_schema(text="string"), flip)]


class ParityChatEnv:
    """Two turns (the user asks again after the first answer); passes when both assistant turns
    have an even number of characters; the first odd turn is the one that went wrong."""

    name = "paritychat"

    def tasks(self, split: str, n: int, seed: int) -> list[Task]:
        return [
            Task(
                id=f"paritychat/{split}/{seed}/{i}",
                messages=({"role": "user", "content": f"Say something ({split} {seed} {i})."},),
                tags=("even" if i % 2 == 0 else "odd",),
            )
            for i in range(n)
        ]

    def tools(self, task: Task) -> list[Tool]:
        return TOOLS

    def step(self, task: Task, messages: list[dict]) -> EnvReply | None:
        if messages[-1]["role"] == "assistant" and len(assistant_turns(messages)) == 1:
            return EnvReply(AGAIN)
        return None

    def verify(self, task: Task, messages) -> Verdict:
        msgs = as_messages(task, messages)
        turns = [msgs[i]["content"] for i in assistant_turns(msgs)][:2]
        even = [len(t) % 2 == 0 for t in turns]
        ok = len(turns) == 2 and all(even)
        details = {"loose": ok, "by_type": {task.tags[0]: ok}}
        odd = [k for k, e in enumerate(even) if not e]
        if odd:
            details["failed_turn"] = odd[0]
        return Verdict(
            score=sum(even) / 2,
            passed=ok,
            details=details,
            feedback=""
            if ok
            else "; ".join(f"turn {k + 1} has an odd length" for k in odd) or "answer twice",
        )


class LongToolSpecs(ParityChatEnv):
    """Short prompts whose tool specs alone overflow the context window."""

    name = "longtoolspecs"

    def tools(self, task: Task) -> list[Tool]:
        return [Tool("flip", "The text reversed. " + "word " * 2000, TOOLS[0].parameters, flip)]
