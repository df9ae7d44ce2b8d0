"""GRPO, SFT and LoRA-DPO through the real path (Ray trainer actor + TRL), and the custom env in a run."""

from __future__ import annotations

import json

import pytest

import evoforge
from evoforge.cli import main
from evoforge.envs.registry import get_env
from evoforge.loops.rundir import read_json
from evoforge.rewards import env_reward_function
from evoforge.training.settings import TrainSettings
from tests.helpers.runs import TINY_RUN

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "extra",
    [
        ["train.algorithm=grpo", "train.batch_size=4"],
        ["train.algorithm=sft"],
        ["train.lora=true", "train.lora_r=4"],
    ],
    ids=["grpo", "sft", "lora-dpo"],
)
def test_training_variants_train_and_sync(ray_cluster, tmp_path, extra):
    run_dir = tmp_path / "run"
    evoforge.run(evoforge.load_config(None, TINY_RUN + ["rounds=1", f"run_dir={run_dir}", *extra]))
    done = read_json(run_dir / "rounds/000/train/done.json")
    assert done["skipped"] is None
    m = read_json(run_dir / "rounds/000/train/metrics.json")
    algorithm = extra[0].split("=")[1] if extra[0].startswith("train.algorithm=") else "dpo"
    assert m["steps"] >= 1
    assert m["algorithm"] == algorithm
    assert read_json(run_dir / "rounds/000/metrics.json")["sync_load_seconds"] >= 0


def test_ppo_is_a_clear_error(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "model=tiny", "train.algorithm=ppo"]) == 2
    err = capsys.readouterr().err
    assert "no PPO trainer" in err and "grpo or rloo" in err


def test_custom_env_runs_by_path_and_by_entry_point(ray_cluster, tmp_path, monkeypatch):
    base = [a for a in TINY_RUN if not a.startswith("env=")] + ["rounds=1", "tasks_per_round=4"]
    evoforge.run(
        evoforge.load_config(
            None, base + ["env=examples.custom_env:AcronymEnv", f"run_dir={tmp_path / 'a'}"]
        )
    )
    dist = tmp_path / "plugin" / "acronym_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acronym-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[evoforge.envs]\nacronyms = examples.custom_env:AcronymEnv\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "plugin"))
    evoforge.run(evoforge.load_config(None, base + ["env=acronyms", f"run_dir={tmp_path / 'b'}"]))
    for d in ("a", "b"):
        assert read_json(tmp_path / d / "baseline/eval.json")["heldout"]["acronyms"]["n"] == 8


def _question_file(tmp_path):
    rows = [{"question": f"Answer in at most {k} characters.", "limit": k} for k in range(4, 44)]
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_train_settings_carry_the_whole_env_spec(tmp_path):
    """GRPO's reward is rebuilt inside the trainer actor from TrainSettings: a file env needs its
    data section (reward function, prompt column), not its name alone."""
    path = _question_file(tmp_path)
    cfg = evoforge.load_config(
        None,
        [
            f"env=file:{path}",
            "data.prompt_field=question",
            "data.reward=tests.helpers.plugins:reward_len",
        ],
    )
    s = TrainSettings.from_config(cfg)
    assert s.data == cfg.data
    task = get_env(s.env, s.data).tasks("train", 1, 0)[0]
    reward = env_reward_function(s.env, s.data)
    row = json.dumps(task.to_json())
    assert reward(["p", "p"], ["ok", "x" * 99], task=[row, row]) == [1.0, 0.0]


def test_grpo_on_a_file_env(ray_cluster, tmp_path):
    path = _question_file(tmp_path)
    run_dir = tmp_path / "run"
    base = [a for a in TINY_RUN if not a.startswith("env=")]
    evoforge.run(
        evoforge.load_config(
            None,
            base
            + [
                f"env=file:{path}",
                "data.prompt_field=question",
                "data.reward=tests.helpers.plugins:reward_len",
                "train.algorithm=grpo",
                "train.batch_size=4",
                "rounds=1",
                f"run_dir={run_dir}",
            ],
        )
    )
    m = read_json(run_dir / "rounds/000/train/metrics.json")
    assert m["algorithm"] == "grpo" and m["steps"] >= 1
    assert any("reward" in k for rec in m["log"] for k in rec)
