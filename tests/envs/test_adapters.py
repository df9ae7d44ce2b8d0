import json

import pytest

from evoforge.envs import Verdict, get_env
from evoforge.envs.check import check_env
from evoforge.errors import EvoforgeError


def test_reasoning_gym_adapter():
    pytest.importorskip("reasoning_gym")
    env = get_env("reasoning-gym:basic_arithmetic")
    assert check_env(env).ok
    t = env.tasks("train", 3, 0)[1]
    assert env.verify(t, f"work...\n<answer>{t.metadata['answer']}</answer>").passed
    assert not env.verify(t, "<answer>nonsense</answer>").passed
    with pytest.raises(EvoforgeError, match="no dataset 'nope'"):
        get_env("reasoning-gym:nope")


def test_data_file_jsonl_csv_parquet(tmp_path):
    import datasets

    rows = [
        {"prompt": f"Say hi in at most {k} chars", "limit": k, "answer": "hi", "type": f"t{k % 3}"}
        for k in range(2, 42)
    ]
    jl = tmp_path / "d.jsonl"
    jl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    datasets.Dataset.from_list(rows).to_csv(str(tmp_path / "d.csv"))
    datasets.Dataset.from_list(rows).to_parquet(str(tmp_path / "d.parquet"))
    for name in ("d.jsonl", "d.csv", "d.parquet"):
        env = get_env(f"file:{tmp_path / name}")
        assert check_env(env).ok, check_env(env).problems
        t = env.tasks("train", 5, 0)[0]
        assert env.verify(t, "<answer>hi</answer>").passed and not env.verify(t, "bye").passed
    data = type(
        "D",
        (),
        {
            "reward": "tests.helpers.plugins:reward_len",
            "prompt_field": "prompt",
            "answer_field": "answer",
            "pass_threshold": 1.0,
        },
    )()
    env = get_env(f"file:{jl}", data)
    t = env.tasks("heldout", 3, 0)[0]
    assert isinstance(env.verify(t, "x"), Verdict) and env.verify(t, "x").passed
    assert not env.verify(t, "x" * 100).passed


def test_data_file_errors(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"prompt": "\xff\xfe"}\n')
    with pytest.raises(EvoforgeError, match="not UTF-8|could not be read"):
        get_env(f"file:{bad}")
    with pytest.raises(EvoforgeError, match="not found"):
        get_env(f"file:{tmp_path / 'missing.jsonl'}")
    nocol = tmp_path / "n.jsonl"
    nocol.write_text('{"question": "x"}\n')
    with pytest.raises(EvoforgeError, match="no column 'prompt'"):
        get_env(f"file:{nocol}")
