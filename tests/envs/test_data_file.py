"""env=file:PATH: every way a data file can be wrong is a one-line error naming the file (and the
row and column where there is one), when the environment is built, before any run starts."""

from __future__ import annotations

import datetime
import decimal
import json
import os
import tempfile

import pytest

from evoforge.envs import get_env
from evoforge.envs.check import check_env
from evoforge.envs.data_file import DataFileEnv
from evoforge.errors import EvoforgeError


def rows(n: int = 20, **extra) -> list[dict]:
    return [{"prompt": f"question {i}", "answer": str(i), **extra} for i in range(n)]


def jsonl(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


CASES = {
    "empty file": ("e.jsonl", "", "is empty"),
    "blank lines only": ("b.jsonl", "\n\n\n", "has no rows"),
    "csv header only": ("h.csv", "prompt,answer\n", "has no rows"),
    "empty csv": ("e.csv", "", "is empty"),
    "broken json line": (
        "m.jsonl",
        '{"prompt": "a", "answer": "1"}\n{"prompt": "b", "answer": \n',
        "could not be read as jsonl (ArrowInvalid: JSON parse error",
    ),
    "json array line": ("a.jsonl", '{"prompt": "a", "answer": "1"}\n[1, 2]\n', "could not be read"),
    "unterminated csv quote": ("q.csv", 'prompt,answer\n"a,1\n', "could not be read as csv"),
    "not a parquet file": ("p.parquet", "PAR1 not really", "could not be read as parquet"),
    "null prompt": (
        "n.jsonl",
        '{"prompt": null, "answer": "1"}\n',
        "row 1: column 'prompt' holds None",
    ),
    "list prompt": ("l.jsonl", '{"prompt": ["x"], "answer": "1"}\n', "holds ['x']"),
    "blank prompt": ("w.jsonl", '{"prompt": "  ", "answer": "1"}\n', "holds '  '"),
    "ragged csv row": ("r.csv", "prompt,answer\na,1\n,2\n", "row 2: column 'prompt' holds None"),
    "duplicate prompts": (
        "d.jsonl",
        '{"prompt": "same", "answer": "1"}\n{"prompt": "other", "answer": "2"}\n'
        '{"prompt": "same", "answer": "3"}\n',
        "rows 1 and 3 have the same prompt",
    ),
    "missing answer": (
        "x.jsonl",
        '{"prompt": "a", "answer": "1"}\n{"prompt": "b"}\n',
        "row 2 has no value in column 'answer'",
    ),
    "not utf-8": ("u.jsonl", b'{"prompt": "\xff\xfe", "answer": "1"}\n', "not UTF-8"),
    "too few rows for both splits": (
        "f.jsonl",
        '{"prompt": "a", "answer": "1"}\n',
        "and none falls in the",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_data_files_are_one_line_errors(case, tmp_path, capfd):
    name, content, message = CASES[case]
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(EvoforgeError) as info:
        get_env(f"file:{path}")
    msg = str(info.value)
    assert message in msg and f"'{path}'" in msg and "\n" not in msg, msg
    assert "Failed to load" not in capfd.readouterr().err  # no log lines of datasets' own


def test_columns_json_cannot_hold_are_converted_or_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = 20
    table = pa.table(
        {
            "prompt": [f"p{i}" for i in range(n)],
            "answer": [str(i) for i in range(n)],
            "when": [datetime.datetime(2020, 1, 2, 3, 4, 5)] * n,
            "day": [datetime.date(2021, 5, 6)] * n,
            "price": pa.array([decimal.Decimal("1.25")] * n, pa.decimal128(10, 2)),
            "score": [float("nan")] * n,
            "nested": [{"a": [1.5, float("inf")]}] * n,
        }
    )
    pq.write_table(table, tmp_path / "typed.parquet")
    env = get_env(f"file:{tmp_path / 'typed.parquet'}")
    assert check_env(env).ok, check_env(env).problems
    meta = env.tasks("train", 1, 0)[0].metadata
    assert meta["when"] == "2020-01-02T03:04:05" and meta["day"] == "2021-05-06"
    assert meta["price"] == 1.25 and meta["score"] is None and meta["nested"] == {"a": [1.5, None]}

    pq.write_table(
        pa.table(
            {"prompt": [f"p{i}" for i in range(n)], "answer": ["a"] * n, "blob": [b"\x00"] * n}
        ),
        tmp_path / "blob.parquet",
    )
    with pytest.raises(EvoforgeError, match="row 1 column 'blob' holds a bytes value"):
        get_env(f"file:{tmp_path / 'blob.parquet'}")


def test_numbers_as_prompts_are_text_and_reading_leaves_no_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    before = set(os.listdir(tempfile.gettempdir()))
    path = tmp_path / "n.jsonl"
    path.write_text(
        "".join(json.dumps({"prompt": 1000 + i, "answer": i}) + "\n" for i in range(20))
    )
    env = DataFileEnv(str(path))
    assert isinstance(env.tasks("train", 1, 0)[0].messages[0]["content"], str)
    assert not cache.exists() or not any(cache.rglob("*.arrow"))
    left = {
        p for p in set(os.listdir(tempfile.gettempdir())) - before if p.startswith("evoforge-data")
    }
    assert left == set()
