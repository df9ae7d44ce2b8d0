"""The step the driver's progress line shows is the running phase's, never a killed run's: a
phase that starts (resumed or not) forgets the step file before its first step is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evoforge.training import actor as actor_mod
from evoforge.training import trl_adapters
from evoforge.training.trainer import step_progress, work_dir
from evoforge.training.trl_adapters import PROGRESS_FILE, read_step_progress

KILLED = {"phase": "1-dpo", "step": 2, "max_steps": 12}
"""What a run killed at step 2 of 12 left in the step file."""


def test_a_phase_forgets_a_killed_runs_step_until_it_writes_its_own(
    tmp_path, tiny_path, monkeypatch
):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOTrainer

    from evoforge.config import load_config
    from evoforge.training.settings import TrainSettings

    settings = TrainSettings.from_config(load_config(None, ["model=tiny", "train.batch_size=2"]))
    pairs = [
        {"prompt": [{"role": "user", "content": f"q{i}"}], "chosen": "yes", "rejected": "no"}
        for i in range(6)
    ]
    tok = AutoTokenizer.from_pretrained(tiny_path)
    model = AutoModelForCausalLM.from_pretrained(tiny_path)
    progress = tmp_path / PROGRESS_FILE
    progress.write_text(json.dumps(KILLED))
    shown = []
    real_build = trl_adapters.build_trainer

    def build_and_look(*args, **kw):  # the real trainer; what the driver reads meanwhile
        shown.append(read_step_progress(str(progress)))
        return real_build(*args, **kw)

    monkeypatch.setattr(trl_adapters, "build_trainer", build_and_look)
    args = trl_adapters.dpo_config(settings, str(tmp_path / "1-dpo"), False)
    trl_adapters.fit(
        DPOTrainer, model, args, trl_adapters.dpo_rows(pairs, tok), tok, trl_adapters.LossLog()
    )
    assert shown == [None]  # while the phase loads: no step rather than the killed run's
    assert read_step_progress(str(progress)) == {"phase": "1-dpo", "step": 3, "max_steps": 3}


class _Started(Exception):
    pass


def test_the_driver_forgets_a_killed_runs_step_before_the_trainer_starts(tmp_path, monkeypatch):
    """The actor takes minutes to start and load on a busy machine: the stale step goes first."""
    out = str(tmp_path / "train" / "model")
    Path(work_dir(out)).mkdir(parents=True)
    Path(work_dir(out), PROGRESS_FILE).write_text(json.dumps(KILLED))
    assert step_progress(out) == KILLED
    seen = []

    def start(self):
        seen.append(step_progress(out))
        raise _Started

    monkeypatch.setattr(actor_mod.TrainerActor, "_start", start)
    with pytest.raises(_Started):
        actor_mod.TrainerActor("run-abc", 1).train("round0/train", "dpo", "m", out, [], None)
    assert seen == [None]
