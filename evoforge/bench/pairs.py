"""pairs: verified preference pairs per engine-minute, evoforge's round against a SPaR-style round,
and within evoforge's round each source against the others: sampling alone, guided exploration
and the tree search (both on the tasks no sample passed), each per minute of its own engine time.

Both sides start from the same tasks and the same served model, one after the other in one run:
- evoforge: ``generation.samples`` answers per task (one request with n completions), every one
  verified, guided exploration and (for the comparison, on the same tasks) the tree search on the
  tasks no sample passed, the judge measured on a balanced sample and benched at chance,
  pairs = sampled + guided + refined (each chosen passes the verifier and each
  rejected fails it);
- SPaR-style: one answer per task, the judge's k votes decide which failed, a judge-valued tree
  search refines those, pairs = (accepted refinement, original), kept only when the verifier
  agrees (chosen passes, rejected fails).
Engine seconds are timed inside the server actors. The round's utilization is the evoforge
side's generated tokens (samples, critiques, refinements) per second over its wall time, divided by the engine's peak tokens per
second at its best batch size (measured in the same run).
"""

from __future__ import annotations

import random
import time
from dataclasses import replace
from typing import Any

from evoforge.agents.models import resolve_model
from evoforge.agents.roles import Roles
from evoforge.agents.search import Node, SearchSettings, TreeSearch
from evoforge.agents.serving import cluster
from evoforge.agents.serving.pool import ServerPool
from evoforge.agents.serving.types import GenRequest, Sampling
from evoforge.bench import server_spec
from evoforge.config import Config, load_config
from evoforge.envs.registry import get_env
from evoforge.envs.verify import safe_verify
from evoforge.progress import say
from evoforge.round.stages.critique import calibration_items, reliability, search_roots
from evoforge.round.stages.explore import guided_items
from evoforge.round.stages.pairs import filter_pairs, guided_pairs, refined_pairs, sampled_pairs
from evoforge.storage.records import SampleVerdict
from evoforge.storage.store import GuidedSamples


def _evoforge_side(cfg: Config, roles: Roles, env, tasks: dict, pool: ServerPool) -> dict[str, Any]:
    """The round's pair sources on the same tasks, each phase's engine seconds apart: sampling,
    guided exploration of the tasks no sample passed, and the tree search on the same tasks."""
    phases: dict[str, float] = {}

    def timed(name: str, fn, *args):
        busy = pool.busy_seconds()
        out = fn(*args)
        phases[name] = round(phases.get(name, 0.0) + pool.busy_seconds() - busy, 2)
        return out

    answers = timed("sampling", roles.answer, list(tasks.values()), "bench")
    samples = {a.id: a.texts for a in answers}
    tokens = sum(sum(a.completion_tokens) for a in answers)
    verdicts = {
        tid: [SampleVerdict.of(safe_verify(env, tasks[tid], x)) for x in texts]
        for tid, texts in samples.items()
    }
    guided = timed("guided", _guided, cfg, roles, env, tasks, verdicts)
    items = calibration_items(samples, verdicts, cfg.critic.calibration_answers, random.Random(0))
    judged = timed("search", roles.judge, [(f"{t}@{i}", tasks[t], samples[t][i]) for t, i in items])
    judge = reliability(
        [j.value for j in judged],
        [verdicts[t][i].passed for t, i in items],
        cfg.critic.min_kappa,
    )
    search = TreeSearch(
        roles, env, tasks, SearchSettings.from_config(cfg), judge_weight=judge["weight"]
    )
    roots = search_roots(samples, verdicts, cfg.search.max_tasks)
    state = timed("search", lambda: (search.score(roots), search.run(roots))[1]) if roots else None
    by_source: dict[str, list] = {"sampled": [], "guided": [], "refined": []}
    for tid, texts in samples.items():
        by_source["sampled"] += sampled_pairs(tasks[tid], texts, verdicts[tid], cfg.pairs.per_task)
        mine = [g for g in guided if g.task_id == tid]
        by_source["guided"] += guided_pairs(
            tasks[tid], texts, verdicts[tid], mine, cfg.pairs.per_task
        )
    if state is not None:
        by_source["refined"] = refined_pairs(tasks, state, require_verifier=True)[0]
    kept, _ = filter_pairs([p for ps in by_source.values() for p in ps], cfg.pairs.max_length_ratio)
    return {"pairs": kept, "judge": judge, "sample_tokens": tokens, "phases": phases}


def _guided(cfg: Config, roles: Roles, env, tasks: dict, verdicts: dict) -> list[GuidedSamples]:
    """Guided samples of the tasks no sample passed (the explore stage's choices)."""
    items = guided_items(env, tasks, verdicts, cfg.explore)
    answers = roles.explore(items, cfg.explore.samples, key="bench") if items else []
    return [
        GuidedSamples(
            t.id, g.kind, texts, [SampleVerdict.of(safe_verify(env, t, x)) for x in texts]
        )
        for (t, g), texts in zip(items, answers, strict=True)
    ]


def _spar_side(cfg: Config, roles: Roles, env, tasks: dict) -> dict[str, Any]:
    one = replace(roles, actor_sampling=replace(roles.actor_sampling, n=1))
    answers = one.answer(list(tasks.values()), key="bench-spar")
    settings = replace(SearchSettings.from_config(cfg), value="judge")
    search = TreeSearch(one, env, tasks, settings, judge_weight=1.0)
    roots = [
        Node(id=f"{a.id}#0", task_id=a.id, parent=None, depth=0, response=a.texts[0])
        for a in answers
    ]
    search.score(roots)  # the judge decides which answers failed, as in SPaR
    failed = [n for n in roots if n.value is None or n.value <= settings.threshold]
    state = search.run(failed)
    refined, _ = refined_pairs(tasks, state, require_verifier=True)
    kept, _ = filter_pairs(refined, cfg.pairs.max_length_ratio)
    return {"pairs": kept, "failed_by_judge": len(failed)}


def _timed(pool: ServerPool, fn, *args) -> tuple[dict[str, Any], float, float]:
    """fn's result (with the tokens the pool generated for it), engine seconds, wall seconds;
    one progress line on stderr before and after (each side takes minutes on a real model)."""
    name = fn.__name__.strip("_").removesuffix("_side")
    say(f"bench pairs: {name} side ...")
    busy, tokens, start = pool.busy_seconds(), pool.generated_tokens, time.time()
    out = fn(*args)
    out["generated_tokens"] = pool.generated_tokens - tokens
    wall = time.time() - start
    say(f"bench pairs: {name} side: {len(out['pairs'])} pairs in {wall:.0f} s")
    return out, pool.busy_seconds() - busy, wall


def _peak_tokens_per_s(pool: ServerPool, env, sizes: list[int], tokens: int) -> dict[int, float]:
    """Generated tokens per second at each batch size (sampled, fixed budget)."""
    prompts = env.tasks("heldout", max(sizes), 1)
    rates = {}
    for b in sizes:
        reqs = [
            GenRequest(t.messages, Sampling(temperature=1.0, max_tokens=tokens, seed=i), id=t.id)
            for i, t in enumerate(prompts[:b])
        ]
        start = time.time()
        out = pool.generate(reqs)
        rates[b] = sum(r.completion_tokens[0] for r in out) / (time.time() - start)
    return rates


def _by_source(ours: dict[str, Any]) -> tuple[dict[str, int], dict[str, float]]:
    """Pairs by source, and each source's pairs per minute of the engine time it took."""
    phase = {"sampled": "sampling", "guided": "guided", "refined": "search"}
    by_source = {s: sum(p.source == s for p in ours["pairs"]) for s in phase}
    minutes = {s: max(ours["phases"].get(ph, 0.0) / 60, 1e-9) for s, ph in phase.items()}
    return by_source, {s: round(by_source[s] / minutes[s], 3) for s in phase}


def bench_pairs(model: str, backend: str, size: str) -> dict[str, Any]:
    """Verified pairs per engine-minute of both rounds on the same tasks (see module doc)."""
    env_name = "parity" if model == "tiny" else "instructions"
    n_tasks, tokens = (32, 192) if size == "full" else (12, 12)
    overrides = [f"model={model}", f"env={env_name}", f"generation.max_tokens={tokens}"]
    if size != "full":
        overrides += [
            f"critic.max_tokens={tokens}",
            f"refiner.max_tokens={tokens}",
            "critic.votes=2",
            "generation.samples=1",  # the tiny model passes parity often: one sample leaves
            # tasks with no pass for guidance and the search
        ]
    cfg = load_config(None, overrides)
    env = get_env(env_name)
    tasks = {t.id: t for t in env.tasks("train", n_tasks, 0)}
    info = cluster.connect()
    pool = ServerPool("bench", "policy", server_spec(resolve_model(model).path, backend))
    try:
        roles = Roles.from_config(cfg, pool, pool, pool)
        ours, ours_engine, ours_wall = _timed(pool, _evoforge_side, cfg, roles, env, tasks, pool)
        spar, spar_engine, spar_wall = _timed(pool, _spar_side, cfg, roles, env, tasks)
        sizes = [8, 32, 128] if size == "full" else [2, 8]
        say(f"bench pairs: engine peak at batch sizes {sizes} ...")
        peak = _peak_tokens_per_s(pool, env, sizes, tokens)
    finally:
        pool.shutdown()
        if info.started_here:
            cluster.shutdown()
    ours_rate = len(ours["pairs"]) / max(ours_engine / 60, 1e-9)
    spar_rate = len(spar["pairs"]) / max(spar_engine / 60, 1e-9)
    best = max(peak.values())
    utilization = ours["generated_tokens"] / ours_wall / best
    by_source, per_source = _by_source(ours)
    return {
        "model": model,
        "backend": pool.backend,
        "tasks": n_tasks,
        "evoforge": {
            "name": f"{cfg.generation.samples} verified samples per task + guidance and search where none passed",
            "pairs": len(ours["pairs"]),
            "pairs_by_source": by_source,
            "engine_seconds": round(ours_engine, 2),
            "wall_seconds": round(ours_wall, 2),
            "pairs_per_engine_minute": round(ours_rate, 3),
            "engine_seconds_by_phase": ours["phases"],
            "pairs_per_engine_minute_by_source": per_source,
            "judge": ours["judge"],
        },
        "baseline": {
            "name": "SPaR-style: one answer per task, judge-valued tree search",
            "pairs": len(spar["pairs"]),
            "failed_by_judge": spar["failed_by_judge"],
            "engine_seconds": round(spar_engine, 2),
            "wall_seconds": round(spar_wall, 2),
            "pairs_per_engine_minute": round(spar_rate, 3),
        },
        "utilization": {
            "generated_tokens": ours["generated_tokens"],
            "tokens_per_s": round(ours["generated_tokens"] / ours_wall, 1),
            "peak_tokens_per_s": {str(k): round(v, 1) for k, v in peak.items()},
            "share_of_peak": round(utilization, 3),
        },
        # no SPaR pair at all: the ratio counts it as one, so the figure stays finite and modest
        "ratio": ours_rate / max(spar_rate, 1 / max(spar_engine / 60, 1e-9)),
        "target": 10.0,
        "table": [
            {
                "evoforge_pairs": len(ours["pairs"]),
                "spar_pairs": len(spar["pairs"]),
                "evoforge_engine_s": round(ours_engine, 1),
                "spar_engine_s": round(spar_engine, 1),
                "utilization": round(utilization, 3),
            }
        ],
    }
