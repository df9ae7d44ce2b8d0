"""No wasted passes: rows batched by length, and the dense CPU LM head in place before TRL's
constructor runs the DPO reference pass."""

from __future__ import annotations

import pytest

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


@pytest.mark.parametrize(
    ("overrides", "cuda", "world", "rows", "micro"),
    [
        ([], False, 1, 2, 1),  # DPO at 1024 tokens: a pair is 2048 tokens, one a pass
        ([], False, 1, 1, 2),  # SFT at 1024 tokens
        (["train.max_length=256"], False, 1, 2, 4),  # short rows: the whole batch
        (["train.micro_batch_size=3"], False, 1, 1, 2),  # the largest divisor of 4 up to 3
        (["train.micro_batch_size=8"], False, 1, 1, 4),  # never more than the batch
        ([], True, 1, 2, 4),  # a GPU: the whole batch
        ([], False, 1, 0, 4),  # GRPO/RLOO: one generation batch a pass
        (["train.batch_size=8", "train.max_length=512"], False, 2, 2, 2),  # 4 a worker
    ],
)
def test_a_pass_holds_what_fits_and_the_step_still_sees_the_whole_batch(
    tmp_path, overrides, cuda, world, rows, micro
):
    from evoforge.config import load_config
    from evoforge.training.settings import TrainSettings
    from evoforge.training.trl_adapters import common_args, micro_batch

    s = TrainSettings.from_config(load_config(None, overrides))
    assert micro_batch(s, cuda, world, rows) == micro
    args = common_args(s, str(tmp_path), cuda, world, rows_per_example=rows)
    assert args["per_device_train_batch_size"] == micro
    assert micro * args["gradient_accumulation_steps"] == s.batch_size // world


def test_a_trainer_killed_for_memory_is_one_line_naming_the_knobs(monkeypatch):
    """Ray's memory monitor killing the trainer reaches the user as one line with the knobs
    (a default `tools` round once died so, with a traceback)."""
    from ray.exceptions import OutOfMemoryError

    from evoforge.config import load_config
    from evoforge.training import actor as actor_mod
    from evoforge.training.settings import TrainSettings

    def killed(ref):
        raise OutOfMemoryError("1 worker(s) were killed due to the node running low on memory.")

    monkeypatch.setattr(actor_mod.cluster, "get", killed)
    trainer = actor_mod.TrainerActor("r", threads=1)
    monkeypatch.setattr(trainer, "_start", lambda: type("A", (), {"train": _Remote()})())
    s = TrainSettings.from_config(load_config(None, []))
    with pytest.raises(actor_mod.TrainerOutOfMemory) as e:
        trainer.train("round0/train", "dpo", "/m", "/tmp/out", [], s)
    said = str(e.value)
    assert "\n" not in said and said.startswith("the trainer was killed for want of memory")
    assert "train.micro_batch_size (examples a pass holds, now auto)" in said
    assert "train.max_length (now 1024)" in said

    monkeypatch.setattr(actor_mod.cluster, "get", lambda ref: (_ for _ in ()).throw(KeyError()))
    with pytest.raises(KeyError):  # anything else goes up unchanged
        trainer.train("round0/train", "dpo", "/m", "/tmp/out", [], s)


def test_a_trainer_actor_that_dies_is_one_line_naming_resume(ray_cluster, tmp_path):
    """A trainer actor gone for any other reason (killed, crashed, its cluster stopped under the
    run) ends the run with one line that says how to go on, not a Ray traceback."""
    import ray

    from evoforge.config import load_config
    from evoforge.errors import EvoforgeError
    from evoforge.training import actor as actor_mod
    from evoforge.training.settings import TrainSettings

    trainer = actor_mod.TrainerActor(f"dies-{tmp_path.name}", threads=1)
    ray.kill(trainer._start(), no_restart=True)
    s = TrainSettings.from_config(load_config(None, []))
    with pytest.raises(EvoforgeError) as e:
        trainer.train("round0/train", "dpo", "/m", str(tmp_path / "out"), [], s)
    said = str(e.value)
    assert "\n" not in said and said.startswith("the trainer actor died mid-training")
    assert "`evoforge resume`" in said and trainer._actor is None


class _Remote:
    def options(self, **kw):
        return self

    def remote(self, *args):
        return "ref"
