"""A run's servers and trainer started on a local Ray cluster told it has N GPUs (the engines
run on CPU): ``python -m tests.helpers.gpu_layout N key=value ...`` prints what got scheduled
as one JSON line. A separate process per cluster, since a process joins one Ray cluster."""

from __future__ import annotations

import json
import sys


def main(gpus: int, overrides: list[str]) -> dict:
    import ray

    from evoforge.agents.serving import cluster, placement
    from evoforge.agents.serving.placement import ReplicaPlacement
    from evoforge.agents.serving.pool import ServerPool, ServerSpec
    from evoforge.agents.serving.types import GenRequest, Sampling
    from evoforge.config import load_config
    from evoforge.loops.servers import start_servers
    from evoforge.training.actor import TrainerActor

    cluster.connect(num_cpus=12, num_gpus=gpus)
    config = load_config(None, overrides)
    plan = placement.plan(config, 1, *placement.cluster_gpus())
    servers = start_servers(config, "layout", placement=plan)
    hello = GenRequest(({"role": "user", "content": "hi"},), Sampling.greedy(4), id="x")
    answers = servers.actor.generate([hello] * len(servers.actor.actors))
    out = {
        "plan": plan.describe(),
        "mode": plan.mode,
        "replicas": len(servers.actor.actors),
        "answers": len(answers),
        "free_gpus_serving": ray.available_resources().get("GPU", 0.0),
    }
    trainer = TrainerActor("layout", 1, plan.trainer_gpus)
    ray.get(trainer._start().__ray_ready__.remote(), timeout=120)  # scheduled beside the servers
    out["free_gpus_training"] = ray.available_resources().get("GPU", 0.0)
    out["slept"] = servers.actor.sleep()  # the engines are on CPU: nothing to hand back
    servers.actor.wake()
    trainer.stop()
    if gpus >= 8:  # a replica of two GPU bundles (the shape of tensor parallelism)
        spec = ServerSpec.from_config(config, servers.models["actor"].path)
        wide = ServerPool("layout", "wide", spec, resources=ReplicaPlacement(1.0, 2))
        out["wide_answers"] = len(wide.generate([hello]))
        out["free_gpus_wide"] = ray.available_resources().get("GPU", 0.0)
        wide.shutdown()
    servers.shutdown()
    cluster.shutdown()
    return out


if __name__ == "__main__":
    print("layout:", json.dumps(main(int(sys.argv[1]), sys.argv[2:])), flush=True)
