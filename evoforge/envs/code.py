"""``code``: small Python function tasks with hidden tests, checked in the sandbox.

Each task is a family (sum of evens, run-length encoding, ...) with drawn parameters; its tests
are computed by a reference implementation on inputs drawn from the same (split, seed, index)
generator. The response's code (a ```python block, or the whole text) runs only in
evoforge/sandbox, which receives the test inputs and returns the function's outputs; the
expected outputs stay here and are compared here. A timeout or crash is a failed verdict with
feedback.

Two kinds of tests, both needed to pass: the shown tests (``metadata["tests"]``), whose first
failure feedback describes (input, what came back, expected output), and the hidden tests
(``metadata["hidden_tests"]``), of which feedback gives only how many failed. The hidden ones
run in a sandbox of their own, so nothing the code does with their inputs (return them, raise
them, print them, read them from the runner's memory) reaches feedback: an answer hard-coded from
feedback (a lookup table of the shown tests) fails them.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from evoforge.envs.base import Task, Verdict, check_split, item_rng
from evoforge.sandbox import SandboxLimits, run_code


@dataclass(frozen=True)
class Family:
    id: str
    describe: Callable[[dict], str]
    params: Callable[[random.Random], dict]
    reference: Callable[[dict, object], object]
    inputs: Callable[[random.Random], object]


def _ints(g: random.Random, n: int = 8) -> list[int]:
    return [g.randint(-20, 40) for _ in range(g.randint(0, n))]


def _word(g: random.Random) -> str:
    return "".join(g.choice("aabbbcdeeo") for _ in range(g.randint(0, 10)))


def _rle(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        j = i
        while j < len(s) and s[j] == s[i]:
            j += 1
        out.append(f"{s[i]}{j - i}")
        i = j
    return "".join(out)


FAMILIES = [
    Family(
        "sum_multiples",
        lambda p: f"returns the sum of the numbers in the list `xs` that are divisible by {p['k']}",
        lambda g: {"k": g.randint(2, 5)},
        lambda p, xs: sum(x for x in xs if x % p["k"] == 0),
        _ints,
    ),
    Family(
        "count_above",
        lambda p: f"returns how many numbers in the list `xs` are strictly greater than {p['t']}",
        lambda g: {"t": g.randint(-5, 20)},
        lambda p, xs: sum(x > p["t"] for x in xs),
        _ints,
    ),
    Family(
        "scale_clip",
        lambda p: (
            f"returns a new list with each number of `xs` multiplied by {p['m']} and then "
            f"capped at {p['c']} (values above {p['c']} become {p['c']})"
        ),
        lambda g: {"m": g.randint(2, 4), "c": g.randint(10, 50)},
        lambda p, xs: [min(x * p["m"], p["c"]) for x in xs],
        _ints,
    ),
    Family(
        "second_largest",
        lambda p: (
            "returns the second largest distinct number in the list `xs`, or None if there is none"
        ),
        lambda g: {},
        lambda p, xs: sorted(set(xs))[-2] if len(set(xs)) > 1 else None,
        _ints,
    ),
    Family(
        "rle",
        lambda p: (
            "returns the run-length encoding of the string `xs`: each run of a repeated character "
            'becomes the character followed by the run length ("aab" -> "a2b1")'
        ),
        lambda g: {},
        lambda p, s: _rle(s),
        _word,
    ),
    Family(
        "vowels",
        lambda p: f"returns the number of vowels (a, e, i, o, u) in the string `xs`, plus {p['b']}",
        lambda g: {"b": g.randint(0, 3)},
        lambda p, s: sum(c in "aeiou" for c in s) + p["b"],
        _word,
    ),
    Family(
        "running_max",
        lambda p: "returns a list whose i-th element is the largest of xs[0..i]",
        lambda g: {},
        lambda p, xs: [max(xs[: i + 1]) for i in range(len(xs))],
        _ints,
    ),
    Family(
        "dedupe",
        lambda p: "returns the numbers of `xs` without repeats, keeping the first occurrence order",
        lambda g: {},
        lambda p, xs: list(dict.fromkeys(xs)),
        _ints,
    ),
    Family(
        "pair_sums",
        lambda p: f"returns how many pairs of positions i < j have xs[i] + xs[j] == {p['s']}",
        lambda g: {"s": g.randint(0, 30)},
        lambda p, xs: sum(
            xs[i] + xs[j] == p["s"] for i in range(len(xs)) for j in range(i + 1, len(xs))
        ),
        _ints,
    ),
    Family(
        "reverse_words",
        lambda p: "returns the string `xs` with its characters reversed and uppercased",
        lambda g: {},
        lambda p, s: s[::-1].upper(),
        _word,
    ),
]
CODE_BLOCK = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def extract_code(response: str) -> str:
    """The last fenced code block, or the whole response when there is none."""
    blocks = CODE_BLOCK.findall(response or "")
    return blocks[-1] if blocks else (response or "")


class CodeEnv:
    """Small Python functions with hidden tests, run in the sandbox."""

    name = "code"

    def __init__(
        self, tests_per_task: int = 4, hidden_per_task: int = 4, limits: SandboxLimits | None = None
    ) -> None:
        self.tests_per_task = tests_per_task
        self.hidden_per_task = hidden_per_task
        self.limits = limits or SandboxLimits()

    def tasks(self, split: str, n: int, seed: int) -> list[Task]:
        check_split(self.name, split)
        return [self.task(split, seed, i) for i in range(n)]

    def task(self, split: str, seed: int, index: int) -> Task:
        g = item_rng(self.name, split, seed, index)
        # Heldout draws from the last three families only: the splits never share a task.
        fams = FAMILIES[-3:] if split == "heldout" else FAMILIES[:-3]
        fam = g.choice(fams)
        p = fam.params(g)
        fname = f"solve_{fam.id}"
        cases = [fam.inputs(g) for _ in range(self.tests_per_task + self.hidden_per_task)]
        tests = [[x, repr(fam.reference(p, x))] for x in cases]  # [input, expected repr]
        prompt = (
            f"Write a Python function `{fname}(xs)` that {fam.describe(p)}. Reply with the function in a "
            "```python code block."
        )
        return Task(
            id=f"{self.name}/{split}/{seed}/{index}",
            messages=({"role": "user", "content": prompt},),
            metadata={
                "family": fam.id,
                "function": fname,
                "tests": tests[: self.tests_per_task],
                "hidden_tests": tests[self.tests_per_task :],
            },
            tags=(fam.id,),
        )

    def verify(self, task: Task, response: str) -> Verdict:
        """Run the shown tests, then the hidden ones in a sandbox of their own (not when the
        shown run already failed to load, timed out or crashed: they then count as failed).
        Whatever the code does, the result is a verdict (SandboxUnavailable, the machine's
        fault, is raised)."""
        if not isinstance(response, str):
            why = f"the response is {type(response).__name__}, not text"
            return Verdict(0.0, False, {"by_type": {task.tags[0]: False}}, why)
        code, function = extract_code(response), task.metadata["function"]
        shown, hidden = task.metadata["tests"], task.metadata.get("hidden_tests", [])
        result = run_code(code, function, [[x] for x, _ in shown], self.limits)
        ok = result.matches([want for _, want in shown])
        hidden_ok = [False] * len(hidden)
        # code that did not load, or ran out of time or crashed, is not run a second time
        ran_hidden = bool(hidden) and not (result.load_error or result.timed_out or result.crashed)
        if ran_hidden:
            unseen = run_code(code, function, [[x] for x, _ in hidden], self.limits)
            hidden_ok = unseen.matches([want for _, want in hidden])
        every = ok + hidden_ok
        passed = all(every)
        feedback = "" if all(ok) else result.feedback([want for _, want in shown])
        if ran_hidden and not all(hidden_ok):
            failed = f"{len(hidden_ok) - sum(hidden_ok)} of {len(hidden_ok)} hidden tests failed"
            feedback = (
                f"{feedback} ({failed})"
                if feedback
                else f"{failed}: their inputs are not shown; make the function correct for "
                "every input the task describes, not only for the shown ones"
            )
        return Verdict(
            score=sum(every) / len(every),
            passed=passed,
            details={
                "tests_passed": sum(ok),
                "tests": len(ok),
                "hidden_passed": sum(hidden_ok),
                "hidden_tests": len(hidden_ok),
                "timed_out": result.timed_out,
                "crashed": result.crashed,
                "by_type": {task.tags[0]: passed},
            },
            feedback=feedback,
        )
