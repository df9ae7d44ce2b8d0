"""Training on several workers: the same Trainer body in each Ray Train (TorchTrainer) worker.

Ray Train starts ``train.workers`` processes and sets up torch.distributed between them (gloo on
CPU, NCCL on GPUs); the transformers Trainer inside TRL sees the process group and trains with
DDP, or FSDP with ``train.strategy=fsdp``. Every worker takes ``batch_size / workers`` examples
of each optimizer step, so the global batch, and with it the loss curve, is the one-worker
run's. Rank 0 writes the model and its metrics; checkpoints are shared files in the round's
train directory, so the cluster's nodes must share the run directory's filesystem.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

from evoforge.errors import EvoforgeError
from evoforge.training.settings import TrainSettings
from evoforge.training.trainer import Trainer, world
from evoforge.training.trl_adapters import write_json_whole


def _worker_loop(config: dict[str, Any]) -> None:
    """One Ray Train worker: train, and on rank 0 write the metrics for the caller."""
    if config["debug"]:
        os.environ["EVOFORGE_DEBUG_DELAY"] = config["debug"]
    metrics = Trainer(config["threads"]).train(*config["args"])
    if world()[0] == 0:
        write_json_whole(config["result"], metrics)


def train_with_workers(
    run_id: str, label: str, args: tuple, settings: TrainSettings, gpus_per_worker: float
) -> dict[str, Any]:
    """``Trainer.train(*args)`` on ``settings.workers`` data-parallel Ray Train workers."""
    from ray.train import RunConfig, ScalingConfig, TrainingFailedError
    from ray.train.torch import TorchConfig, TorchTrainer

    out_dir = str(args[2])
    train_dir = os.path.dirname(out_dir)
    result = out_dir + ".metrics.json"
    resources = {"CPU": settings.worker_cpus} | (
        {"GPU": gpus_per_worker} if gpus_per_worker else {}
    )
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={
            "args": args,
            "threads": settings.worker_cpus,
            "result": result,
            "debug": os.environ.get("EVOFORGE_DEBUG_DELAY", ""),
        },
        torch_config=TorchConfig(backend="nccl" if gpus_per_worker else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=settings.workers,
            use_gpu=bool(gpus_per_worker),
            resources_per_worker=resources,
        ),
        run_config=RunConfig(
            # The dashboard's Train page lists the workers under this run name. Ray Train 2.60
            # creates its worker actors itself (RayTrainWorker) with no name option, so they
            # cannot be named evoforge/<run>/train/<i> as the servers and the trainer are.
            name=f"evoforge-{run_id}-{label.replace('/', '-')}",
            storage_path=os.path.join(train_dir, "ray_train"),
        ),
    )
    try:
        trainer.fit()
    except TrainingFailedError as e:
        raise _cause(e) from None
    with open(result) as f:
        metrics = json.load(f)
    os.remove(result)
    shutil.rmtree(os.path.join(train_dir, "ray_train"), ignore_errors=True)
    return metrics


def _cause(error: BaseException) -> BaseException:
    """Our own error raised inside a worker, else a one-line error naming the first failure."""
    seen: list[BaseException] = []
    todo: list[Any] = [error]
    while todo:
        e = todo.pop()
        if isinstance(e, EvoforgeError):
            return e
        if not isinstance(e, BaseException) or e in seen:
            continue
        seen.append(e)
        todo += [getattr(e, "cause", None), e.__cause__, e.__context__]
        for name in ("worker_failures", "_worker_failures"):
            failures = getattr(e, name, None)
            if isinstance(failures, dict):
                todo += list(failures.values())
    first = str(error).strip().splitlines()
    return EvoforgeError(
        f"training on several workers failed: {(first[-1] if first else repr(error))[:300]}"
    )
