"""Start the model servers a run needs: one pool per distinct model, shared by roles that use it."""

from __future__ import annotations

from dataclasses import dataclass

from evoforge.agents.models import ModelRef, resolve_model
from evoforge.agents.serving.pool import ServerPool, ServerSpec
from evoforge.loops.config import Config

ROLES = ("actor", "critic", "refiner")


@dataclass
class RoleServers:
    """The pool each role talks to; roles that share a model share a pool (SPaR's single model)."""

    actor: ServerPool
    critic: ServerPool
    refiner: ServerPool
    models: dict[str, ModelRef]

    def pools(self) -> list[ServerPool]:
        seen: dict[int, ServerPool] = {}
        for p in (self.actor, self.critic, self.refiner):
            seen.setdefault(id(p), p)
        return list(seen.values())

    def shutdown(self) -> None:
        for p in self.pools():
            p.shutdown()


def model_specs(config: Config) -> dict[str, str]:
    """The model spec of each role (empty role specs fall back to the actor's model)."""
    return {
        "actor": config.model,
        "critic": config.critic.model or config.model,
        "refiner": config.refiner.model or config.model,
    }


def start_servers(config: Config, run_id: str, backend: str | None = None) -> RoleServers:
    specs = model_specs(config)
    refs = {role: resolve_model(spec, config.cache_dir) for role, spec in specs.items()}
    pools: dict[str, ServerPool] = {}
    by_model: dict[str, ServerPool] = {}
    for role in ROLES:
        path = refs[role].path
        if path not in by_model:
            # A pool shared by several roles is named after the first (the actor: "policy").
            name = "policy" if role == "actor" else role
            s = config.serving
            spec = ServerSpec(
                model_path=path,
                backend=backend or config.backend,
                max_model_len=s.max_model_len,
                hf_batch_size=s.hf_batch_size,
                threads=s.threads,
                dtype=s.dtype,
                memory_fraction=s.vllm_memory_fraction,
                seed=config.seed,
                start_timeout_s=s.vllm_start_timeout_s,
                kv_cache_gib=s.vllm_kv_cache_gib,
            )
            by_model[path] = ServerPool(run_id, name, spec, replicas=s.replicas)
        pools[role] = by_model[path]
    return RoleServers(
        actor=pools["actor"], critic=pools["critic"], refiner=pools["refiner"], models=refs
    )
