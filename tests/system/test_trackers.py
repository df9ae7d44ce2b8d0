"""report_to=tensorboard,wandb,mlflow on a run that trains with RLOO on two Ray Train workers:
each tracker's own files, read back, hold the config, the held-out numbers, the round's counts,
seconds per node and every logged training loss, under one run."""

from __future__ import annotations

import pytest

import evoforge
from evoforge.storage.rundir import read_json
from tests.helpers.runs import TINY_RUN
from tests.helpers.wandb_offline import history_and_config

pytestmark = pytest.mark.slow


def tensorboard_scalars(logdir) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]} | {
        "__text__": acc.Tags().get("tensors", [])
    }


def test_trackers_get_round_metrics_losses_and_config(ray_cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_dir = tmp_path / "run"
    extra = [
        "rounds=1",
        "train.algorithm=rloo",
        "train.batch_size=4",
        "train.workers=2",
        "report_to=tensorboard,wandb,mlflow",
        f"run_dir={run_dir}",
    ]
    evoforge.run(evoforge.load_config(None, [*TINY_RUN, *extra]))
    m = read_json(run_dir / "rounds/000/train/metrics.json")
    assert m["algorithm"] == "rloo" and m["workers"] == 2 and m["steps"] >= 1
    losses = [r["loss"] for r in m["log"]]
    ev = read_json(run_dir / "rounds/000/eval.json")["heldout"]["parity"]
    base = read_json(run_dir / "baseline/eval.json")["heldout"]["parity"]
    metrics = read_json(run_dir / "rounds/000/metrics.json")
    assert metrics["sync_load_seconds"] >= 0  # the servers loaded what the workers wrote

    tb = tensorboard_scalars(run_dir / "tensorboard")
    assert [v for _, v in tb["train/loss"]] == pytest.approx(losses)
    assert [s for s, _ in tb["train/loss"]] == list(range(1, len(losses) + 1))
    assert tb["eval/parity/strict"] == [
        (-1, pytest.approx(base["strict"])),
        (0, pytest.approx(ev["strict"])),
    ]
    assert tb["round/pairs"][0][1] == metrics["pairs"]
    assert {"node_seconds/train", "node_seconds/promote", "round/seconds/train"} <= set(tb)
    assert "config/text_summary" in tb["__text__"]

    (wandb_run,) = (run_dir / "wandb").glob("offline-run-*")
    history, wandb_config = history_and_config(wandb_run)
    logged = sorted((h["train/step"], h["train/loss"]) for h in history if "train/loss" in h)
    assert [v for _, v in logged] == pytest.approx(losses)
    strict = [(h["round"], h["eval/parity/strict"]) for h in history if "eval/parity/strict" in h]
    assert strict == [(-1, pytest.approx(base["strict"])), (0, pytest.approx(ev["strict"]))]
    assert wandb_config["train"]["algorithm"] == "rloo"

    from mlflow.tracking import MlflowClient

    client = MlflowClient((run_dir / "mlruns").resolve().as_uri())
    run_id = read_json(run_dir / "trackers.json")["mlflow_run_id"]
    history = client.get_metric_history(run_id, "train/loss")
    assert [h.value for h in sorted(history, key=lambda h: h.step)] == pytest.approx(losses)
    assert client.get_run(run_id).data.params["train.algorithm"] == "rloo"
