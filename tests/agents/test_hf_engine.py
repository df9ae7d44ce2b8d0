"""The transformers engine on the real tiny (and default) model, in process."""

from __future__ import annotations

import shutil

import pytest

from evoforge.agents.serving.hf_engine import HFEngine
from evoforge.agents.serving.types import GenRequest, Sampling
from evoforge.errors import ModelError, PromptTooLongError
from tests.helpers.models import perturbed_copy


def req(text, i=0, **s):
    return GenRequest(
        ({"role": "user", "content": text},),
        Sampling(**({"temperature": 0.0, "max_tokens": 16} | s)),
        id=str(i),
    )


@pytest.fixture(scope="module")
def engine(tiny_path):
    return HFEngine(tiny_path, max_model_len=256, batch_size=4, threads=0, dtype="auto")


def test_generates_text_in_request_order(engine):
    reqs = [req(f"question number {i} " * (i + 1), i, max_tokens=6) for i in range(7)]
    out = engine.generate(reqs)
    assert [r.id for r in out] == [str(i) for i in range(7)]
    assert all(r.completion_tokens[0] > 0 and r.prompt_tokens > 0 for r in out)
    single = engine.generate([reqs[5]])[0]
    assert single.texts == out[5].texts  # greedy: batching does not change a result


def test_sampling_seed_reproduces_and_n(engine):
    r = req("tell me", max_tokens=8, temperature=1.0, n=3, seed=11)
    a, b = engine.generate([r])[0], engine.generate([r])[0]
    assert a.texts == b.texts and len(a.texts) == 3
    c = engine.generate([req("tell me", max_tokens=8, temperature=1.0, n=3, seed=12)])[0]
    assert c.texts != a.texts


def test_greedy_with_n_repeats_the_one_greedy_answer(engine):
    out = engine.generate([req("hi", max_tokens=5, n=3), req("yo", 1, max_tokens=5)])
    assert len(out[0].texts) == 3 and len(set(out[0].texts)) == 1 and len(out[1].texts) == 1
    assert out[0].texts[0] == engine.generate([req("hi", max_tokens=5)])[0].texts[0]


def test_stop_strings_are_cut(engine):
    out = engine.generate([req("x", max_tokens=30, temperature=1.0, seed=1)])[0].texts[0]
    if len(out) > 3:
        stop = out[2:4]
        cut = engine.generate([req("x", max_tokens=30, temperature=1.0, seed=1, stop=(stop,))])[
            0
        ].texts[0]
        assert stop not in cut


def greedy_after(engine, messages, prefix: str, max_tokens: int) -> str:
    """The reference: the model itself, greedy, after the chat template and the prefix's tokens."""
    import torch

    from evoforge.agents.serving.engine_base import prompt_ids

    ids = (
        prompt_ids(engine.tokenizer, messages)
        + engine.tokenizer(prefix, add_special_tokens=False)["input_ids"]
    )
    with torch.inference_mode():
        out = engine.model.generate(
            torch.tensor([ids]), max_new_tokens=max_tokens, do_sample=False, top_p=None, top_k=None
        )
    new = out[0, len(ids) :].tolist()
    eos = engine.tokenizer.eos_token_id
    return engine.tokenizer.decode(new[: new.index(eos)] if eos in new else new)


def test_a_forced_prefix_opens_the_reply_and_only_the_continuation_comes_back(engine):
    from dataclasses import replace

    plain = req("tell me a story about a cat", max_tokens=6)
    forced = replace(plain, prefix="Once upon a", id="f")
    out = engine.generate([req("another question", 1), forced, plain, req("x", 2, max_tokens=3)])
    got, alone = out[1], out[2]
    n_prefix = len(engine.tokenizer("Once upon a", add_special_tokens=False)["input_ids"])
    assert got.prompt_tokens == alone.prompt_tokens + n_prefix and got.completion_tokens[0] <= 6
    assert got.texts[0] == greedy_after(engine, plain.messages, "Once upon a", 6)
    assert got.texts[0] != alone.texts[0]
    assert engine.generate([forced])[0].texts == got.texts  # batched with others or alone


def test_prompt_too_long(engine):
    with pytest.raises(PromptTooLongError, match="context window is 256"):
        engine.generate([req("word " * 400)])


def test_load_weights_in_place(engine, tiny_path, tmp_path):
    probe = [req("hello there", max_tokens=12)]
    before = engine.generate(probe)[0].texts
    ident = engine.info().engine_id
    model_obj = id(engine.model)
    engine.load_weights(perturbed_copy(tiny_path, tmp_path / "p"))
    changed = engine.generate(probe)[0].texts
    engine.load_weights(tiny_path)
    restored = engine.generate(probe)[0].texts
    assert changed != before and restored == before
    assert engine.info().engine_id == ident and id(engine.model) == model_obj
    assert engine.info().weights_version == 2


def test_load_weights_reads_every_tensor_exactly_and_converts_dtypes(engine, tiny_path, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    want = load_file(perturbed_copy(tiny_path, tmp_path / "p") + "/model.safetensors")
    engine.load_weights(str(tmp_path / "p"))
    params = dict(engine.model.named_parameters())
    assert all(torch.equal(params[k], v) for k, v in want.items())  # byte-exact in place
    half = tmp_path / "bf16"
    shutil.copytree(tiny_path, half)
    save_file(
        {k: v.to(torch.bfloat16) for k, v in want.items()},
        f"{half}/model.safetensors",
        metadata={"format": "pt"},
    )
    engine.load_weights(str(half))  # bf16 file into float32 parameters: converted on the way
    assert all(torch.equal(params[k], v.to(torch.bfloat16).float()) for k, v in want.items())
    broken = tmp_path / "broken"
    shutil.copytree(tiny_path, broken)
    data = (broken / "model.safetensors").read_bytes()
    (broken / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="ends early"):
        engine.load_weights(str(broken))
    assert all(torch.equal(params[k], v.to(torch.bfloat16).float()) for k, v in want.items())
    engine.load_weights(tiny_path)


@pytest.mark.slow
def test_default_model_answers(default_path):
    e = HFEngine(default_path, max_model_len=1024, batch_size=64, threads=0, dtype="auto")
    out = e.generate([req("What is the capital of France? Answer in one word.", max_tokens=8)])[0]
    assert "paris" in out.texts[0].lower()
