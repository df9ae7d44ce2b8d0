"""Start the model servers a run needs: one pool per distinct model, shared by roles that use it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from evoforge.agents.models import ModelRef, resolve_model
from evoforge.agents.serving.placement import Placement
from evoforge.agents.serving.pool import ServerPool, ServerSpec
from evoforge.config import Config

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


def resolve_models(
    config: Config, resolve: Callable[[str, str], ModelRef] = resolve_model
) -> dict[str, ModelRef]:
    """The resolved model of each role, each distinct spec resolved once by ``resolve(spec,
    cache_dir)`` (a run gets these from preflight, ``Checked.models``)."""
    specs = model_specs(config)
    refs = {spec: resolve(spec, config.cache_dir) for spec in sorted(set(specs.values()))}
    return {role: refs[spec] for role, spec in specs.items()}


def pool_count(models: dict[str, ModelRef]) -> int:
    """Server pools of a run: one per distinct model directory (roles that share one share a pool)."""
    return len({ref.path for ref in models.values()})


def start_servers(
    config: Config,
    run_id: str,
    backend: str | None = None,
    placement: Placement | None = None,
    models: dict[str, ModelRef] | None = None,
) -> RoleServers:
    """One pool per distinct model of the roles, each as ``config.serving`` says and where the
    run's ``placement`` puts its replicas (``models``: the roles' resolved models, as preflight
    resolved them; resolved here when absent)."""
    refs = models if models is not None else resolve_models(config)
    pools: dict[str, ServerPool] = {}
    by_model: dict[str, ServerPool] = {}
    for role in ROLES:
        path = refs[role].path
        if path not in by_model:
            # A pool shared by several roles is named after the first (the actor: "policy").
            name = "policy" if role == "actor" else role
            spec = ServerSpec.from_config(config, path, backend or "")
            resources = None
            if placement is not None:
                spec = replace(spec, sleep_mode=placement.colocated)
                resources = placement.replica
            by_model[path] = ServerPool(
                run_id, name, spec, replicas=config.serving.replicas, resources=resources
            )
        pools[role] = by_model[path]
    return RoleServers(
        actor=pools["actor"], critic=pools["critic"], refiner=pools["refiner"], models=refs
    )
