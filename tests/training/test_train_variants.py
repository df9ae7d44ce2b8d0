"""GRPO, SFT (in bf16) and LoRA-DPO through the real path (Ray trainer actor + TRL), and the custom
env in a run."""

from __future__ import annotations

import json
import math

import pytest

import evoforge
from evoforge.cli import main
from evoforge.envs.registry import get_env
from evoforge.rewards import env_reward_function
from evoforge.storage.rundir import read_json
from evoforge.training.settings import TrainSettings
from tests.helpers.runs import TINY_RUN

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "extra",
    [
        # GRPO: test_grpo_on_a_file_env. bf16 here: a whole run trains in mixed precision (the
        # same DPO batch in bf16 and fp32: test_precision_train.py)
        ["train.algorithm=sft", "train.precision=bf16"],
        ["train.lora=true", "train.lora_r=4"],
    ],
    ids=["sft-bf16", "lora-dpo"],
)
def test_training_variants_train_and_sync(ray_cluster, tmp_path, capsys, extra):
    run_dir = tmp_path / "run"
    evoforge.run(evoforge.load_config(None, TINY_RUN + ["rounds=1", f"run_dir={run_dir}", *extra]))
    done = read_json(run_dir / "rounds/000/train/done.json")
    assert done["skipped"] is None
    m = read_json(run_dir / "rounds/000/train/metrics.json")
    algorithm = extra[0].split("=")[1] if extra[0].startswith("train.algorithm=") else "dpo"
    assert m["steps"] >= 1 and all(math.isfinite(r["loss"]) for r in m["log"])
    assert m["algorithm"] == algorithm
    assert read_json(run_dir / "rounds/000/metrics.json")["sync_load_seconds"] >= 0
    if "train.precision=bf16" in extra:
        assert m["precision"] == "bf16" and m["settings"]["precision"] == "bf16"
        out = capsys.readouterr()
        assert "training precision: bf16 mixed" in out.out + out.err


def test_ppo_is_a_clear_error(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "model=tiny", "train.algorithm=ppo"]) == 2
    err = capsys.readouterr().err
    assert "no PPO trainer" in err and "grpo or rloo" in err


def test_custom_env_runs_by_entry_point(ray_cluster, tmp_path, monkeypatch):
    """An installed plugin's entry point names the environment of a whole run. By module:attr,
    as TINY_RUN names its env, every tiny run loads one (examples.custom_env's own:
    tests/envs/test_registry.py)."""
    base = [a for a in TINY_RUN if not a.startswith("env=")] + ["rounds=1", "tasks_per_round=4"]
    dist = tmp_path / "plugin" / "acronym_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acronym-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[evoforge.envs]\nacronyms = examples.custom_env:AcronymEnv\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path / "plugin"))
    evoforge.run(evoforge.load_config(None, base + ["env=acronyms", f"run_dir={tmp_path / 'run'}"]))
    assert read_json(tmp_path / "run" / "baseline/eval.json")["heldout"]["acronyms"]["n"] == 8


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
    assert read_json(run_dir / "rounds/000/train/done.json")["skipped"] is None
    m = read_json(run_dir / "rounds/000/train/metrics.json")
    assert m["algorithm"] == "grpo" and m["steps"] >= 1
    assert any("reward" in k for rec in m["log"] for k in rec)
    assert read_json(run_dir / "rounds/000/metrics.json")["sync_load_seconds"] >= 0
