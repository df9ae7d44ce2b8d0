"""A complete custom multi-turn environment with a tool: a shop's stock.

Plug it in with env=examples.custom_tool_env:StockEnv; check it with
`evoforge envs check examples.custom_tool_env:StockEnv`. The model calls `stock` to count items,
answers in words, and the step hook asks once for a number when the answer has none.
"""

from __future__ import annotations

import random
import re

from evoforge.envs import EnvReply, Task, Tool, ToolError, Verdict, object_schema

STOCK = {"apples": 14, "pears": 9, "plums": 23, "figs": 4, "limes": 31, "kiwis": 17}
ASK_AGAIN = "Please give the count as a number."


def stock(item: str) -> int:
    """A trusted tool: runs in-process; a bad call raises ToolError, which the model reads."""
    if item not in STOCK:
        raise ToolError(f"the shop sells no {item}; it sells {', '.join(STOCK)}")
    return STOCK[item]


TOOLS = [Tool("stock", "How many of an item the shop has.", object_schema(item="string"), stock)]


class StockEnv:
    """Counting a shop's stock with a tool (a custom multi-turn environment example)."""

    name = "stock"

    def tasks(self, split: str, n: int, seed: int) -> list[Task]:
        out = []
        for i in range(n):
            rng = random.Random(f"stock/{split}/{seed}/{i}")  # each task depends on these only
            a, b = rng.sample(sorted(STOCK), 2)
            if split == "train":  # heldout asks another question: the splits never share one
                q, answer = (
                    f"How many {a} and {b} does the shop have together?",
                    STOCK[a] + STOCK[b],
                )
            else:
                q, answer = f"How many more {a} than {b} does the shop have?", STOCK[a] - STOCK[b]
            out.append(
                Task(
                    id=f"stock/{split}/{seed}/{i}",
                    messages=({"role": "user", "content": q},),
                    metadata={"answer": answer, "items": [a, b]},
                    tags=(split,),
                )
            )
        return out

    def tools(self, task: Task) -> list[Tool]:
        return TOOLS

    def step(self, task: Task, messages: list[dict]) -> EnvReply | None:
        """Anything the environment says after a turn: here, one request for a number."""
        last = messages[-1]
        asked = any(m["content"] == ASK_AGAIN for m in messages)
        if last["role"] == "assistant" and not re.search(r"\d", last["content"]) and not asked:
            return EnvReply(ASK_AGAIN)
        return None

    def verify(self, task: Task, messages: list[dict]) -> Verdict:
        looked_up = {m["content"] for m in messages if m["role"] == "tool"}
        checked = all(str(STOCK[x]) in looked_up for x in task.metadata["items"])
        final = next((m["content"] for m in reversed(messages) if m["role"] == "assistant"), "")
        numbers = re.findall(r"-?\d+", final)
        right = bool(numbers) and int(numbers[-1]) == task.metadata["answer"]
        feedback = "" if checked else "look up both items with the stock tool; "
        feedback += "" if right else "the final number is not the count asked for"
        ok = checked and right
        return Verdict(score=(checked + right) / 2, passed=ok, feedback="" if ok else feedback)
