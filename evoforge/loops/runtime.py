"""What every node of a run shares: config, run directory, environments, servers, trainer, metrics."""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evoforge.agents.roles import Roles
from evoforge.agents.search import SearchSettings
from evoforge.agents.serving.types import Sampling
from evoforge.envs.base import Environment, Task
from evoforge.loops.config import Config
from evoforge.loops.progress import Progress
from evoforge.loops.rundir import RunDir, read_json, read_jsonl, write_json
from evoforge.loops.servers import RoleServers
from evoforge.loops.state import RunState
from evoforge.loops.telemetry import record_node


@dataclass
class Runtime:
    config: Config
    rd: RunDir
    env: Environment
    guard: Environment | None
    servers: RoleServers
    progress: Progress
    run_id: str
    trainer: Any = None
    """The trainer actor handle (started on first use)."""
    roles: Roles = field(init=False)

    def __post_init__(self) -> None:
        c = self.config
        self.roles = Roles(
            actor=self.servers.actor,
            critic=self.servers.critic,
            refiner=self.servers.refiner,
            actor_sampling=Sampling(
                temperature=c.generation.temperature,
                top_p=c.generation.top_p,
                max_tokens=c.generation.max_tokens,
            ),
            critic_sampling=Sampling(
                temperature=c.critic.temperature, max_tokens=c.critic.max_tokens, n=c.critic.votes
            ),
            refiner_sampling=Sampling(
                temperature=c.refiner.temperature, max_tokens=c.refiner.max_tokens
            ),
            critic_template=c.prompts.critic,
            refiner_template=c.prompts.refiner,
            seed=c.seed,
        )

    # -- paths and records --------------------------------------------------------------------
    def rdir(self, state: RunState) -> Path:
        d = self.rd.round(state["round"])
        d.mkdir(parents=True, exist_ok=True)
        return d

    def tasks(self, state: RunState) -> dict[str, Task]:
        return {r["id"]: Task.from_json(r) for r in read_jsonl(self.rdir(state) / "tasks.jsonl")}

    def search_settings(self) -> SearchSettings:
        s = self.config.search
        return SearchSettings(
            strategy=s.strategy,
            children=s.children,
            keep=s.keep,
            max_depth=s.max_depth,
            threshold=s.threshold,
            node_budget=s.node_budget,
            value=s.value,
            adaptive_stop=s.adaptive_stop,
            use_env_feedback=self.config.refiner.use_env_feedback,
        )

    def base_model_path(self) -> str:
        return self.servers.models["actor"].path

    def kept_weights(self, state: RunState) -> str:
        """Weights of the last kept round, or the starting model."""
        k = state.get("last_kept", -1)
        return str(self.rd.model(k)) if k >= 0 else self.base_model_path()

    def last_eval_path(self, state: RunState) -> Path:
        """eval.json of the last kept round, or the baseline's."""
        k = state.get("last_kept", -1)
        return self.rd.round(k) / "eval.json" if k >= 0 else self.rd.baseline / "eval.json"

    def update_metrics(self, state: RunState, **values: Any) -> None:
        path = self.rdir(state) / "metrics.json"
        current = read_json(path) if path.exists() else {"round": state["round"]}
        for k, v in values.items():
            if isinstance(v, dict) and isinstance(current.get(k), dict):
                current[k].update(v)
            else:
                current[k] = v
        write_json(path, current)


def node(rt_attr: str = "rt") -> Callable:
    """Wrap a node method: time it, print a line, append events.jsonl, record seconds per node."""

    def deco(fn: Callable[[Any, RunState], dict[str, Any]]) -> Callable:
        name = fn.__name__

        @functools.wraps(fn)
        def wrapper(self, state: RunState) -> dict[str, Any]:
            rt: Runtime = getattr(self, rt_attr)
            start = time.time()
            pools = rt.servers.pools()
            for pool in pools:  # the dashboard shows each node's remote work by name
                pool.task_label = f"round{state.get('round', 0)}/{name}"
            busy = sum(p.busy_seconds() for p in pools)
            r = state.get("round", -1)
            _debug_delay(name, r, "start")
            update = fn(self, state) or {}
            # time inside the engines during this node (a restarted replica restarts its clock)
            engine = round(max(0.0, sum(p.busy_seconds() for p in pools) - busy), 3)
            seconds = round(time.time() - start, 3)
            counts = update.pop("_counts", {})
            restarts = sum(p.restarts for p in pools)
            if restarts:  # actors that died and were restarted (the batch was retried)
                counts["server_restarts"] = restarts
            rt.rd.event(round=r, node=name, seconds=seconds, engine_seconds=engine, **counts)
            record_node(rt.run_id, r, name, seconds, engine, counts)
            if r >= 0 and name != "baseline":
                key = f"{name}@{state.get('level', 0)}" if name in ("expand", "judge") else name
                rt.update_metrics(state, seconds={key: seconds}, engine_seconds={key: engine})
                if restarts:
                    rt.update_metrics(state, server_restarts=restarts)
            shown = ", ".join(
                f"{k}={v}" for k, v in counts.items() if not isinstance(v, dict | list)
            )
            rt.progress.line(f"[round {r}] {name:<9} {seconds:7.1f}s  {shown}")
            _debug_delay(name, r, "end")
            return update

        return wrapper

    return deco


def _debug_delay(name: str, round_: int, phase: str) -> None:
    """Fault-injection window for crash tests (and for looking at a live dashboard).

    EVOFORGE_DEBUG_DELAY="NODE[@ROUND][:end]=SECONDS" pauses at the start of that node (or at
    its end: outputs written, the checkpoint not yet taken) and says so on stderr, so that a test
    can SIGKILL the run at a known point of the graph.
    """
    spec = os.environ.get("EVOFORGE_DEBUG_DELAY", "")
    where, _, secs = spec.partition("=")
    where, _, at = where.partition(":")
    node_name, _, at_round = where.partition("@")
    if (
        node_name == name
        and secs
        and (at or "start") == phase
        and (not at_round or int(at_round) == round_)
    ):
        print(
            f"evoforge debug: pausing at {phase} of round {round_} {name}",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(float(secs))
