"""Probe guided exploration on a real model (issue 24): how often guidance makes a sample pass
where plain sampling does not, per kind of guidance.

    .venv/bin/python scripts/guided_probe.py tools [--tasks 24] [--samples 4]
    .venv/bin/python scripts/guided_probe.py instructions [--tasks 64] [--samples 4]

``tools``: plain rollouts against guided ones (hint, the generic call opening, the env's call
opening, hint + opening) on the same train tasks; prints the share of trajectories that try a
call, that make a well-formed call, that pass, and the tasks with at least one pass.
``instructions``: 8 plain samples per task; on the tasks where none passed, ``--samples`` guided
samples per kind (feedback on the closest failed sample, hint, the env's prefix). Runs an engine
in process (vLLM by default: its prefix cache prefills the shared prompt once; ``--backend hf``),
sampling as config's generation section.
"""

from __future__ import annotations

import argparse
import time

from evoforge.agents.guidance import TOOL_CALL_OPENING, Guidance, guidance_for
from evoforge.agents.models import resolve_model
from evoforge.agents.roles import Roles
from evoforge.agents.rollout import guided_rollout, rollout
from evoforge.agents.serving.hf_engine import HFEngine
from evoforge.agents.serving.types import Sampling
from evoforge.config import Config
from evoforge.envs.instructions import InstructionsEnv
from evoforge.envs.toolcalls import call_text, parse_turn
from evoforge.envs.tools import ToolsEnv
from evoforge.envs.tools.catalogue import TOOLS


def _row(name: str, n: int, **counts: float) -> str:
    cells = "  ".join(f"{k} {v}/{n} ({v / max(1, n):.2f})" for k, v in counts.items())
    return f"{name:<14} {cells}"


def probe_tools(engine, args, sampling: Sampling) -> None:
    env = ToolsEnv()
    tasks = env.tasks("train", args.tasks, args.seed)
    for name in args.conditions.split(","):
        start = time.time()
        if name == "plain":
            trajs = rollout(engine, env, tasks, sampling, args.max_turns, args.seed, args.samples)
        else:
            items = []
            for t in tasks:
                hint, prefix = "Hint: " + env.hint(t), env.response_prefix(t)
                first = t.metadata["calls"][0]
                whole = call_text(first["name"], first["arguments"])
                g = {
                    "hint": Guidance("hint", hint),
                    "prefix-generic": Guidance("prefix", prefix=TOOL_CALL_OPENING),
                    "prefix-env": Guidance("prefix", prefix=prefix),
                    "hint+prefix": Guidance("hint+prefix", hint, prefix),
                    "prefix-call": Guidance("prefix", prefix=whole),
                    "hint+call": Guidance("hint+prefix", hint, whole),
                }[name]
                items.append((t, g))
            trajs = guided_rollout(
                engine, env, items, sampling, args.max_turns, args.seed, args.samples, key=name
            )
        tried = called = passed = 0
        solved = set()
        for tr in trajs:
            turns = [parse_turn(tr.turn_text(i), TOOLS) for i in range(len(tr.turns))]
            tried += any(p.attempted for p in turns)
            called += any(r.calls for r in tr.turns)
            ok = env.verify(tr.task, tr.messages).passed
            passed += ok
            if ok:
                solved.add(tr.task.id)
            assert tr.messages[: len(tr.task.messages)] == list(tr.task.messages)
        print(
            _row(name, len(trajs), tries_call=tried, well_formed_call=called, passes=passed)
            + f"  tasks_solved {len(solved)}/{len(tasks)}  {time.time() - start:.0f}s",
            flush=True,
        )
        if args.show:
            print("   e.g.", repr(trajs[0].turn_text(0)[:200]))


def probe_instructions(engine, args, sampling: Sampling) -> None:
    from dataclasses import replace

    env = InstructionsEnv()
    tasks = env.tasks("train", args.tasks, args.seed)
    roles = Roles(
        engine, engine, engine, replace(sampling, n=8), sampling, sampling, seed=args.seed
    )
    start = time.time()
    plain = roles.answer(tasks, key="probe")
    failed, feedback = [], {}
    for t, res in zip(tasks, plain, strict=True):
        verdicts = [env.verify(t, x) for x in res.texts]
        if not any(v.passed for v in verdicts):
            failed.append(t)
            feedback[t.id] = max(verdicts, key=lambda v: v.score).feedback
    print(
        f"plain: {len(tasks) - len(failed)}/{len(tasks)} tasks with a pass in 8 samples; "
        f"{len(failed)} never pass  {time.time() - start:.0f}s",
        flush=True,
    )
    by_kind: dict[str, list] = {}
    for t in failed:
        for g in guidance_for(env, t, feedback[t.id], combine=True):
            by_kind.setdefault(g.kind, []).append((t, g))
    for kind, items in by_kind.items():
        start = time.time()
        answers = roles.explore(items, args.samples, key="probe")
        passes, solved, types = 0, 0, {}
        for (t, g), texts in zip(items, answers, strict=True):
            assert all(x.startswith(g.prefix) for x in texts)
            ok = [env.verify(t, x).passed for x in texts]
            passes += sum(ok)
            solved += any(ok)
            if any(ok):
                for tag in t.tags:
                    types[tag] = types.get(tag, 0) + 1
        n = len(items) * args.samples
        print(
            f"{kind:<12} applies to {len(items)}/{len(failed)} failed tasks; "
            f"passes {passes}/{n} ({passes / max(1, n):.2f}); tasks solved {solved}/{len(items)}"
            f"  {time.time() - start:.0f}s  solved types {dict(sorted(types.items()))}",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("env", choices=["tools", "instructions"])
    ap.add_argument("--model", default="default")
    ap.add_argument("--backend", choices=["hf", "vllm"], default="vllm")
    ap.add_argument("--tasks", type=int, default=24)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-turns", type=int, default=Config().generation.max_turns)
    ap.add_argument("--max-tokens", type=int, default=Config().generation.max_tokens)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument(
        "--conditions",
        default="plain,hint,prefix-generic,prefix-env,hint+prefix",
        help="tools: which of plain, hint, prefix-generic, prefix-env, hint+prefix, prefix-call "
        "(the whole first call forced), hint+call to run",
    )
    ap.add_argument("--show", action="store_true", help="print the first turn of one trajectory")
    args = ap.parse_args()
    g = Config().generation
    path = resolve_model(args.model).path
    if args.backend == "vllm":  # prefix caching: the long tool prompt is prefilled once
        from evoforge.agents.serving.vllm_engine import VLLMEngine

        s = Config().serving
        engine = VLLMEngine(
            path,
            max_model_len=2048,
            memory_fraction=s.vllm_memory_fraction,
            threads=0,
            dtype="auto",
            seed=args.seed,
            kv_cache_gib=s.vllm_kv_cache_gib,
        )
    else:
        engine = HFEngine(
            path, max_model_len=2048, batch_size=args.batch_size, threads=0, dtype="auto"
        )
    sampling = Sampling(temperature=g.temperature, top_p=g.top_p, max_tokens=args.max_tokens)
    print(
        f"model={args.model} temperature={g.temperature} max_tokens={args.max_tokens}", flush=True
    )
    (probe_tools if args.env == "tools" else probe_instructions)(engine, args, sampling)


if __name__ == "__main__":
    main()
