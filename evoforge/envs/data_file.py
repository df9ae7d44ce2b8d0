"""``env=file:PATH``: tasks from a local jsonl, csv or parquet file (read through ``datasets``).

The reward is a function named ``module:attr`` in config (``data.reward``), or exact match on the
answer column. Every fifth row (by a stable hash of its position) is heldout, so the splits never
overlap.
"""

from __future__ import annotations

import math
import random
import zlib
from pathlib import Path
from typing import Any

from evoforge.envs.base import Task, Verdict, check_split
from evoforge.envs.reasoning_gym import extract_tagged
from evoforge.errors import EvoforgeError
from evoforge.plugins import load_attr

PREFIX = "file:"


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
        self.name = f"{PREFIX}{p.name}"
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
