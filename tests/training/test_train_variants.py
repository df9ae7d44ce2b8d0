"""GRPO, SFT and LoRA-DPO through the real path (Ray trainer actor + TRL), and the custom env in a run."""

from __future__ import annotations

import pytest

import evoforge
from evoforge.cli import main
from evoforge.loops.rundir import read_json
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
    assert (
        m["steps"] >= 1 and m["algorithm"] == extra[0].split("=")[1]
        if "algorithm" in extra[0]
        else "dpo"
    )
    assert read_json(run_dir / "rounds/000/metrics.json")["sync_load_seconds"] >= 0


def test_ppo_is_a_clear_error(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "model=tiny", "train.algorithm=ppo"]) == 2
    assert "no PPO trainer" in capsys.readouterr().err


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
