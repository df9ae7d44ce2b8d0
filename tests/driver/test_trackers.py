"""Trackers on a run directory's files (no Ray): what each library's own files hold, and the
one-line error when a requested library is missing. The whole run is tests/system/test_trackers.py."""

from __future__ import annotations

import importlib.util

import pytest

import evoforge
from evoforge.config.loader import dump_yaml
from evoforge.driver.trackers import Trackers, check_trackers
from evoforge.errors import ConfigError, EvoforgeError
from evoforge.storage.records import Evaluation
from evoforge.storage.rundir import RunDir, read_json
from evoforge.storage.store import run_store
from tests.helpers.wandb_offline import history_and_config


def test_round_metrics_losses_and_config_reach_every_tracker(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = evoforge.load_config(None, ["model=tiny", "report_to=tensorboard,wandb,mlflow"])
    rd = RunDir(tmp_path / "run")
    rd.create(dump_yaml(config), "tracked")
    heldout = {"n": 8, "strict": 0.75, "loose": 0.875, "ci95": [0.4, 0.9], "p": 0.3, "by_type": {}}
    run_store(rd, -1).eval.write(Evaluation(round=-1, heldout={"parity": heldout}))
    round0 = run_store(rd, 0)
    round0.eval.write(Evaluation(round=0, kept=True, heldout={"parity": heldout}))
    round0.metrics.write(
        {"round": 0, "pairs": 3, "pairs_by_source": {"search": 2}, "judge_kappa": 0.25}
    )
    log = [{"loss": 1.5, "step": 1, "grad_norm": 2.0}, {"loss": 0.5, "step": 2}]
    round0.train_metrics.write({"steps": 2, "log": log})
    trackers = Trackers.open(config, rd, "tracked")
    for round_, node in ((-1, "baseline"), (0, "train"), (0, "promote")):
        trackers.after_node(rd, round_, node, 0, 1.25)
    trackers.close()

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = EventAccumulator(str(rd.path / "tensorboard"))
    tb.Reload()
    assert [(e.step, e.value) for e in tb.Scalars("train/loss")] == [(1, 1.5), (2, 0.5)]
    assert [(e.step, e.value) for e in tb.Scalars("eval/parity/p")] == [
        (-1, pytest.approx(0.3)),
        (0, pytest.approx(0.3)),
    ]
    for tag, value in (
        ("round/pairs_by_source/search", 2),
        ("round/judge_kappa", 0.25),
        ("node_seconds/train", 1.25),
    ):
        assert tb.Scalars(tag)[0].value == pytest.approx(value)
    assert "config/text_summary" in tb.Tags()["tensors"]

    history, wandb_config = history_and_config(next((rd.path / "wandb").glob("offline-run-*")))
    assert [h["train/loss"] for h in history if "train/loss" in h] == [1.5, 0.5]
    assert [h["round/judge_kappa"] for h in history if "round/judge_kappa" in h] == [0.25]
    assert wandb_config["model"] == "tiny"

    from mlflow.tracking import MlflowClient

    client = MlflowClient((rd.path / "mlruns").resolve().as_uri())
    run_id = read_json(rd.path / "trackers.json")["mlflow_run_id"]
    assert [m.value for m in client.get_metric_history(run_id, "train/loss")] == [1.5, 0.5]
    assert client.get_run(run_id).data.params["model"] == "tiny"


def test_a_missing_tracker_library_names_the_pip_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    with pytest.raises(
        EvoforgeError, match=r"report_to=wandb needs the wandb package: pip install"
    ):
        check_trackers(evoforge.load_config(None, ["report_to=tensorboard,wandb"]))


def test_report_to_takes_a_list_of_known_trackers():
    with pytest.raises(
        ConfigError, match="comma-separated list of tensorboard, wandb, mlflow; got 'neptune'"
    ):
        evoforge.load_config(None, ["report_to=tensorboard,neptune"])
