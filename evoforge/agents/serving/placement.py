"""Where the run's actors go: the GPU layout, planned and checked before anything starts.

Three layouts, picked by ``serving.placement``:

- cpu: the cluster has no GPUs; servers and trainer take CPU slots only.
- separate: each server replica gets ``serving.tensor_parallel_size`` whole GPUs and each
  training worker one more; nothing shares a GPU.
- colocate: servers and training share GPUs through fractional Ray shares (a server takes
  ``serving.gpu_share`` of each of its GPUs, a training worker the rest of one); with vLLM the
  servers sleep (weights offloaded, KV cache freed) while the trainer runs.

``auto`` is separate when the cluster has enough GPUs, else colocate. Every replica is a Ray
placement group of ``tensor_parallel_size`` bundles packed on one node, so a replica never
waits for a GPU another replica holds; a request the cluster cannot hold is a one-line error
here instead of an actor that waits forever.
"""

from __future__ import annotations

from dataclasses import dataclass

from evoforge.config import Config
from evoforge.errors import ConfigError, EvoforgeError


@dataclass(frozen=True)
class ReplicaPlacement:
    """What one server replica asks Ray for."""

    gpus_per_bundle: float
    """GPU share of each bundle (0 on CPU, 1 when separate, serving.gpu_share when colocated)."""
    bundles: int
    """Bundles of the replica's placement group: its tensor-parallel size."""
    cpus: float = 1.0

    @property
    def actor_gpus(self) -> float:
        """The server actor's own GPU request: all of a one-GPU replica; with tensor
        parallelism vLLM's workers take the bundles' GPUs and the actor none."""
        return self.gpus_per_bundle if self.bundles == 1 else 0.0


@dataclass(frozen=True)
class Placement:
    """The run's layout: per-replica resources of the servers and per-worker of the trainer."""

    mode: str
    """cpu, separate or colocate."""
    cluster_gpus: float
    pools: int
    replicas: int
    replica: ReplicaPlacement
    trainer_workers: int
    trainer_gpus: float
    """GPU request of each training worker."""
    trainer_cpus: int

    @property
    def colocated(self) -> bool:
        return self.mode == "colocate"

    def serving_gpus(self) -> float:
        return self.pools * self.replicas * self.replica.bundles * self.replica.gpus_per_bundle

    def describe(self) -> str:
        """One line for the start of a run."""
        tp = self.replica.bundles
        if self.mode == "cpu":
            return (
                f"placement: cpu (no GPUs in the cluster): {self.pools * self.replicas} server "
                f"replica(s), {self.trainer_workers} training worker(s) x {self.trainer_cpus} CPU"
            )
        share = "" if self.mode == "separate" else f" at share {self.replica.gpus_per_bundle:g}"
        return (
            f"placement: {self.mode} on {self.cluster_gpus:g} GPU(s): "
            f"{self.pools} pool(s) x {self.replicas} replica(s) x {tp} GPU(s){share}; "
            f"training {self.trainer_workers} worker(s) x {self.trainer_gpus:g} GPU"
            + (" (servers sleep while it trains)" if self.colocated else "")
        )


def plan(config: Config, pools: int, cluster_gpus: float, node_gpus: list[float]) -> Placement:
    """The layout of a run with ``pools`` server pools on a cluster with ``cluster_gpus`` GPUs
    (``node_gpus``: the GPUs of each node, for tensor-parallel groups that must fit on one)."""
    s, t = config.serving, config.train
    tp, replicas, workers = s.tensor_parallel_size, s.replicas, t.workers
    static_checks(config)
    if cluster_gpus < 1:
        if t.strategy == "fsdp":
            raise EvoforgeError(
                "train.strategy=fsdp needs GPUs but the cluster has none; use train.strategy=ddp"
            )
        if tp > 1:
            raise EvoforgeError(
                f"serving.tensor_parallel_size={tp} needs GPUs but the cluster has none; "
                "set it to 1 or join a cluster with GPUs (ray_address=)"
            )
        return Placement(
            "cpu", 0.0, pools, replicas, ReplicaPlacement(0.0, 1), workers, 0.0, t.worker_cpus
        )
    whole = int(cluster_gpus)
    serving = pools * replicas * tp
    if tp > max(node_gpus or [cluster_gpus]):
        raise EvoforgeError(
            f"serving.tensor_parallel_size={tp} needs {tp} GPUs on one node but the largest "
            f"node has {max(node_gpus):g}; lower serving.tensor_parallel_size"
        )
    mode = s.placement
    if mode == "auto":
        mode = "separate" if serving + workers <= whole else "colocate"
    if mode == "separate" and serving + workers > whole:
        raise EvoforgeError(
            f"placement separate needs {serving + workers} GPUs ({serving} for {pools} pool(s) "
            f"x {replicas} replica(s) x {tp}, {workers} for training) but the cluster has "
            f"{whole}; use serving.placement=colocate or fewer replicas/workers"
        )
    if mode == "colocate" and (serving > whole or workers > whole):
        need = max(serving, workers)
        raise EvoforgeError(
            f"placement colocate needs {need} GPUs ({serving} for {pools} pool(s) x "
            f"{replicas} replica(s) x {tp}, {workers} training worker(s)) but the cluster has "
            f"{whole}; lower serving.replicas, serving.tensor_parallel_size or train.workers"
        )
    share = 1.0 if mode == "separate" else s.gpu_share
    return Placement(
        mode=mode,
        cluster_gpus=cluster_gpus,
        pools=pools,
        replicas=replicas,
        replica=ReplicaPlacement(share, tp),
        trainer_workers=workers,
        trainer_gpus=1.0 if mode == "separate" else round(1.0 - s.gpu_share, 4),
        trainer_cpus=t.worker_cpus,
    )


def static_checks(config: Config) -> None:
    """What is wrong whatever the cluster: checked before a run directory is written."""
    s, t = config.serving, config.train
    if s.tensor_parallel_size > 1 and config.backend == "hf":
        raise ConfigError(
            f"serving.tensor_parallel_size={s.tensor_parallel_size} needs backend=vllm "
            "(transformers serving has no tensor parallelism)"
        )
    if t.batch_size % t.workers:
        raise ConfigError(
            f"train.batch_size={t.batch_size} must be a multiple of train.workers={t.workers} "
            "(each worker takes an equal share of every optimizer step)"
        )
    if t.strategy == "fsdp" and t.workers < 2:
        raise ConfigError("train.strategy=fsdp shards across workers; set train.workers >= 2")


def cluster_gpus() -> tuple[float, list[float]]:
    """GPUs of the connected cluster, in total and per alive node."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    return (
        float(ray.cluster_resources().get("GPU", 0)),
        [float(n.get("Resources", {}).get("GPU", 0)) for n in nodes],
    )


def default_replica() -> ReplicaPlacement:
    """One whole GPU per replica when the cluster has one, else none (benchmarks, tests)."""
    gpus, _ = cluster_gpus()
    return ReplicaPlacement(1.0 if gpus >= 1 else 0.0, 1)


def reserve(replica: ReplicaPlacement, name: str, timeout: float = 60.0):
    """A placement group for one replica, ready; a one-line error instead of waiting forever."""
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group

    bundle = {"CPU": replica.cpus} | (
        {"GPU": replica.gpus_per_bundle} if replica.gpus_per_bundle else {}
    )
    # unnamed: a name must be unique, and a killed driver's group lingers a moment on a cluster
    pg = placement_group([dict(bundle) for _ in range(replica.bundles)], "STRICT_PACK")
    try:
        ray.get(pg.ready(), timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        remove_placement_group(pg)
        raise EvoforgeError(
            f"Ray could not place {name} ({replica.bundles} x {bundle}) within {timeout:.0f} s: "
            "the cluster's free resources do not hold it; see `ray status`"
        ) from None
    return pg
