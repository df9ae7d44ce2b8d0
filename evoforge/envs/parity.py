"""parity: a toy task family that even a random model passes about half the time.

A response passes when its number of characters is even; feedback says how to fix it. With the
`tiny` model (random weights) every node of a round has work, pairs included, so end-to-end tests
and the round bench exercise the whole loop in seconds. Not a skill worth learning.
"""

from __future__ import annotations

from evoforge.envs.base import Task, Verdict


class ParityEnv:
    """Responses of even length pass (smoke tests and benchmarks with the tiny random model)."""

    name = "parity"

    def tasks(self, split: str, n: int, seed: int) -> list[Task]:
        return [
            Task(
                id=f"parity/{split}/{seed}/{i}",
                messages=({"role": "user", "content": f"Say something ({split} {seed} {i})."},),
                tags=("even" if i % 2 == 0 else "odd",),
            )
            for i in range(n)
        ]

    def verify(self, task: Task, response: str) -> Verdict:
        ok = len(response) % 2 == 0
        return Verdict(
            score=float(ok),
            passed=ok,
            details={"loose": ok, "by_type": {task.tags[0]: ok}},
            feedback="" if ok else f"the response has {len(response)} characters; make it even",
        )
