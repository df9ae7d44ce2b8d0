"""Two Ray Train workers (gloo, DDP) against the one-worker trainer actor on the same data and
global batch: the loss curves and the final weights agree within float32 reduction noise.

Measured on 2 CPU cores (tiny model, 8 pairs, batch 4, 2 epochs): losses equal to 1e-7
relative, weights to 9e-6 while training moved them by 4e-3; on identical data elsewhere, losses
to 8.1e-6 and weights to 9.3e-5. Tolerances: losses 1e-4 relative, weights 3e-4 absolute (and a
training that moves them by at least 1e-3, so a worker that did not train cannot pass)."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import load_file

import evoforge
from evoforge.training.actor import TrainerActor
from evoforge.training.settings import TrainSettings

pytestmark = pytest.mark.slow
PAIRS = [
    {
        "prompt": [{"role": "user", "content": f"Tell me about {i} and {i * 7}."}],
        "chosen": f"The number {i} is {'even' if i % 2 == 0 else 'odd'}.",
        "rejected": f"no {i}",
    }
    for i in range(8)
]


def train(tmp_path, tiny_path, workers: int) -> tuple[dict, dict]:
    config = evoforge.load_config(
        None,
        [
            "model=tiny",
            "train.batch_size=4",
            "train.epochs=2",
            "train.learning_rate=1e-3",
            f"train.workers={workers}",
        ],
    )
    out = tmp_path / f"workers{workers}" / "train" / "model"
    out.parent.mkdir(parents=True)
    trainer = TrainerActor(f"dist{workers}", 0)
    metrics = trainer.train(
        "train", "dpo", tiny_path, str(out), PAIRS, TrainSettings.from_config(config), tiny_path
    )
    trainer.stop()
    return metrics, load_file(out / "model.safetensors")


def test_two_workers_match_one_worker(ray_cluster, tmp_path, tiny_path):
    one, w1 = train(tmp_path, tiny_path, 1)
    two, w2 = train(tmp_path, tiny_path, 2)
    assert (one["workers"], two["workers"]) == (1, 2)
    assert two["steps"] == one["steps"] == 4
    assert [r["loss"] for r in two["log"]] == pytest.approx([r["loss"] for r in one["log"]], 1e-4)
    start = load_file(f"{tiny_path}/model.safetensors")
    assert max(float(np.abs(w1[k] - start[k]).max()) for k in start) > 1e-3
    assert max(float(np.abs(w1[k] - w2[k]).max()) for k in w1) < 3e-4
    assert not list(tmp_path.rglob("ray_train")), "Ray Train's run state left behind"
