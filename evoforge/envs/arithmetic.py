"""``arithmetic``: multi-step word problems with exact integer answers and a difficulty knob.

Difficulty d gives d + 1 operations on small integers. The answer is read from \\boxed{...},
"the answer is N", or else the last number in the response.
"""

from __future__ import annotations

import re

from evoforge.envs.base import Task, Verdict, check_split, item_rng

NAMES = [
    "Ana",
    "Ben",
    "Chen",
    "Dara",
    "Eli",
    "Fatima",
    "Goro",
    "Hana",
    "Ivan",
    "Jade",
    "Kofi",
    "Lena",
]
ITEMS = [
    "apples",
    "marbles",
    "stickers",
    "books",
    "coins",
    "shells",
    "pencils",
    "cards",
    "stamps",
    "eggs",
]
NUMBER = r"-?\d[\d,]*(?:\.\d+)?"


def extract_answer(response: str) -> str | None:
    """The final answer as text: \\boxed{} first, then "the answer is", then the last number."""
    boxed = re.findall(r"\\boxed\{\s*(" + NUMBER + r")\s*\}", response)
    if boxed:
        return boxed[-1].replace(",", "")
    said = re.findall(r"answer is:?\s*\$?(" + NUMBER + ")", response, flags=re.IGNORECASE)
    if said:
        return said[-1].replace(",", "")
    numbers = re.findall(NUMBER, response)
    return numbers[-1].replace(",", "").rstrip(".") if numbers else None


class ArithmeticEnv:
    """Multi-step arithmetic word problems; exact integer answers."""

    name = "arithmetic"

    def __init__(self, difficulty: int = 2) -> None:
        self.difficulty = difficulty

    def tasks(self, split: str, n: int, seed: int) -> list[Task]:
        check_split(self.name, split)
        return [self.task(split, seed, i) for i in range(n)]

    def task(self, split: str, seed: int, index: int) -> Task:
        g = item_rng(self.name, f"{split}/d{self.difficulty}", seed, index)
        # Heldout problems start from odd counts, train from even ones: the splits never share one.
        who, item = g.choice(NAMES), g.choice(ITEMS)
        value = 2 * g.randint(3, 20) + (1 if split == "heldout" else 0)
        steps = [f"{who} has {value} {item}."]
        for _ in range(self.difficulty + 1):
            op = g.choice(["gain", "lose", "times"] if value < 200 else ["lose"])
            if op == "gain":
                k = g.randint(2, 30)
                steps.append(f"Then {who} gets {k} more.")
                value += k
            elif op == "lose" and value > 2:
                k = g.randint(1, value - 1)
                steps.append(f"Then {who} gives away {k}.")
                value -= k
            else:
                k = g.randint(2, 4)
                steps.append(f"Then the number of {item} becomes {k} times as large.")
                value *= k
        question = (
            " ".join(steps) + f" How many {item} does {who} have now? End with 'The answer is N.'"
        )
        return Task(
            id=f"{self.name}/{split}/{seed}/{index}",
            messages=({"role": "user", "content": question},),
            metadata={"answer": value},
            tags=(f"ops{self.difficulty + 1}",),
        )

    def verify(self, task: Task, response: str) -> Verdict:
        expected = task.metadata["answer"]
        got = extract_answer(response)
        ok = got is not None and _as_number(got) == expected
        feedback = (
            ""
            if ok
            else (
                "no final number found; end with 'The answer is N.'"
                if got is None
                else f"the final answer {got} is wrong; recompute each step"
            )
        )
        return Verdict(
            score=float(ok),
            passed=ok,
            details={"loose": ok, "extracted": got, "by_type": {task.tags[0]: ok}},
            feedback=feedback,
        )


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
