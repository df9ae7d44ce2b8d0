"""A run's servers and trainer started on a local Ray cluster told it has N GPUs (the engines
run on CPU): ``layout(gpus, overrides)`` reports what got scheduled (tests.helpers.layouts calls
it on the cluster it started)."""

from __future__ import annotations


def layout(gpus: int, overrides: list[str]) -> dict:
    """Start the servers and the trainer of ``overrides`` on the connected cluster of ``gpus``
    declared GPUs, then stop them; what was scheduled and what stayed free."""
    import ray

    from evoforge.agents.serving import placement
    from evoforge.agents.serving.placement import ReplicaPlacement
    from evoforge.agents.serving.pool import ServerPool, ServerSpec
    from evoforge.agents.serving.types import GenRequest, Sampling
    from evoforge.config import load_config
    from evoforge.round.servers import start_servers
    from evoforge.training.actor import TrainerActor

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
    return out
