"""Driver of a run: the single controller that owns the run directory, the cluster and the servers."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evoforge.agents.models import resolve_model
from evoforge.agents.serving import cluster, placement
from evoforge.agents.serving.engine_base import prompt_ids, too_long
from evoforge.config import Config, load_config
from evoforge.config_loader import dump_yaml
from evoforge.envs.check import check_env
from evoforge.envs.multiturn import is_multiturn, tool_map
from evoforge.envs.registry import get_env
from evoforge.errors import EvoforgeError
from evoforge.loops.graph import build_graph, graph_config, open_checkpointer
from evoforge.loops.progress import Progress
from evoforge.loops.report import write_report
from evoforge.loops.rundir import RunDir, read_json
from evoforge.loops.runtime import Runtime
from evoforge.loops.servers import model_specs, start_servers
from evoforge.loops.trackers import Trackers, check_trackers


@dataclass
class RunResult:
    """What a finished run returns to a script."""

    run_dir: str
    rounds: list[dict[str, Any]] = field(default_factory=list)
    """Per round (round -1 is the baseline): round, kept, strict, loose, ci95, n, by_group,
    delta / delta_ci95 / p against the baseline, p_last_kept, pairs (by source), kappa, reason."""
    stop_reason: str = ""


def initial_state(config: Config) -> dict[str, Any]:
    """The graph state a new run starts from."""
    return {
        "round": 0,
        "rounds": config.rounds,
        "last_kept": -1,
        "no_gain": 0,
        "serving": "",
        "stop": False,
        "stop_reason": "",
    }


def default_run_dir(config: Config) -> Path:
    env = re.sub(r"[^A-Za-z0-9_.-]+", "-", config.env).strip("-")
    return Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{env}"


def _validate(config: Config):
    """Everything that can be checked before a run directory is written."""
    if config.train.algorithm == "ppo":
        raise EvoforgeError(
            "train.algorithm=ppo: TRL 1.16 ships no PPO trainer (it was removed upstream); use "
            "grpo or rloo, which learn on-policy from the environment's rewards without a value model"
        )
    placement.static_checks(config)
    check_trackers(config)
    env = get_env(config.env, config.data)
    if config.train.algorithm in ("grpo", "rloo") and is_multiturn(env):
        raise EvoforgeError(
            f"train.algorithm={config.train.algorithm}: environment '{env.name}' is multi-turn "
            "(it gives tools) and evoforge's on-policy trainers sample one completion per prompt; "
            "use train.algorithm=dpo or sft"
        )
    report = check_env(env, n=4, seed=config.seed)
    if not report.ok:
        raise EvoforgeError(
            report.problems[0] + f" (run `evoforge envs check {config.env}` for all checks)"
        )
    guard = (
        get_env(config.eval.guard_env)
        if config.eval.guard_env and config.eval.guard_env != config.env
        else None
    )
    for spec in set(model_specs(config).values()):
        resolve_model(spec, config.cache_dir)
    _check_context(config, env)
    if config.ray_address and not cluster.reachable(config.ray_address):
        raise EvoforgeError(
            f"cannot reach the Ray cluster at ray_address='{config.ray_address}'; start it with "
            "`ray start --head` or leave ray_address empty for a local cluster"
        )
    return env, guard


def _check_context(config: Config, env) -> None:
    """Sample prompts of each split must leave room for an answer in the context window: a task
    family that does not fit fails here, before a run directory exists, not hours in.

    A multi-turn environment's prompts count its tools' specs as the model sees them, and must
    also leave room for a turn in training (``train.max_length``): a longer prompt would be
    dropped or its turn cut off by the trainer."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model(config.model, config.cache_dir).path)
    window, answer = config.serving.max_model_len, config.generation.max_tokens
    multi = is_multiturn(env)
    for split in ("train", "heldout"):
        for task in env.tasks(split, 4, config.seed):
            specs = [t.spec() for t in tool_map(env, task).values()] if multi else ()
            n = len(prompt_ids(tok, task.messages, specs))
            if n + answer > window:
                raise too_long(task.id, n, window, answer)
            if multi and n + answer > config.train.max_length:
                raise EvoforgeError(
                    f"prompt of '{task.id}' has {n} tokens with its tools plus {answer} answer "
                    f"tokens (generation.max_tokens) but train.max_length is "
                    f"{config.train.max_length}; raise train.max_length to at least {n + answer}"
                )


def _drive(
    rd: RunDir, config: Config, env, guard, run_id: str, quiet: bool, initial: dict | None
) -> RunResult:
    progress = Progress(quiet)
    info = cluster.connect(config.ray_address, config.dashboard_host)
    servers = trackers = None
    try:
        if info.dashboard_url:
            progress.line(f"ray dashboard: {info.dashboard_url}  ({info.token_hint()})")
        plan = placement.plan(
            config, len(set(model_specs(config).values())), *placement.cluster_gpus()
        )
        progress.line(plan.describe())
        servers = start_servers(config, run_id, placement=plan)
        trackers = Trackers.open(config, rd, run_id)
        progress.line(
            f"serving {config.model} with {servers.actor.backend} "
            f"({len(servers.pools())} pool(s), {config.serving.replicas} replica(s) each)"
        )
        rt = Runtime(
            config=config,
            rd=rd,
            env=env,
            guard=guard,
            servers=servers,
            progress=progress,
            run_id=run_id,
            placement=plan,
            trackers=trackers,
        )
        saver = open_checkpointer(str(rd.graph_db))
        graph = build_graph(rt, saver)
        gcfg = graph_config(run_id, config.rounds, config.search.max_depth)
        if initial is None:  # resuming: the servers must hold the weights the run had reached
            snapshot = graph.get_state(gcfg)
            if (
                not snapshot.values
            ):  # killed before the first checkpoint: start over (outputs are reused)
                initial = initial_state(config)
            serving = (snapshot.values or {}).get("serving", "")
            if serving:
                for pool in servers.pools():
                    if pool is servers.actor:
                        pool.load_weights(str(rd.path / serving))
        final = graph.invoke(initial, gcfg)
        rd.set_meta(finished=True, stop_reason=final.get("stop_reason", ""))
    finally:
        if servers is not None:
            servers.shutdown()
        if trackers is not None:
            trackers.close()
        if info.started_here:
            cluster.shutdown()
        progress.close()
    write_report(str(rd.path))
    result = summarize(rd)
    print_summary(result, env.name)
    return result


def summarize(rd: RunDir) -> RunResult:
    """Per round (round -1 is the baseline): pass rates, the comparison with the baseline and
    with the last kept round (delta, 95% interval, McNemar p), pairs by source, the judge's kappa."""
    meta = rd.meta()
    name = None
    rows = []
    for p in rd.eval_paths():
        ev = read_json(p)
        name = name or next(iter(ev["heldout"]))
        h = ev["heldout"][name]
        base = ev.get("compare", {}).get("baseline", {}).get(name, {})
        last = ev.get("compare", {}).get("last_kept", {}).get(name, {})
        m = read_json(p.parent / "metrics.json") if (p.parent / "metrics.json").exists() else {}
        rows.append(
            {
                "round": ev["round"],
                "kept": ev.get("kept"),
                "strict": h["strict"],
                "loose": h["loose"],
                "ci95": h["ci95"],
                "n": h["n"],
                "by_group": h.get("by_group", {}),
                "delta": base.get("delta"),
                "delta_ci95": base.get("ci95"),
                "p": base.get("p"),
                "p_last_kept": last.get("p"),
                "pairs": m.get("pairs_by_source", {}),
                "kappa": (m.get("judge") or {}).get("kappa"),
                "reason": ev.get("reason", ""),
            }
        )
    return RunResult(run_dir=str(rd.path), rounds=rows, stop_reason=meta.get("stop_reason", ""))


def _fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def print_summary(result: RunResult, env_name: str) -> None:
    """The run's closing table."""
    print(f"\nheldout pass rate on {env_name} (greedy), compared task by task with the baseline:")
    print(
        f"{'round':>8} {'strict':>7} {'loose':>7} {'delta':>7} {'p':>8} {'n':>5}"
        f"  {'pairs s/r/p':>11} {'kappa':>6}  kept"
    )
    for r in result.rounds:
        label = "baseline" if r["round"] < 0 else str(r["round"])
        pairs = "/".join(str(r["pairs"].get(k, 0)) for k in ("sampled", "refined", "partial"))
        kept = "" if r["round"] < 0 else ("yes" if r["kept"] else f"no ({r['reason']})")
        print(
            f"{label:>8} {r['strict']:7.3f} {r['loose']:7.3f} {_fmt(r['delta'], '+7.3f'):>7} "
            f"{_fmt(r['p'], '8.2g'):>8} {r['n']:>5}  {pairs if r['round'] >= 0 else '':>11} "
            f"{_fmt(r['kappa'], '6.2f'):>6}  {kept}"
        )
    groups = sorted({g for r in result.rounds for g in r["by_group"]})
    for g in groups:
        vals = "  ".join(
            f"{'base' if r['round'] < 0 else r['round']}: {r['by_group'][g]['strict']:.3f}"
            for r in result.rounds
            if g in r["by_group"]
        )
        print(f"  strict on {g} tasks  {vals}")
    if result.stop_reason:
        print(f"stopped early: {result.stop_reason}")
    print(f"run directory: {result.run_dir}")


def run(config: Config, quiet: bool = False) -> RunResult:
    """Start a run from a config (the Python API behind ``evoforge run``)."""
    env, guard = _validate(config)
    rd = RunDir(config.run_dir or default_run_dir(config))
    run_id = rd.path.name
    rd.create(dump_yaml(config), run_id)
    print(f"run directory: {rd.path}")
    try:
        return _drive(rd, config, env, guard, run_id, quiet, initial_state(config))
    finally:
        rd.unlock()


def resume(run_dir: str, quiet: bool = False) -> RunResult:
    """Continue a stopped run from its last checkpoint; completed work is not redone."""
    rd = RunDir(run_dir)
    meta = rd.meta()
    if meta.get("finished"):
        raise EvoforgeError(
            f"run {run_dir} already finished; start a new run (or `evoforge report {run_dir}`)"
        )
    rd.lock()
    try:
        config = load_config(rd.config_path)
        env, guard = _validate(config)
        print(f"resuming run directory: {rd.path}")
        return _drive(rd, config, env, guard, meta["run_id"], quiet, None)
    finally:
        rd.unlock()
