"""Which trainer checkpoint a resumed training continues from: the newest complete one."""

from __future__ import annotations

import json

from evoforge.training.trl_adapters import last_checkpoint


def test_a_checkpoint_whose_state_file_was_cut_short_is_skipped(tmp_path):
    for step, state in ((2, json.dumps({"global_step": 2})), (4, '{"global_st'), (6, None)):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        (d / "model.safetensors").write_bytes(b"weights")
        if state is not None:  # step 6: killed before the state file was written
            (d / "trainer_state.json").write_text(state)
    (tmp_path / "checkpoint-x").mkdir()
    assert last_checkpoint(str(tmp_path)) == str(tmp_path / "checkpoint-2")
    assert last_checkpoint(str(tmp_path / "absent")) is None


def test_checkpoints_are_written_at_checkpoint_steps_only_not_again_at_the_end(tmp_path, tiny_path):
    """3 optimizer steps with checkpoint_steps=2: checkpoint-2 only (transformers would also
    save checkpoint-3, three times the model's size, which the trainer would delete unread)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOTrainer

    from evoforge.config import load_config
    from evoforge.training.settings import TrainSettings
    from evoforge.training.trl_adapters import (
        PROGRESS_FILE,
        LossLog,
        dpo_config,
        dpo_rows,
        fit,
        read_step_progress,
    )

    config = load_config(None, ["model=tiny", "train.batch_size=2", "train.checkpoint_steps=2"])
    settings = TrainSettings.from_config(config)
    pairs = [
        {"prompt": [{"role": "user", "content": f"q{i}"}], "chosen": "yes", "rejected": "no"}
        for i in range(6)  # one epoch of batch 2
    ]
    tok = AutoTokenizer.from_pretrained(tiny_path)
    model = AutoModelForCausalLM.from_pretrained(tiny_path)
    log = LossLog()
    work = tmp_path / "work"
    fit(DPOTrainer, model, dpo_config(settings, str(work), False), dpo_rows(pairs, tok), tok, log)
    assert len(log.records) == 3
    assert sorted(p.name for p in work.glob("checkpoint-*")) == ["checkpoint-2"]
    # the step the driver's progress line shows, beside the phase's directory
    progress = read_step_progress(str(tmp_path / PROGRESS_FILE))
    assert progress == {"phase": "work", "step": 3, "max_steps": 3}
