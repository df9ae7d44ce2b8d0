"""Driver of a run: the single controller that owns the run directory, the cluster and the servers."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from evoforge.agents.models import resolve_model
from evoforge.agents.serving.cluster import connect
from evoforge.agents.serving.types import GenRequest, Sampling
from evoforge.envs.registry import get_env
from evoforge.loops.config import Config, dump_yaml
from evoforge.loops.rundir import RunDir
from evoforge.loops.servers import model_specs, start_servers


@dataclass
class RunResult:
    """What a finished run returns to a script."""

    run_dir: str
    backend: str
    answered: int
    passed: int


def default_run_dir(config: Config) -> Path:
    env = re.sub(r"[^A-Za-z0-9_.-]+", "-", config.env).strip("-")
    return Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{env}"


def run(config: Config, quiet: bool = False) -> RunResult:
    """Start a run from a config (the Python API behind ``evoforge run``)."""
    env = get_env(config.env)
    for spec in set(model_specs(config).values()):  # fail on a bad model before anything is written
        resolve_model(spec, config.cache_dir)
    rd = RunDir(config.run_dir or default_run_dir(config))
    run_id = rd.path.name
    rd.create(dump_yaml(config), run_id)
    print(f"run directory: {rd.path}")
    try:
        cluster = connect(config.ray_address, config.dashboard_host)
        if cluster.dashboard_url:
            print(f"ray dashboard: {cluster.dashboard_url}  ({cluster.token_hint()})")
        servers = start_servers(config, run_id)
        print(f"serving {config.model} with {servers.actor.backend}")
        tasks = env.tasks("heldout", 4, config.seed)
        sampling = Sampling(temperature=0.0, max_tokens=config.generation.max_tokens)
        results = servers.actor.generate([GenRequest(t.messages, sampling, id=t.id) for t in tasks])
        passed = 0
        for t, r in zip(tasks, results, strict=True):
            v = env.verify(t, r.texts[0])
            passed += v.passed
            print(f"\n[{t.id}] {t.prompt}\n--- answer ({'pass' if v.passed else 'fail'}) ---\n{r.texts[0]}")
            if v.feedback:
                print(f"--- feedback: {v.feedback}")
        servers.shutdown()
        print(f"\n{passed}/{len(tasks)} passed\nrun directory: {rd.path}")
        return RunResult(run_dir=str(rd.path), backend=servers.actor.backend, answered=len(tasks), passed=passed)
    finally:
        rd.unlock()


def resume(run_dir: str, quiet: bool = False) -> RunResult:
    from evoforge.errors import EvoforgeError

    RunDir(run_dir).meta()
    raise EvoforgeError("resume needs the round graph (issue 3); nothing was changed")
