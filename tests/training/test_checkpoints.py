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
