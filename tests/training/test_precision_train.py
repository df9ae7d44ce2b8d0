"""bf16 mixed precision through the real trainer: the same DPO batch agrees with float32 within
a stated tolerance (a whole tiny run in bf16: test_train_variants.py's sft-bf16)."""

from __future__ import annotations

import math

import pytest

from evoforge.config import load_config
from evoforge.training.settings import TrainSettings
from evoforge.training.trainer import Trainer

pytestmark = pytest.mark.slow

PAIRS = [
    ("Name a colour.", "Blue is a colour.", "I like turtles, everywhere, always."),
    ("Count to three.", "1, 2, 3.", "Seven, four, nine, and more."),
]


def _policy(tiny_path: str, out) -> str:
    """The tiny model with seeded noise on every weight: policy and reference then differ, so
    the DPO log-ratios are not trivially zero."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_path, dtype=torch.float32)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.02)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_path).save_pretrained(out)
    return str(out)


def test_dpo_step_in_bf16_agrees_with_fp32(tiny_path, tmp_path):
    policy = _policy(tiny_path, tmp_path / "policy")
    pairs = [
        {"prompt": [{"role": "user", "content": p}], "chosen": c, "rejected": r}
        for p, c, r in PAIRS
    ]
    first = {}
    for precision in ("fp32", "bf16"):
        settings = TrainSettings.from_config(
            load_config(
                None,
                [f"train.precision={precision}", "train.batch_size=2", "train.checkpoint_steps=0"],
            )
        )
        m = Trainer(threads=0).train(
            "dpo", policy, str(tmp_path / precision), pairs, settings, ref_path=tiny_path
        )
        assert m["precision"] == precision and m["steps"] == 1
        first[precision] = m["log"][0]  # logged from step 1's forward, before any update
    f, b = first["fp32"], first["bf16"]
    margin = f["rewards/margins"]
    assert abs(margin) > 1e-3, "policy and reference should differ"
    assert b["logps/chosen"] != f["logps/chosen"], "bf16 did not change the arithmetic"
    # Sequence log-probs (about -100 nats over a 49k vocabulary): bf16 matmuls with float32
    # accumulation and log_softmax moved them by 0.005 nats when measured; allowed 0.1%.
    for key in ("logps/chosen", "logps/rejected"):
        assert math.isclose(b[key], f[key], rel_tol=1e-3), (key, f[key], b[key])
    # The log-ratio is a small difference of large numbers: measured within 0.01 nats of fp32
    # (rewards are beta=0.1 times it); allowed 0.05 nats.
    for key in ("rewards/chosen", "rewards/rejected", "rewards/margins"):
        assert abs(b[key] - f[key]) <= 0.1 * 0.05, (key, f[key], b[key])
    assert abs(b["loss"] - f["loss"]) <= 0.01 * max(1.0, abs(f["loss"])), (f["loss"], b["loss"])
