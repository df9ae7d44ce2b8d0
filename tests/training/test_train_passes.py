"""No wasted passes: rows batched by length, and the dense CPU LM head in place before TRL's
constructor runs the DPO reference pass."""

from __future__ import annotations

from evoforge.training.trl_adapters import length_grouped


def _row(i: int, words: int) -> dict:
    return {
        "prompt": [{"role": "user", "content": "q"}],
        "chosen": [{"role": "assistant", "content": "w " * words}],
        "rejected": [{"role": "assistant", "content": "x"}],
        "i": i,
    }


def test_length_grouped_batches_similar_lengths_in_a_seeded_random_order():
    lengths = [3, 90, 7, 50, 1, 88, 49, 8, 2, 91, 52, 6]
    rows = [_row(i, n) for i, n in enumerate(lengths)]
    out = length_grouped(rows, 4, seed=1)
    assert sorted(r["i"] for r in out) == list(range(12))  # every row, once
    batches = [[lengths[r["i"]] for r in out[k : k + 4]] for k in range(0, 12, 4)]
    assert sorted(map(sorted, batches)) == [[1, 2, 3, 6], [7, 8, 49, 50], [52, 88, 90, 91]]
    assert out == length_grouped(rows, 4, seed=1)  # resumable: the same order again
    orders = {tuple(r["i"] for r in length_grouped(rows, 4, seed=s)) for s in range(8)}
    assert len(orders) > 1  # the batches' order is shuffled, not shortest first


def test_dense_head_is_in_place_before_the_reference_pass(tiny_path, tmp_path, monkeypatch):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOTrainer

    from evoforge.config import load_config
    from evoforge.training import lm_head
    from evoforge.training.settings import TrainSettings
    from evoforge.training.trl_adapters import build_trainer, dpo_config, dpo_rows

    events: list[str] = []
    dense = lm_head.use_dense_lm_head
    monkeypatch.setattr(
        lm_head, "use_dense_lm_head", lambda *a: events.append("dense") or dense(*a)
    )
    ref_pass = DPOTrainer.compute_ref_log_probs
    monkeypatch.setattr(
        DPOTrainer,
        "compute_ref_log_probs",
        lambda self, *a: events.append("reference") or ref_pass(self, *a),
    )
    s = TrainSettings.from_config(load_config(None, ["train.batch_size=2"]))
    cfg = dpo_config(s, str(tmp_path), cuda=False)
    assert cfg.precompute_ref_log_probs
    pairs = [{"prompt": [{"role": "user", "content": "hi"}], "chosen": "yes", "rejected": "no"}] * 2
    model = AutoModelForCausalLM.from_pretrained(tiny_path, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(tiny_path)
    build_trainer(DPOTrainer, model, cfg, dpo_rows(pairs), tok, [])
    assert events[:2] == ["dense", "reference"], events
    import trl.trainer.dpo_trainer as module
    from trl.trainer.utils import add_fused_lm_head

    assert module.add_fused_lm_head is add_fused_lm_head  # TRL's own again after construction
