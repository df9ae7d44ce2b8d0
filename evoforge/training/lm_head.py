"""A dense LM head for TRL's trainers on CPU, scoring only the tokens that have labels.

TRL 1.16 patches every trainer's model with a fused, chunked LM head that returns per-token
log-probs without materializing (tokens x vocab) logits. On a GPU it runs Triton kernels on the
labelled positions only. Without Triton (CPU) it folds each tile with a chain of torch ops, scores
*every* position, prompt included, and recomputes the tiles in backward. For a small model whose
49k-token vocabulary is most of the compute, that tripled a DPO step against a bare training
step (`evoforge bench train --model tiny`; figures in docs/benchmarks.md). On CPU we swap in this head: the labelled positions only,
one matmul, one log_softmax, the metrics TRL logs computed from the same logits without gradient.
Memory is (labelled tokens x vocab) floats, which CPU training of small models affords.
"""

from __future__ import annotations

import types
from typing import Any

# Config fields by which some model families scale or cap their logits; this head handles none
# of them, so such models keep TRL's head.
_LOGIT_TRANSFORMS = (
    "final_logit_softcapping",
    "logit_scale",
    "output_multiplier",
    "lm_head_multiplier",
    "logits_scaling",
)


def use_dense_lm_head(model: Any, temperature: float = 1.0) -> bool:
    """Replace TRL's fused head on ``model`` (already patched by a TRL trainer) with the dense one.

    Returns False, leaving the model as it is, when the model scales its logits in a way this
    head does not reproduce."""
    import torch
    from trl.trainer.utils import FusedCausalLMOutput

    cfg = model.config.get_text_config()
    if any(getattr(cfg, name, None) not in (None, 1.0) for name in _LOGIT_TRANSFORMS):
        return False
    trl_forward = model.forward

    def forward(self, *args, fused_lm_head=False, labels=None, shift_labels=None, **kwargs):
        if not fused_lm_head or kwargs.get("output_router_logits"):  # MoE aux loss: TRL's head
            return trl_forward(
                *args,
                fused_lm_head=fused_lm_head,
                labels=labels,
                shift_labels=shift_labels,
                **kwargs,
            )
        denominator = kwargs.pop("num_items_in_batch", None)
        kwargs["use_cache"] = False
        hidden = self.base_model(*args, **kwargs).last_hidden_state
        if shift_labels is None:
            hidden, labels = hidden[:, :-1], labels[:, 1:]
        else:
            labels = shift_labels
        mask = labels != -100
        head = self.get_output_embeddings()
        logits = head(hidden[mask]).float() / temperature
        logp = logits.log_softmax(-1)
        target = labels[mask]
        chosen = logp.gather(-1, target[:, None]).squeeze(-1)
        fields = {"entropy": -(logp.exp() * logp).sum(-1)}  # with gradient: GRPO's entropy bonus
        with torch.no_grad():
            fields |= {
                "log_sum_sq_probs": torch.logsumexp(2 * logp, -1),
                "mean_logits": logits.mean(-1),
                "is_top1": logits.argmax(-1) == target,
            }

        def spread(values):
            return values.new_zeros(mask.shape).masked_scatter(mask, values)

        log_probs = spread(chosen)
        if denominator is None:
            denominator = mask.sum().clamp(min=1)
        return FusedCausalLMOutput(
            loss=-chosen.sum() / denominator,
            log_probs=log_probs,
            label_mask=mask,
            **{k: spread(v) for k, v in fields.items()},
        )

    model.forward = types.MethodType(forward, model)
    return True
