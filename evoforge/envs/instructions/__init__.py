"""``instructions``: verifiable instruction following, generated offline from a seed (IFEval-like).

A task is a base request from a shipped list plus 1 to 3 compatible constraints. Train and
heldout draw their requests from disjoint parts of the list (every fifth request is heldout),
so the two splits never share a task and heldout also measures transfer to unseen requests.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from evoforge.envs.base import Task, Verdict, check_split, item_rng
from evoforge.envs.instructions.constraints import BY_ID, CONSTRAINTS, check, compatible

NUM_CONSTRAINTS_WEIGHTS = (0.5, 0.35, 0.15)  # 1, 2 or 3 constraints


@cache
def requests(split: str) -> tuple[str, ...]:
    lines = [
        ln.strip()
        for ln in files(__package__).joinpath("requests.txt").read_text("utf-8").splitlines()
    ]
    lines = [ln for ln in lines if ln]
    return tuple(r for i, r in enumerate(lines) if (i % 5 == 0) == (split == "heldout"))


class InstructionsEnv:
    """Instruction following with 1-3 verifiable constraints per request (27 constraint types)."""

    name = "instructions"

    def tasks(self, split: str, n: int, seed: int) -> list[Task]:
        check_split(self.name, split)
        return [self.task(split, seed, i) for i in range(n)]

    def task(self, split: str, seed: int, index: int) -> Task:
        """Task ``index`` of a split; depends only on (split, seed, index)."""
        g = item_rng(self.name, split, seed, index)
        request = g.choice(requests(split))
        k = g.choices((1, 2, 3), weights=NUM_CONSTRAINTS_WEIGHTS)[0]
        chosen = []
        for c in g.sample(CONSTRAINTS, len(CONSTRAINTS)):
            if all(compatible(c, o) for o in chosen):
                chosen.append(c)
            if len(chosen) == k:
                break
        specs = [{"type": c.id, "params": c.draw(g, request)} for c in chosen]
        text = " ".join([request] + [BY_ID[s["type"]].describe(s["params"]) for s in specs])
        return Task(
            id=f"{self.name}/{split}/{seed}/{index}",
            messages=({"role": "user", "content": text},),
            metadata={"request": request, "constraints": specs},
            tags=tuple(s["type"] for s in specs),
        )

    def verify(self, task: Task, response: str) -> Verdict:
        strict, loose, feedback = {}, {}, []
        for spec in task.metadata["constraints"]:
            s, lo, fb = check(spec["type"], spec["params"], response)
            strict[spec["type"]], loose[spec["type"]] = s, lo
            if fb:
                feedback.append(fb)
        passed = all(strict.values())
        return Verdict(
            score=sum(strict.values()) / max(1, len(strict)),
            passed=passed,
            details={"loose": all(loose.values()), "by_type": strict, "by_type_loose": loose},
            feedback="; ".join(feedback),
        )
