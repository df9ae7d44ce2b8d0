"""A run's servers and trainer started on local Ray clusters told they have N GPUs (the engines
run on CPU): ``python -m tests.helpers.gpu_layout N[:key=value,...] ...`` starts one cluster
per argument in turn and prints what got scheduled on each as one JSON line."""

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
    from evoforge.round.servers import start_servers
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
    base = [a for a in sys.argv[1:] if "=" in a and ":" not in a]
    for scenario in (a for a in sys.argv[1:] if a not in base):
        gpus, _, extra = scenario.partition(":")
        overrides = base + [x for x in extra.split(",") if x]
        print(f"layout {gpus}:", json.dumps(main(int(gpus), overrides)), flush=True)
