"""A complete custom environment: acronyms. Plug it in with env=examples.custom_env:AcronymEnv.

Each task asks for the acronym of a made-up organisation name; the verifier checks the answer
and says what is wrong in words the refiner can use.
"""

from __future__ import annotations

import random
import re

from evoforge.envs import Task, Verdict

WORDS = [
    "global",
    "open",
    "river",
    "data",
    "north",
    "solar",
    "union",
    "civic",
    "rapid",
    "vector",
    "maple",
    "harbor",
    "quantum",
    "public",
    "urban",
    "signal",
    "forest",
    "metro",
    "lunar",
    "prime",
]


class AcronymEnv:
    """Acronyms of made-up organisation names (a custom-environment example)."""

    name = "acronyms"

    def tasks(self, split: str, n: int, seed: int) -> list[Task]:
        out = []
        for i in range(n):
            rng = random.Random(
                f"acronyms/{split}/{seed}/{i}"
            )  # each task depends on (split, seed, i) only
            words = rng.sample(
                WORDS, rng.randint(3, 5) if split == "train" else 6
            )  # heldout: longer names
            name = " ".join(w.capitalize() for w in words)
            out.append(
                Task(
                    id=f"acronyms/{split}/{seed}/{i}",
                    messages=(
                        {
                            "role": "user",
                            "content": f"What is the acronym of '{name}'? "
                            "Answer with the capital letters only.",
                        },
                    ),
                    metadata={"answer": "".join(w[0].upper() for w in words)},
                    tags=(f"{len(words)}-words",),
                )
            )
        return out

    def verify(self, task: Task, response: str) -> Verdict:
        want = task.metadata["answer"]
        got = re.findall(r"\b[A-Z]{2,}\b", response)
        ok = bool(got) and got[-1] == want
        feedback = (
            ""
            if ok
            else (
                f"answered {got[-1]}; the acronym has {len(want)} letters, one per word"
                if got
                else "no acronym in capital letters found; answer like ABC"
            )
        )
        return Verdict(score=float(ok), passed=ok, feedback=feedback)
