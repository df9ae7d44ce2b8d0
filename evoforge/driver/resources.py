"""What a run will hold on its Ray cluster, checked against that cluster before anything is written.

The cluster is the one the run would use: a new local cluster (this machine's CPU slots and the
GPUs Ray would detect, read without starting it), the local cluster this process started already
(a notebook, a test session, GPUs declared with ``cluster.connect(num_gpus=N)``), or a cluster it
joins (``ray_address``, or a Ray job's). Joining connects this process to the cluster, as the run
would moments later. On a cluster that exists already the run's servers and trainer must also fit
in what is free now: an actor Ray cannot place waits forever (a trainer left PENDING_CREATION
while the run prints "train: working").
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path

from evoforge.agents.models import ModelRef
from evoforge.agents.serving import cluster, placement
from evoforge.agents.serving.placement import Placement
from evoforge.config import Config
from evoforge.errors import EvoforgeError
from evoforge.round.servers import pool_count

GIB = 1024**3
FREE_WAIT_S = 10.0
"""Seconds a joined cluster gets to free what it holds (a stopped run's actors die a moment
after it) before the run is refused."""
TRAIN_BYTES_PER_PARAM = 16
"""Full training: float32 weights, gradients and AdamW's two moments (mixed bf16 keeps these)."""


@dataclass(frozen=True)
class ClusterView:
    """The resources of the cluster a run would use."""

    where: str
    """"new local cluster", "local cluster of this process" or "cluster at ADDRESS"."""
    cpus: float
    gpus: float
    node_gpus: list[float]
    free_cpus: float
    free_gpus: float
    exists: bool
    """Whether the cluster runs already (then what is free counts, not only the totals)."""
    local: bool
    """A local cluster (no autoscaler): its totals bound the run."""


@dataclass
class RunPlan:
    """Where the run's actors go and what they hold at once."""

    placement: Placement
    cluster: ClusterView
    cpu_slots: float
    gpus: float
    memory: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The plan as `evoforge plan` prints it."""
        c, p = self.cluster, self.placement
        out = [
            f"cluster: {c.where}: {c.cpus:g} CPU slot(s), {c.gpus:g} GPU(s)"
            + (f"; free now {c.free_cpus:g} CPU, {c.free_gpus:g} GPU" if c.exists else ""),
            p.describe(),
        ]
        serving_cpus = p.pools * p.replicas * p.replica.bundles * p.replica.cpus
        out.append(
            f"cpu slots: {self.cpu_slots:g} held at once ({serving_cpus:g} serving, "
            f"{self.cpu_slots - serving_cpus:g} training) of {c.cpus:g}"
        )
        if p.mode != "cpu":
            out.append(
                f"gpu shares: {self.gpus:g} held at once ({p.serving_gpus():g} serving: "
                f"{p.replica.gpus_per_bundle:g} per bundle x {p.replica.bundles} per replica; "
                f"{p.trainer_workers} training worker(s) x {p.trainer_gpus:g}) of {c.gpus:g}"
            )
        return out + self.memory


def cluster_view(config: Config) -> ClusterView:
    """The cluster the run would use; joins ``ray_address`` (or the job's cluster)."""
    address = config.ray_address or cluster.job_address()
    ray = sys.modules.get("ray")
    if not address and (ray is None or not ray.is_initialized()):
        cpus, gpus = float(cluster.local_cpus()), float(detected_gpus())
        return ClusterView("new local cluster", cpus, gpus, [gpus], cpus, gpus, False, True)
    if address and (ray is None or not ray.is_initialized()):
        _join(address)
    import ray

    total, free = ray.cluster_resources(), ray.available_resources()
    gpus, node_gpus = placement.cluster_gpus()
    local = cluster.local_slots(config.ray_address) is not None
    where = "local cluster of this process" if local else f"cluster at {address or 'this process'}"
    return ClusterView(
        where,
        float(total.get("CPU", 0)),
        gpus,
        node_gpus,
        float(free.get("CPU", 0)),
        float(free.get("GPU", 0)),
        True,
        local,
    )


def _join(address: str) -> None:
    """Connect to the cluster at ``address``, keeping this process's SIGTERM handler (ray.init
    replaces it; a run installs its own before it joins, driver/termination.py)."""
    main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGTERM) if main else None
    cluster.connect(address)
    if main and handler is not None and signal.getsignal(signal.SIGTERM) is not handler:
        signal.signal(signal.SIGTERM, handler)


def detected_gpus() -> int:
    """GPUs a new local Ray cluster would find on this machine (Ray's own detection)."""
    try:
        from ray._private.accelerators import get_accelerator_manager_for_resource

        return int(get_accelerator_manager_for_resource("GPU").get_current_node_num_accelerators())
    except Exception:  # noqa: BLE001 - a detection that fails finds no GPU, as Ray's would
        return 0


def plan_run(config: Config, models: dict[str, ModelRef]) -> RunPlan:
    """The run's placement, CPU slots, GPU shares and memory on its cluster (``models``: each
    role's resolved model); a one-line error when the cluster cannot hold them (totals, and on a
    running cluster what is free now)."""
    pools = pool_count(models)
    view = cluster_view(config)
    plan = placement.plan(config, pools, view.gpus, view.node_gpus)
    if view.local:
        placement.check_local_cpus(config, pools, view.cpus)
    t = config.train
    serving_cpus = pools * plan.replicas * plan.replica.bundles * plan.replica.cpus
    cpu_slots = serving_cpus + (t.workers * t.worker_cpus if t.workers > 1 else 1)
    gpus = plan.serving_gpus() + plan.trainer_workers * plan.trainer_gpus
    if view.exists and not view.local:
        check_free(view, cpu_slots, gpus)
    return RunPlan(plan, view, cpu_slots, gpus, memory_lines(config, plan, models))


def check_free(
    view: ClusterView, cpu_slots: float, gpus: float, wait_s: float = FREE_WAIT_S
) -> None:
    """Servers plus trainer must fit in the joined cluster's free CPU slots and GPUs (given
    ``wait_s`` seconds to free what a run stopped a moment ago still holds)."""
    import time

    import ray

    deadline = time.monotonic() + wait_s
    while True:
        missing = []
        if cpu_slots > view.free_cpus + 1e-9:
            missing.append(f"{cpu_slots:g} CPU slots ({view.free_cpus:g} of {view.cpus:g} free)")
        if gpus > view.free_gpus + 1e-9:
            missing.append(f"{gpus:g} GPUs ({view.free_gpus:g} of {view.gpus:g} free)")
        if not missing or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
        free = ray.available_resources()
        view = replace(view, free_cpus=free.get("CPU", 0.0), free_gpus=free.get("GPU", 0.0))
    if missing:
        raise EvoforgeError(
            f"the run's servers and trainer need {' and '.join(missing)} on the {view.where}; "
            "free them (`ray list actors --filter state=ALIVE` shows who holds them; stop those "
            "jobs or actors) or lower serving.replicas, train.workers or train.worker_cpus"
        )


def model_gib(model: ModelRef) -> tuple[float, float]:
    """(parameters in billions, GiB of the weights in float32) of a prepared model, read from
    its safetensors files and config.json."""
    path = Path(model.path)
    size = sum(f.stat().st_size for f in path.glob("*.safetensors"))
    cfg = path / "config.json"
    dtype = json.loads(cfg.read_text()).get("torch_dtype", "float32") if cfg.is_file() else ""
    params = size / (2 if dtype in ("bfloat16", "float16") else 4)
    return params / 1e9, params * 4 / GIB


def _size(gib: float) -> str:
    return f"{gib:.2f} GiB" if gib >= 1 else f"{gib * 1024:.0f} MiB"


def memory_lines(config: Config, plan: Placement, models: dict[str, ModelRef]) -> list[str]:
    """Rough memory the servers and the trainer hold (the weights and what each engine
    reserves; activations come on top)."""
    s, t = config.serving, config.train
    out = []
    by_spec = {ref.spec: ref for ref in models.values()}
    for spec in sorted(by_spec):
        billions, fp32 = model_gib(by_spec[spec])
        on_gpu = plan.mode != "cpu"
        half = s.dtype in ("bfloat16", "float16") or (s.dtype == "auto" and on_gpu)
        weights = fp32 / 2 if half else fp32
        if config.backend == "hf":
            kv = "plus the KV cache of each batch"
        elif on_gpu:
            kv = (
                f"vLLM reserves serving.vllm_memory_fraction={s.vllm_memory_fraction:g} of each GPU"
            )
        else:
            kv = f"plus {s.vllm_kv_cache_gib:g} GiB of KV cache with vLLM"
        out.append(
            f"memory: {spec} ({billions * 1e3:,.0f}M parameters): {_size(weights)} of weights "
            f"per server replica x {plan.replicas} ({kv})"
        )
    _, fp32 = model_gib(models["actor"])
    per_worker = fp32 * (1.25 if t.lora else TRAIN_BYTES_PER_PARAM / 4)
    if t.algorithm == "dpo" or (t.algorithm in ("grpo", "rloo") and t.beta > 0):
        per_worker += fp32  # the reference model
    shard = t.workers if t.strategy == "fsdp" else 1
    out.append(
        f"memory: training about {_size(per_worker / shard)} per worker x {t.workers} "
        f"({'LoRA' if t.lora else 'weights, gradients and AdamW state in float32'}"
        f"{', sharded by fsdp' if shard > 1 else ''}; plus activations)"
    )
    return out
