"""The dense CPU LM head gives what TRL's fused head gives: per-token fields, loss, gradients."""

from __future__ import annotations

import pytest


def _patched(tiny_path, dense: bool, temperature: float = 1.0):
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    from evoforge.training.lm_head import use_dense_lm_head

    model = AutoModelForCausalLM.from_pretrained(tiny_path, dtype=torch.float32)
    add_fused_lm_head(
        model,
        temperature=temperature,
        outputs=("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1"),
    )
    if dense:
        assert use_dense_lm_head(model, temperature)
    return model


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_dense_head_matches_trl_fused_head(tiny_path, temperature):
    import torch

    torch.manual_seed(0)
    ids = torch.randint(0, 1000, (3, 17))
    labels = ids.clone()
    labels[:, :6] = -100  # prompt positions carry no label
    labels[2, 12:] = -100  # padding
    outs, grads = [], []
    for dense in (False, True):
        model = _patched(tiny_path, dense, temperature)
        out = model(input_ids=ids, labels=labels, fused_lm_head=True)
        (out.loss + out.entropy.sum() * 0.01).backward()
        outs.append(out)
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
    trl, ours = outs
    for field in ("log_probs", "entropy", "log_sum_sq_probs", "mean_logits"):
        torch.testing.assert_close(getattr(ours, field), getattr(trl, field), rtol=1e-4, atol=1e-4)
    assert torch.equal(ours.is_top1, trl.is_top1) and torch.equal(ours.label_mask, trl.label_mask)
    torch.testing.assert_close(ours.loss, trl.loss, rtol=1e-5, atol=1e-5)
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, rtol=1e-3, atol=1e-5)


def test_plain_forward_and_generation_are_untouched(tiny_path):
    import torch

    ids = torch.randint(0, 1000, (1, 9))
    plain = _patched(tiny_path, False)(input_ids=ids).logits
    torch.testing.assert_close(_patched(tiny_path, True)(input_ids=ids).logits, plain)
