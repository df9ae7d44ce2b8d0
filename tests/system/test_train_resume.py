"""A run SIGKILLed in the middle of training (after the trainer's checkpoint of step 2 of its
DPO phase, the refiner's SFT phase done before it) resumes from that checkpoint, not from the
start of the node, ends with the weights of an uninterrupted training on the same round data,
and leaves no checkpoint behind."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import evoforge
from evoforge.round.stages.train import refiner_examples, training_plan
from evoforge.storage.rundir import read_json, read_jsonl
from evoforge.storage.store import RoundStore
from evoforge.training.actor import TrainerActor
from evoforge.training.settings import TrainSettings
from tests.helpers.runs import TINY_RUN, cli

pytestmark = pytest.mark.slow
CHECKPOINTED = [*TINY_RUN, "rounds=1", "train.epochs=3", "train.checkpoint_steps=1"]


def wait_for(path: Path, proc, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, f"run ended before {path} was written: {proc.stderr.read()}"
        assert time.time() < deadline, f"{path} not written in {timeout} s"
        time.sleep(0.2)


def test_sigkill_mid_training_resumes_from_the_last_checkpoint(ray_cluster, tmp_path, tiny_path):
    run_dir = tmp_path / "run"
    proc = cli(
        ["run", *CHECKPOINTED, f"run_dir={run_dir}", f"ray_address={ray_cluster.address}"],
        env={"EVOFORGE_DEBUG_DELAY": "train_step@2:dpo=300"},
        start_new_session=True,
    )
    work = run_dir / "rounds/000/train/model.work"
    wait_for(work / "1-dpo/checkpoint-2/trainer_state.json", proc)
    assert (work / "0-sft/final/model.safetensors").exists()  # the SFT phase had finished
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (run_dir / "rounds/000/train/done.json").exists()

    resumed = cli(["resume", str(run_dir)])
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    m = read_json(run_dir / "rounds/000/train/metrics.json")
    assert m["resumed_from"] == [{"phase": "1-dpo", "step": 2}]
    assert not work.exists(), "checkpoints left after the round's model was written"
    assert [e["node"] for e in read_jsonl(run_dir / "events.jsonl")].count("train") == 1

    # the same training, uninterrupted, on the round's data
    config = evoforge.load_config(run_dir / "config.yaml")
    store = RoundStore(run_dir / "rounds/000")
    reference = tmp_path / "reference" / "model"
    reference.parent.mkdir()
    trainer = TrainerActor("reference", 0)
    mix = refiner_examples(store, config.train.max_refiner_examples)
    algo, data, first = training_plan("dpo", config.train.rft, store, mix)
    expected = trainer.train(
        "reference",
        algo,
        tiny_path,
        str(reference),
        data,
        TrainSettings.from_config(config),
        tiny_path,
        first,
    )
    trainer.stop()
    assert [r["loss"] for r in m["log"]] == pytest.approx([r["loss"] for r in expected["log"]])
    assert m["steps"] > 2
    got = load_file(run_dir / "models/round-000/model.safetensors")
    want = load_file(reference / "model.safetensors")
    assert max(float(np.abs(got[k] - want[k]).max()) for k in want) == 0.0
