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


def _read_rows(p: Path, path: str, kind: str) -> list[dict[str, Any]]:
    """Every row of the file, read with ``datasets`` into a throwaway cache (nothing is left in
    the user's cache or the temporary directory)."""
    import tempfile

    import datasets

    datasets.disable_progress_bars()
    if p.stat().st_size == 0:
        raise EvoforgeError(f"data file '{path}' is empty; it needs a header (csv) and rows")
    verbosity = datasets.logging.get_verbosity()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)  # its own log line repeats ours
    with tempfile.TemporaryDirectory(prefix="evoforge-data-") as cache:
        try:
            return datasets.load_dataset(
                kind, data_files=str(p), split="train", cache_dir=cache
            ).to_list()
        except Exception as e:
            chain = [e]
            while chain[-1].__cause__ or chain[-1].__context__:
                chain.append(chain[-1].__cause__ or chain[-1].__context__)
                if len(chain) > 8:
                    break
            if any(isinstance(c, UnicodeDecodeError) for c in chain):
                raise EvoforgeError(
                    f"data file '{path}' is not UTF-8 text; re-encode it as UTF-8"
                ) from None
            if any("corresponds to no data" in str(c) for c in chain):
                raise EvoforgeError(f"data file '{path}' has no rows") from None
            cause = next((c for c in chain if type(c).__name__ != "DatasetGenerationError"), e)
            why = " ".join(f"{type(cause).__name__}: {cause}".split())[:200]
            raise EvoforgeError(
                f"data file '{path}' could not be read as {p.suffix[1:]} ({why}); fix the file"
            ) from None
        finally:
            datasets.logging.set_verbosity(verbosity)


def jsonable(value: Any, where: str) -> Any:
    """``value`` as run files can store it: dates and times as ISO text, decimals as numbers,
    NaN as None (a missing value); anything else JSON cannot hold is an error naming ``where``."""
    import datetime
    import decimal

    if isinstance(value, datetime.date | datetime.time | datetime.timedelta):
        return str(value) if isinstance(value, datetime.timedelta) else value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [jsonable(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v, where) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise EvoforgeError(
        f"{where} holds a {type(value).__name__} value, which run files cannot store as JSON; "
        "convert the column to text or numbers"
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
        self.name = f"{PREFIX}{p.name}"
        kinds = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
        if not p.is_file():
            raise EvoforgeError(
                f"data file '{path}' not found; pass env=file:PATH to a jsonl, csv or parquet file"
            )
        if p.suffix not in kinds:
            raise EvoforgeError(f"data file '{path}' must end in .jsonl, .csv or .parquet")
        rows = _read_rows(p, path, kinds[p.suffix])
        if not rows:
            raise EvoforgeError(f"data file '{path}' has no rows")
        if prompt_field not in rows[0]:
            raise EvoforgeError(
                f"data file '{path}' has no column '{prompt_field}' (columns: "
                f"{', '.join(rows[0])}); set data.prompt_field"
            )
        self.prompt_field, self.answer_field = prompt_field, answer_field
        self.pass_threshold = pass_threshold
        self.reward = None
        if reward:
            self.reward = load_attr(reward, "reward function")
        elif answer_field not in rows[0]:
            raise EvoforgeError(
                f"data file '{path}' has no column '{answer_field}' and no data.reward is set; "
                "add an answer column or name a reward function module:attr"
            )
        self.rows = self._checked_rows(path, rows)
        self.split_rows = {"train": [], "heldout": []}
        for i, _ in enumerate(rows):
            heldout = zlib.crc32(f"row{i}".encode()) % 5 == 0
            self.split_rows["heldout" if heldout else "train"].append(i)
        for split, idx in self.split_rows.items():
            if not idx:
                raise EvoforgeError(
                    f"data file '{path}' has {len(rows)} row(s) and none falls in the {split} split "
                    "(every fifth row, by a stable hash of its position, is heldout); add rows"
                )

    def _checked_rows(self, path: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Rows with a usable prompt (and answer, for exact match), no prompt twice, every value
        storable as JSON. Row numbers in errors count from 1, the header not included."""
        out, first_seen = [], {}
        for i, row in enumerate(rows, 1):
            prompt = row.get(self.prompt_field)
            if isinstance(prompt, int | float) and not isinstance(prompt, bool):
                prompt = str(prompt)
            if not isinstance(prompt, str) or not prompt.strip():
                raise EvoforgeError(
                    f"data file '{path}' row {i}: column '{self.prompt_field}' holds "
                    f"{prompt!r}; every row needs a prompt as text"
                )
            if prompt in first_seen:
                raise EvoforgeError(
                    f"data file '{path}' rows {first_seen[prompt]} and {i} have the same prompt; "
                    "remove the duplicate (it could land in both train and heldout)"
                )
            first_seen[prompt] = i
            if self.reward is None and row.get(self.answer_field) is None:
                raise EvoforgeError(
                    f"data file '{path}' row {i} has no value in column '{self.answer_field}'"
                )
            out.append(
                {k: jsonable(v, f"data file '{path}' row {i} column '{k}'") for k, v in row.items()}
                | {self.prompt_field: prompt}
            )
        return out

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
