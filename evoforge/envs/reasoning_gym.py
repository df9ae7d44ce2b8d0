"""``env=reasoning-gym:NAME``: a reasoning-gym dataset as an environment (optional extra).

Its generators run offline; item i of a split depends only on (split, seed, i), as reasoning-gym's
own items do. Answers go between <answer> tags.
"""

from __future__ import annotations

import re
import zlib
from functools import lru_cache

from evoforge.envs.base import Task, Verdict, check_split
from evoforge.errors import EvoforgeError

PREFIX = "reasoning-gym:"
ANSWER_TAG = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.DOTALL | re.IGNORECASE)


def extract_tagged(response: str) -> str:
    """The text inside the last <answer> tag, else the last non-empty line."""
    found = ANSWER_TAG.findall(response or "")
    if found:
        return found[-1].strip()
    lines = [ln.strip() for ln in (response or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


class ReasoningGymEnv:
    """A reasoning-gym dataset as an environment (answers in <answer> tags)."""

    def __init__(self, dataset: str) -> None:
        try:
            import reasoning_gym
        except ImportError:
            raise EvoforgeError(
                "env=reasoning-gym:... needs the package reasoning-gym; install it with "
                "`.venv/bin/pip install reasoning-gym`"
            ) from None
        if dataset not in reasoning_gym.factory.DATASETS:
            raise EvoforgeError(
                f"reasoning-gym has no dataset '{dataset}'; see reasoning_gym.factory.DATASETS"
            )
        self._rg = reasoning_gym
        self.dataset = dataset
        self.name = f"{PREFIX}{dataset}"

    def _seed(self, split: str, seed: int) -> int:
        # train and heldout use different generator seeds; check_env verifies they do not collide
        return zlib.crc32(f"{self.dataset}/{split}/{seed}".encode()) & 0x7FFFFFFF

    @lru_cache(maxsize=8)  # noqa: B019 - a few datasets per process, kept for verify()
    def _data(self, split: str, seed: int, size: int):
        return self._rg.create_dataset(self.dataset, size=size, seed=self._seed(split, seed))

    def tasks(self, split: str, n: int, seed: int) -> list[Task]:
        check_split(self.name, split)
        ds = self._data(split, seed, max(n, 1))
        out = []
        for i in range(n):
            entry = ds[i]
            q = f"{entry['question']}\nPut your final answer between <answer> and </answer>."
            out.append(
                Task(
                    id=f"{self.name}/{split}/{seed}/{i}",
                    messages=({"role": "user", "content": q},),
                    metadata={
                        "split": split,
                        "seed": seed,
                        "index": i,
                        "size": max(n, 1),
                        "answer": str(entry["answer"]),
                    },
                    tags=(self.dataset,),
                )
            )
        return out

    def verify(self, task: Task, response: str) -> Verdict:
        m = task.metadata
        entry = self._data(m["split"], m["seed"], m["size"])[m["index"]]
        answer = extract_tagged(response)
        score = float(
            self._data(m["split"], m["seed"], m["size"]).score_answer(answer=answer, entry=entry)
        )
        ok = score >= 1.0
        return Verdict(
            score=score,
            passed=ok,
            details={"loose": ok, "by_type": {self.dataset: ok}},
            feedback=""
            if ok
            else f"the answer '{answer[:80]}' is not correct; check the reasoning "
            "and give the final answer between <answer> and </answer>",
        )
