"""Experiment trackers (``report_to``): TensorBoard, Weights & Biases, MLflow, each through its
own library, all fed the same numbers under one run per evoforge run (a resumed run continues
the same tracker run).

- config: the run's config, once (TensorBoard as text, wandb as its config, MLflow as params);
- per node: its seconds (``node_seconds/<node>``, keyed ``name@level`` for search levels);
- per round, after ``promote`` (and the baseline after ``baseline``): held-out numbers of each
  environment (``eval/<env>/strict``, ``loose``, ``n`` and any other number eval.json holds, e.g.
  a p-value) and every number of the round's metrics.json (``round/...``: pairs, pairs by
  source, judge-verifier agreement or kappa, seconds and engine seconds per node);
- the trainer's losses per optimizer step (``train/loss``, ...), on a step axis that continues
  across rounds (``train/step``).

Round numbers use the round as their step (-1 = the starting model).
"""

from __future__ import annotations

import importlib.util
import os
import re
from typing import Any

from evoforge.config import Config
from evoforge.config.loader import dump_yaml, to_dict
from evoforge.errors import EvoforgeError
from evoforge.round.state import SEARCH_STAGES
from evoforge.storage.rundir import RunDir, read_json, write_json
from evoforge.storage.store import RoundStore, run_store

PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow-skinny"}
MODULES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


def requested(config: Config) -> list[str]:
    return [t.strip() for t in config.report_to.split(",") if t.strip()]


def check_trackers(config: Config) -> None:
    """Every requested tracker's library is installed (checked before a run directory exists)."""
    for name in requested(config):
        if importlib.util.find_spec(MODULES[name]) is None:
            raise EvoforgeError(
                f"report_to={name} needs the {PACKAGES[name]} package: "
                f"pip install 'evoforge[trackers]' (or pip install {PACKAGES[name]})"
            )


def flatten(prefix: str, value: Any, out: dict[str, float]) -> dict[str, float]:
    """Numeric leaves of nested dicts as ``prefix/key/subkey`` (booleans as 0/1)."""
    if isinstance(value, dict):
        for k, v in value.items():
            flatten(f"{prefix}/{k}", v, out)
    elif isinstance(value, int | float):  # bool included, as 0/1
        out[prefix] = float(value)
    return out


class _TensorBoard:
    def __init__(self, config: Config, rd: RunDir, run_id: str) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(rd.path / "tensorboard"))
        self.writer.add_text("config", "```\n" + dump_yaml(config) + "```", 0)

    def log(self, metrics: dict[str, float], axis: str, step: int) -> None:
        for k, v in metrics.items():
            self.writer.add_scalar(k, v, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class _Wandb:
    def __init__(self, config: Config, rd: RunDir, run_id: str) -> None:
        import wandb

        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "evoforge"),
            id=re.sub(r"[^A-Za-z0-9_.-]", "-", run_id)[:64],
            name=run_id,
            resume="allow",
            config=to_dict(config),
            dir=str(rd.path),
            settings=wandb.Settings(quiet=True, console="off"),
        )
        self.run.define_metric("round")
        self.run.define_metric("train/step")
        self.run.define_metric("train/*", step_metric="train/step")
        for family in ("eval/*", "round/*", "node_seconds/*"):
            self.run.define_metric(family, step_metric="round")

    def log(self, metrics: dict[str, float], axis: str, step: int) -> None:
        self.run.log(metrics | {axis: step})

    def close(self) -> None:
        self.run.finish()


class _Mlflow:
    def __init__(self, config: Config, rd: RunDir, run_id: str) -> None:
        import mlflow

        self.mlflow = mlflow
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        if not uri:  # a file store in the run directory (MLflow keeps it in maintenance mode)
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = (rd.path / "mlruns").resolve().as_uri()
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME", "evoforge"))
        ids = rd.path / "trackers.json"
        known = read_json(ids).get("mlflow_run_id") if ids.exists() else None
        run = mlflow.start_run(run_id=known) if known else mlflow.start_run(run_name=run_id)
        if not known:
            write_json(ids, {"mlflow_run_id": run.info.run_id})
            params = {
                k.lstrip("/"): str(v)[:500]
                for k, v in _leaves("", to_dict(config)).items()
                if str(v) != ""
            }
            mlflow.log_params(params)

    def log(self, metrics: dict[str, float], axis: str, step: int) -> None:
        self.mlflow.log_metrics(metrics, step=step)

    def close(self) -> None:
        self.mlflow.end_run()


def _leaves(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out |= _leaves(f"{prefix}.{k}" if prefix else k, v)
        return out
    return {prefix: value}


BACKENDS = {"tensorboard": _TensorBoard, "wandb": _Wandb, "mlflow": _Mlflow}


class Trackers:
    """The run's trackers; the graph's nodes feed them through ``after_node``."""

    def __init__(self, backends: list[Any]) -> None:
        self.backends = backends

    @classmethod
    def open(cls, config: Config, rd: RunDir, run_id: str) -> Trackers | None:
        backends = []
        for name in requested(config):
            try:
                backends.append(BACKENDS[name](config, rd, run_id))
            except Exception as e:
                for b in backends:
                    b.close()
                last = (str(e).strip().splitlines() or [repr(e)])[0][:300]
                raise EvoforgeError(
                    f"report_to={name}: the tracker did not start ({last}); fix its setup or "
                    "drop it from report_to"
                ) from None
        return cls(backends) if backends else None

    def log(self, metrics: dict[str, float], axis: str, step: int) -> None:
        # names every library takes (MLflow's are the strictest): expand@1 -> expand_1
        metrics = {re.sub(r"[^A-Za-z0-9_\-. /]", "_", k): v for k, v in metrics.items()}
        if metrics:
            for b in self.backends:
                b.log(metrics, axis, step)

    def after_node(self, rd: RunDir, round_: int, name: str, level: int, seconds: float) -> None:
        key = f"{name}@{level}" if name in SEARCH_STAGES else name
        self.log({f"node_seconds/{key}": seconds}, "round", round_)
        if name == "baseline":
            self._eval(run_store(rd, -1), -1)
        elif name == "train":
            self._losses(rd, round_)
        elif name == "promote":
            store = run_store(rd, round_)
            self._eval(store, round_)
            if store.metrics.exists():
                numbers = {k: v for k, v in store.metrics.read().items() if k != "round"}
                self.log(flatten("round", numbers, {}), "round", round_)

    def _eval(self, store: RoundStore, round_: int) -> None:
        if not store.eval.exists():
            return
        ev = store.eval.read()
        out: dict[str, float] = {}
        for env, numbers in ev.heldout.items():
            flatten(f"eval/{env}", {k: v for k, v in numbers.items() if k != "by_type"}, out)
        if ev.kept is not None:
            out["eval/kept"] = float(ev.kept)
        # any other numbers the evaluation recorded (a comparison with the kept round, its p)
        rest = {k: v for k, v in ev.to_row().items() if k not in ("round", "heldout", "kept")}
        flatten("eval", rest, out)
        self.log(out, "round", round_)

    def _losses(self, rd: RunDir, round_: int) -> None:
        """Each logged optimizer step of the round, after the steps of the rounds before."""
        offset = 0
        for r in range(round_):
            m = run_store(rd, r).train_metrics
            if m.exists():
                offset += m.read().get("steps") or 0
        m = run_store(rd, round_).train_metrics
        if not m.exists():
            return
        for i, record in enumerate(m.read().get("log", [])):
            values = {f"train/{k}": v for k, v in record.items() if k not in ("step", "epoch")}
            self.log(values | {"train/round": float(round_)}, "train/step", offset + i + 1)

    def close(self) -> None:
        for b in self.backends:
            b.close()
