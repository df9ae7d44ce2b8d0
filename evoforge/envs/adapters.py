"""Environments from elsewhere: reasoning-gym generators, and local data files.

- ``env=reasoning-gym:NAME`` wraps a reasoning-gym dataset (optional extra; its generators run
  offline). Item i of a split depends only on (split, seed, i), as reasoning-gym's own items do.
- ``env=file:PATH`` reads a jsonl, csv or parquet file through ``datasets``; the reward is a
  function named ``module:attr`` in config (``data.reward``), or exact match on the answer column.
  Every fifth row (by a stable hash of its position) is heldout, so the splits never overlap.
"""

from __future__ import annotations

import math
import random
import re
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from evoforge.envs.base import Task, Verdict, check_split
from evoforge.errors import EvoforgeError

RG_PREFIX = "reasoning-gym:"
FILE_PREFIX = "file:"
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
        self.name = f"{RG_PREFIX}{dataset}"

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


class DataFileEnv:
    """Tasks from a local jsonl/csv/parquet file; reward from ``module:attr`` or exact match."""

    def __init__(
        self,
        path: str,
        reward: str = "",
        prompt_field: str = "prompt",
        answer_field: str = "answer",
        pass_threshold: float = 1.0,
    ) -> None:
        p = Path(path).expanduser()
        self.name = f"{FILE_PREFIX}{p.name}"
        kinds = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
        if not p.is_file():
            raise EvoforgeError(
                f"data file '{path}' not found; pass env=file:PATH to a jsonl, csv or parquet file"
            )
        if p.suffix not in kinds:
            raise EvoforgeError(f"data file '{path}' must end in .jsonl, .csv or .parquet")
        try:
            import datasets

            datasets.disable_progress_bars()
            rows = datasets.load_dataset(
                kinds[p.suffix], data_files=str(p), split="train"
            ).to_list()
        except UnicodeDecodeError as e:
            raise EvoforgeError(
                f"data file '{path}' is not UTF-8 text (byte {e.start}); re-encode it as UTF-8"
            ) from None
        except Exception as e:
            cause = e.__cause__ or e.__context__ or e
            if isinstance(cause, UnicodeDecodeError):
                raise EvoforgeError(
                    f"data file '{path}' is not UTF-8 text; re-encode it as UTF-8"
                ) from None
            raise EvoforgeError(
                f"data file '{path}' could not be read ({type(e).__name__}: {str(e)[:160]})"
            ) from None
        if not rows:
            raise EvoforgeError(f"data file '{path}' has no rows")
        if prompt_field not in rows[0]:
            raise EvoforgeError(
                f"data file '{path}' has no column '{prompt_field}' (columns: "
                f"{', '.join(rows[0])}); set data.prompt_field"
            )
        self.rows, self.prompt_field, self.answer_field = rows, prompt_field, answer_field
        self.pass_threshold = pass_threshold
        self.reward = None
        if reward:
            from evoforge.envs.registry import load_attr

            self.reward = load_attr(reward, "reward function")
        elif answer_field not in rows[0]:
            raise EvoforgeError(
                f"data file '{path}' has no column '{answer_field}' and no data.reward is set; "
                "add an answer column or name a reward function module:attr"
            )
        self.split_rows = {"train": [], "heldout": []}
        for i, _ in enumerate(rows):
            heldout = zlib.crc32(f"row{i}".encode()) % 5 == 0
            self.split_rows["heldout" if heldout else "train"].append(i)

    def tasks(self, split: str, n: int, seed: int) -> list[Task]:
        check_split(self.name, split)
        order = list(self.split_rows[split])
        random.Random(f"{self.name}/{split}/{seed}").shuffle(order)
        return [self._task(split, i) for i in order[:n]]

    def _task(self, split: str, i: int) -> Task:
        row = self.rows[i]
        meta: dict[str, Any] = {k: v for k, v in row.items() if k != self.prompt_field}
        return Task(
            id=f"{self.name}/{i}",
            messages=({"role": "user", "content": str(row[self.prompt_field])},),
            metadata=meta,
            tags=(str(row.get("type", "all")),),
        )

    def verify(self, task: Task, response: str) -> Verdict:
        if self.reward is None:
            want = str(task.metadata.get(self.answer_field, "")).strip()
            got = extract_tagged(response)
            ok = got.strip().lower() == want.lower()
            return Verdict(
                score=float(ok),
                passed=ok,
                feedback="" if ok else f"'{got[:80]}' is not the expected answer",
            )
        out = self.reward(task, response)
        if isinstance(out, Verdict):
            return out
        if not isinstance(out, int | float) or isinstance(out, bool) or math.isnan(out):
            raise EvoforgeError(
                f"reward function of {self.name} returned {out!r}; it must return a number or a Verdict"
            )
        return Verdict(score=float(out), passed=float(out) >= self.pass_threshold)
