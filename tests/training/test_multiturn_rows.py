"""Multi-turn pairs and RFT rows through the real TRL trainers (evoforge's Trainer body), with a
chat template that renders tools: the rows carry a tools column and TRL renders it."""

from __future__ import annotations

import pytest

from evoforge.config import load_config
from evoforge.round.stages.trajectory_pairs import TrajectoryPairs
from evoforge.storage.records import SampleVerdict
from evoforge.training.settings import TrainSettings
from evoforge.training.trainer import Trainer
from evoforge.training.trl_adapters import build_trainer, dpo_config, dpo_rows, sft_rows
from tests.agents.test_turn_search import _run, setup
from tests.helpers.models import TOOLS_TEMPLATE, with_chat_template

pytestmark = pytest.mark.slow


def _data():
    env, tasks, server, search, roots = setup()
    state = _run(search, roots, interrupt=False)
    trajs = {r.task_id: [search.trajectory(r)] for r in roots}
    tp = TrajectoryPairs(env, trajs, turn_only=True)
    pairs = [
        tp.nodes(
            search.tasks[t.task_id], "refined", state.nodes[t.accepted], state.nodes[t.root], "k"
        )
        for t in state.trees.values()
    ]
    verdicts = {
        t: [SampleVerdict(score=0.0, passed=False, loose=False, feedback="")] for t in trajs
    }
    sft = tp.rft_rows({t: ["x"] for t in trajs}, verdicts, state, per_task=1)
    return [p.to_row() for p in pairs], [r.to_row() for r in sft]


def test_trl_trains_on_trajectory_pairs_with_a_tools_template(tiny_path, tmp_path):
    from transformers import AutoTokenizer

    model = with_chat_template(tiny_path, tmp_path / "model", TOOLS_TEMPLATE)
    tok = AutoTokenizer.from_pretrained(model)
    pairs, sft = _data()
    rows = dpo_rows(pairs, tok)
    assert all("tools" in r and isinstance(r["chosen"], list) for r in rows)
    assert all("tools" in r for r in sft_rows(sft, tok))
    settings = TrainSettings.from_config(
        load_config(None, ["model=tiny", "train.max_length=1024", "train.batch_size=2"])
    )
    from transformers import AutoModelForCausalLM
    from trl import DPOTrainer

    trainer = build_trainer(
        DPOTrainer,
        AutoModelForCausalLM.from_pretrained(model),
        dpo_config(settings, str(tmp_path / "w"), cuda=False),
        rows,
        tok,
        [],
    )
    first = tok.decode(trainer.train_dataset[0]["prompt_ids"])
    assert first.startswith("TOOL calculate\n") and first.endswith("assistant:\n")
    metrics = Trainer().train("dpo", str(model), str(tmp_path / "out"), pairs, settings, None, sft)
    assert metrics["sft_examples"] == len(sft) and metrics["steps"] >= 2
    # per-turn rows of one trajectory train as one sequence (training/prefix_rows.py)
    assert 0 < metrics["sequences"]["0-sft"] <= len(sft) and metrics["sequences"]["1-dpo"] > 0
    assert (tmp_path / "out" / "model.safetensors").exists()
