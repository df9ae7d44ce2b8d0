"""``instructions``: verifiable instruction following, generated offline from a seed (IFEval-like).

A task is a base request from a shipped list plus 1 to 3 compatible constraints, each in one of
several phrasings, in a varying order and layout. Train and heldout draw their requests from
disjoint parts of the list (every fifth request is heldout). Four fifths of heldout tasks phrase
every constraint with wordings that no train task uses (group "unseen"); the rest use train
wordings (group "seen"). A gain on unseen phrasings is a gain in following instructions, not in
recognising our wording of them.

For guided exploration a task also gives a ``hint`` (how to meet each constraint, hints.py) and,
when a constraint fixes how the answer starts, a ``response_prefix``.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from evoforge.envs.base import Task, Verdict, check_split, item_rng
from evoforge.envs.instructions import hints
from evoforge.envs.instructions.constraints import BY_ID, CONSTRAINTS, check, compatible

NUM_CONSTRAINTS_WEIGHTS = (0.5, 0.35, 0.15)  # 1, 2 or 3 constraints
SEEN_EVERY = 5
"""Heldout task i is in the "seen" group when i % SEEN_EVERY == 0, else "unseen"."""


def layout(g, request: str, parts: list[str]) -> str:
    """The request and its constraint texts in one of several orders and joinings."""
    kind = g.randrange(4)
    if kind == 0:
        return " ".join([request, *parts])
    if kind == 1:
        return " ".join([*parts, request])
    if kind == 2:
        return request + "\n\nRequirements:\n" + "\n".join(f"- {x}" for x in parts)
    return request + "\n" + "\n".join(parts)


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
        group = "unseen" if split == "heldout" and index % SEEN_EVERY else "seen"
        specs = []
        for c in chosen:
            params = c.draw(g, request)
            pool = c.unseen() if group == "unseen" else c.seen()
            phrasing = c.phrasings.index(g.choice(pool))
            specs.append({"type": c.id, "params": params, "phrasing": phrasing})
        parts = [BY_ID[s["type"]].describe(s["params"], s["phrasing"]) for s in specs]
        return Task(
            id=f"{self.name}/{split}/{seed}/{index}",
            messages=({"role": "user", "content": layout(g, request, parts)},),
            metadata={"request": request, "constraints": specs, "group": group},
            tags=tuple(s["type"] for s in specs),
        )

    def hint(self, task: Task) -> str:
        """How to meet the task's constraints, one short clause each (envs/instructions/hints.py)."""
        return hints.hint(task.metadata["constraints"])

    def response_prefix(self, task: Task) -> str:
        """The opening a start constraint fixes (a phrase, a first word, the request, a quote)."""
        return hints.response_prefix(task.metadata["constraints"])

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
