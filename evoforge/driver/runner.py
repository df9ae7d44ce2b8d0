"""Driver of a run: the single controller that owns the run directory, the cluster and the servers."""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evoforge import telemetry
from evoforge.agents.serving import cluster
from evoforge.config import RESUME_SAFE_KEYS, Config, load_config
from evoforge.config.loader import differences, dump_yaml, to_dict
from evoforge.driver import leftovers, termination
from evoforge.driver.preflight import Checked, validate
from evoforge.driver.report import write_report
from evoforge.driver.trackers import Trackers
from evoforge.errors import ConfigError, EvoforgeError
from evoforge.progress import Progress, say
from evoforge.round.graph import build_graph, graph_config, open_checkpointer, resume_renamed
from evoforge.round.runtime import Runtime, trainer_for
from evoforge.round.servers import start_servers
from evoforge.round.stages.pairs import SOURCES
from evoforge.storage.manifest import check_run
from evoforge.storage.rundir import RunDir, atomic_write_text, new_run_id
from evoforge.storage.store import evaluations
from evoforge.training.precision import describe as training_precision


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


def _drive(
    rd: RunDir, config: Config, checked: Checked, run_id: str, quiet: bool, initial: dict | None
) -> RunResult:
    """The run on the cluster preflight planned for (``checked``: its environments, the roles'
    models and the plan)."""
    env, guard, run_plan = checked.env, checked.guard, checked.plan
    assert run_plan is not None, "validate() plans every run"
    progress = Progress(quiet, config.progress_interval_s)
    cleaned = leftovers.clean(rd.path)  # what a killed driver of this run left running
    if cleaned:
        say(cleaned)
    temp_dir = tempfile.mkdtemp(prefix=leftovers.PREFIX)
    info = servers = trackers = trainer = None
    try:
        leftovers.record(rd.path, temp_dir)
        info = cluster.connect(config.ray_address, config.dashboard_host, temp_dir=temp_dir)
        termination.install()  # ray.init replaced the SIGTERM handler with its own
        leftovers.record(rd.path, temp_dir, info.session_dir, info.started_here)
        if info.dashboard_url:
            progress.line(f"ray dashboard: {info.dashboard_url}  ({info.token_hint()})")
        elif info.started_here:
            progress.line("ray dashboard: not available (it did not start); the run goes on")
        # The placement preflight planned, not a second one: preflight read the cluster this
        # connect() joins or starts. A cluster to join (ray_address, a Ray job's) preflight
        # joined itself, and the local cluster this process started already it read, so
        # connect() above is a no-op on both; a new local cluster starts with the CPU slots
        # preflight counted and the GPUs Ray detects, the detection preflight ran.
        plan = run_plan.placement
        progress.line(plan.describe())
        progress.line(training_precision(config.train.precision, plan.trainer_gpus > 0))
        trainer = trainer_for(config, run_id, plan)
        trainer.prepare()  # it imports TRL while the servers start
        servers = start_servers(config, run_id, placement=plan, models=checked.models)
        leftovers.record(rd.path, temp_dir, info.session_dir, info.started_here)  # and workers
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
            trainer=trainer,
        )
        saver = open_checkpointer(str(rd.graph_db))
        graph = build_graph(rt, saver)
        gcfg = graph_config(run_id, config.rounds, config.search.max_depth)
        if initial is None:
            initial = _resume(graph, gcfg, rd, config, servers)
        final = graph.invoke(initial, gcfg)
        rd.set_meta(finished=True, stop_reason=final.get("stop_reason", ""))
    finally:
        try:
            telemetry.end_run(run_id)
            if trainer is not None:
                trainer.stop()
            if servers is not None:
                servers.shutdown()
            if trackers is not None:
                trackers.close()
            if info is not None and info.started_here:
                cluster.shutdown()
                cluster.remove_session(info)
        finally:
            shutil.rmtree(temp_dir, ignore_errors=True)
            progress.close()
            leftovers.forget(rd.path)
    write_report(str(rd.path))
    result = summarize(rd)
    print_summary(result, env.name)
    return result


def _resume(graph, gcfg: dict, rd: RunDir, config: Config, servers) -> dict[str, Any] | None:
    """What a resumed run's graph starts from: its checkpoint (None), or a new run's state when
    it was killed before the first checkpoint (outputs are reused). The servers load the weights
    the run had reached."""
    resume_renamed(graph, gcfg)  # a run written before a node was renamed
    values = graph.get_state(gcfg).values or {}
    _check_weights(rd, values)
    if values.get("serving"):
        servers.actor.load_weights(str(rd.path / values["serving"]))
    return None if values else initial_state(config)


def _check_weights(rd: RunDir, state: dict[str, Any]) -> None:
    """The weights a resumed run will load (served, last kept) must still be in the run
    directory: a missing model is a one-line error here, not a failed server start."""
    kept = state.get("last_kept", -1)
    wanted = {rd.model(kept)} if kept >= 0 else set()
    if state.get("serving"):
        wanted.add(rd.path / state["serving"])
    for path in sorted(wanted):
        if not any(path.glob("*.safetensors")):
            raise EvoforgeError(
                f"run directory damaged: {path} holds no weights, but the run's state serves or "
                "keeps them; restore the directory from a copy, or start a new run"
            )


def summarize(rd: RunDir) -> RunResult:
    """Per round (round -1 is the baseline): pass rates, the comparison with the baseline and
    with the last kept round (delta, 95% interval, McNemar p), pairs by source, the judge's kappa."""
    meta = rd.meta()
    name = None
    rows = []
    for store, ev in evaluations(rd):
        name = name or next(iter(ev.heldout))
        h = ev.heldout[name]
        base = (ev.compare or {}).get("baseline", {}).get(name, {})
        last = (ev.compare or {}).get("last_kept", {}).get(name, {})
        m = store.metrics.read() if store.metrics.exists() else {}
        rows.append(
            {
                "round": ev.round,
                "kept": ev.kept,
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
                "guided_solved": (m.get("explore") or {}).get("solved"),
                "tool_use": tool_use(m),
                "kappa": (m.get("judge") or {}).get("kappa"),
                "reason": ev.reason or "",
            }
        )
    return RunResult(run_dir=str(rd.path), rounds=rows, stop_reason=meta.get("stop_reason", ""))


def tool_use(metrics: dict) -> str:
    """A multi-turn round's tool use in one line ('' for a single-turn round)."""
    own = metrics.get("trajectories")
    if not own:
        return ""
    guided = (metrics.get("explore") or {}).get("trajectories") or {}
    parts = [
        f"{own['turns_per_sample']:.2f} turns and {own['tool_calls_per_sample']:.2f} own calls "
        f"a sample ({own['calling_samples']}/{own['samples']} samples called)",
    ]
    if guided:
        parts.append(f"{guided['tool_calls_per_sample']:.2f} calls a guided sample")
    if own["errors"]:
        parts.append("failed " + ", ".join(f"{k} {n}" for k, n in own["errors"].items()))
    parts.append("ended " + ", ".join(f"{k} {n}" for k, n in own["ended"].items()))
    return "; ".join(parts)


def _fmt(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def print_summary(result: RunResult, env_name: str) -> None:
    """The run's closing table."""
    lines = [
        f"\nheldout pass rate on {env_name} (greedy), compared task by task with the baseline:",
        f"{'round':>8} {'strict':>7} {'loose':>7} {'delta':>7} {'p':>8} {'n':>5}"
        f"  {'pairs s/g/r/p':>13} {'kappa':>6}  kept",
    ]
    for r in result.rounds:
        label = "baseline" if r["round"] < 0 else str(r["round"])
        pairs = "/".join(str(r["pairs"].get(k, 0)) for k in SOURCES)
        kept = "" if r["round"] < 0 else ("yes" if r["kept"] else f"no ({r['reason']})")
        lines.append(
            f"{label:>8} {r['strict']:7.3f} {r['loose']:7.3f} {_fmt(r['delta'], '+7.3f'):>7} "
            f"{_fmt(r['p'], '8.2g'):>8} {r['n']:>5}  {pairs if r['round'] >= 0 else '':>13} "
            f"{_fmt(r['kappa'], '6.2f'):>6}  {kept}"
        )
    for r in result.rounds:
        if r.get("tool_use"):
            lines.append(f"  round {r['round']} tool use: {r['tool_use']}")
    groups = sorted({g for r in result.rounds for g in r["by_group"]})
    for g in groups:
        vals = "  ".join(
            f"{'base' if r['round'] < 0 else r['round']}: {r['by_group'][g]['strict']:.3f}"
            for r in result.rounds
            if g in r["by_group"]
        )
        lines.append(f"  strict on {g} tasks  {vals}")
    if result.stop_reason:
        lines.append(f"stopped early: {result.stop_reason}")
    lines.append(f"run directory: {result.run_dir}")
    for line in lines:
        say(line, sys.stdout)


def run(config: Config, quiet: bool = False) -> RunResult:
    """Start a run from a config (the Python API behind ``evoforge run``).

    Stopped by SIGTERM, it raises RunTerminated (exit 143 when uncaught, no traceback); by
    Ctrl-C, RunInterrupted. Both say how to resume the run, or that there is nothing to resume."""
    written: list[Path] = []
    with termination.run_scope(lambda: written[0] if written else None):
        path = Path(config.run_dir or default_run_dir(config))
        checked = validate(config, new_run_dir=path)
        rd = RunDir(path)
        run_id = new_run_id(path)
        rd.create(dump_yaml(config), run_id)
        written.append(rd.path)
        say(f"run directory: {rd.path}", sys.stdout)
        for note in checked.notes:
            say(note)
        try:
            return _drive(rd, config, checked, run_id, quiet, initial_state(config))
        finally:
            rd.unlock()


def resume(run_dir: str, quiet: bool = False, overrides: tuple[str, ...] = ()) -> RunResult:
    """Continue a stopped run from its last checkpoint; completed work is not redone.

    ``overrides`` (``key=value``) may change only the keys in RESUME_SAFE_KEYS; any other
    difference between config.yaml and the config the run started with is an error. Stopped by
    SIGTERM or Ctrl-C, it raises as :func:`run` does."""
    with termination.run_scope(lambda: run_dir):
        rd = RunDir(run_dir)
        meta = rd.meta()
        if meta.get("finished"):
            raise EvoforgeError(
                f"run {run_dir} already finished; start a new run (or `evoforge report {run_dir}`)"
            )
        check_run(rd.path)  # every file every manifest records, before anything runs
        rd.lock()
        try:
            config, changed = resume_config(rd, meta, overrides)
            checked = validate(config)
            if changed:
                atomic_write_text(rd.config_path, dump_yaml(config))
                rd.set_meta(config=to_dict(config))
                say(f"resuming with {', '.join(changed)}")
            rd.repair_events()
            say(f"resuming run directory: {rd.path}", sys.stdout)
            for note in checked.notes:
                say(note)
            return _drive(rd, config, checked, meta["run_id"], quiet, None)
        finally:
            rd.unlock()


def resume_config(
    rd: RunDir, meta: dict[str, Any], overrides: tuple[str, ...] = ()
) -> tuple[Config, list[str]]:
    """The config a run resumes with, and the (safe) keys that changed since it started.

    config.yaml must equal the config recorded in meta.json at the start, except for keys in
    RESUME_SAFE_KEYS, which an edit or an override may change."""
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if key not in RESUME_SAFE_KEYS:
            raise ConfigError(
                f"'{key}' cannot change when a run resumes (it would change what the run "
                f"computes midway); keys that can: {', '.join(RESUME_SAFE_KEYS)}"
            )
    if not rd.config_path.is_file() or not isinstance(meta.get("config"), dict):
        raise EvoforgeError(
            f"run directory damaged: {rd.config_path} or the config recorded in meta.json is "
            "missing; restore it from a copy, or start a new run"
        )
    config = load_config(rd.config_path, list(overrides))
    changed = differences(meta["config"], to_dict(config))
    unsafe = [d for d in changed if d.split(" ", 1)[0] not in RESUME_SAFE_KEYS]
    if unsafe:
        raise ConfigError(
            f"{rd.config_path} differs from the config the run started with: {', '.join(unsafe)}; "
            "undo the edit (a run cannot change what it computes midway) or start a new run; "
            f"keys that may change on resume: {', '.join(RESUME_SAFE_KEYS)}"
        )
    return config, changed
