"""A test environment a random tiny model passes about half the time, so rounds form pairs.

A response passes when its number of characters is even. Feedback says how to fix it.
"""

from __future__ import annotations

from evoforge.envs import Task, Verdict


class ParityEnv:
    """Responses of even length pass (for end-to-end tests with the tiny random model)."""

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
