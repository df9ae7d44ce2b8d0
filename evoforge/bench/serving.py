"""generate: evoforge's server pool against the raw engine; sync: in-place reload against a restart."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Any

from evoforge.agents.models import resolve_model
from evoforge.agents.serving import cluster
from evoforge.agents.serving.pool import ServerPool
from evoforge.agents.serving.types import GenRequest, Sampling
from evoforge.bench import server_spec
from evoforge.envs.registry import get_env
from evoforge.errors import EvoforgeError


def _prompts(n: int) -> list[GenRequest]:
    tasks = get_env("instructions").tasks("heldout", n, 0)
    return [GenRequest(t.messages, Sampling.greedy(0), id=t.id) for t in tasks]


def _with_tokens(reqs: list[GenRequest], max_tokens: int) -> list[GenRequest]:
    from dataclasses import replace

    return [replace(r, sampling=replace(r.sampling, max_tokens=max_tokens)) for r in reqs]


def raw_llm(path: str, **override: Any):
    """A ``vllm.LLM`` in this process with our server's engine arguments (``override`` replaces
    some of them), for benches that call the engine directly."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    import torch
    from vllm import LLM

    from evoforge.agents.serving.engine_base import configure_threads
    from evoforge.agents.serving.vllm_engine import engine_kwargs

    device = "cuda" if torch.cuda.is_available() else "cpu"
    spec = server_spec(path, "vllm")
    if device == "cpu":
        configure_threads(spec.threads)
        os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(max(1, int(spec.kv_cache_gib)))
    kwargs = engine_kwargs(
        path,
        max_model_len=spec.max_model_len,
        memory_fraction=spec.memory_fraction,
        dtype="float32" if device == "cpu" else "bfloat16",
        seed=spec.seed,
        kv_cache_gib=spec.kv_cache_gib,
        device=device,
    )
    return LLM(**(kwargs | override))


def _raw_vllm(
    path: str, batches: list[list[list[int]]], max_tokens: int
) -> tuple[float, list[float]]:
    """vllm.LLM.generate called directly, same engine arguments as our server."""
    from vllm import SamplingParams

    start = time.time()
    llm = raw_llm(path)
    cold = time.time() - start
    params = SamplingParams(temperature=0.0, max_tokens=max_tokens)
    rates = []
    for ids in batches:
        llm.generate([{"prompt_token_ids": x} for x in ids[:1]], params, use_tqdm=False)  # warm-up
        t = time.time()
        out = llm.generate([{"prompt_token_ids": x} for x in ids], params, use_tqdm=False)
        rates.append(sum(len(o.outputs[0].token_ids) for o in out) / (time.time() - t))
    del llm
    return cold, rates


def _raw_hf(
    path: str, batches: list[list[list[int]]], max_tokens: int
) -> tuple[float, list[float]]:
    """transformers generate called directly: left padding, greedy."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from evoforge.agents.serving.engine_base import configure_threads

    configure_threads(0)
    start = time.time()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    cold = time.time() - start
    rates = []
    for ids in batches:
        width = max(len(x) for x in ids)
        pad = tok.pad_token_id
        inp = torch.tensor([[pad] * (width - len(x)) + x for x in ids])
        att = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids])
        with torch.inference_mode():
            t = time.time()
            out = model.generate(
                input_ids=inp,
                attention_mask=att,
                max_new_tokens=max_tokens,
                do_sample=False,
                pad_token_id=pad,
                eos_token_id=tok.eos_token_id,
            )
            dt = time.time() - t
        new = out[:, width:]
        tokens = sum(int(((row != pad) & (row != tok.eos_token_id)).sum()) for row in new)
        rates.append(tokens / dt)
    return cold, rates


def bench_generate(model: str, backend: str, size: str) -> dict[str, Any]:
    """Throughput of the pool (one replica, through Ray) against the engine called directly."""
    path = resolve_model(model).path
    sizes = [1, 8, 32] if size == "full" else [1, 4]
    max_tokens = 64 if size == "full" else 8
    reqs = _with_tokens(_prompts(max(sizes)), max_tokens)
    info = cluster.connect()
    start = time.time()
    pool = ServerPool("bench", "policy", server_spec(path, backend))
    ours_cold = time.time() - start
    ours = []
    for b in sizes:
        pool.generate(reqs[:1])
        t = time.time()
        out = pool.generate(reqs[:b])
        ours.append(sum(r.completion_tokens[0] for r in out) / (time.time() - t))
    encode = pool.actors[0]
    import ray

    ids = ray.get(encode.encode_all.remote(reqs))
    pool.shutdown()
    if info.started_here:
        cluster.shutdown()
    batches = [ids[:b] for b in sizes]
    raw_cold, raw = (_raw_vllm if pool.backend == "vllm" else _raw_hf)(path, batches, max_tokens)
    table = [
        {
            "batch": b,
            "evoforge_tok_s": round(o, 1),
            "raw_tok_s": round(r, 1),
            "ratio": round(o / r, 3),
        }
        for b, o, r in zip(sizes, ours, raw, strict=True)
    ]
    return {
        "model": model,
        "backend": pool.backend,
        "max_tokens": max_tokens,
        "evoforge": {
            "cold_start_s": round(ours_cold, 2),
            "tokens_per_s": dict(zip(map(str, sizes), ours, strict=False)),
        },
        "baseline": {
            "name": f"{pool.backend} engine called directly",
            "cold_start_s": round(raw_cold, 2),
            "tokens_per_s": dict(zip(map(str, sizes), raw, strict=False)),
        },
        "ratio": ours[-1] / raw[-1],
        "target": 0.95,
        "table": table,
    }


def _perturbed(path: str, dest: str) -> str:
    """A copy of the model at ``path`` with every weight nudged (new weights of the same shape)."""
    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(path, dest)
    for f in os.listdir(dest):
        if f.endswith(".safetensors"):
            t = load_file(os.path.join(dest, f))
            save_file(
                {k: v + 1e-3 * torch.randn_like(v) for k, v in t.items()},
                os.path.join(dest, f),
                metadata={"format": "pt"},
            )
    return dest


def bench_sync(model: str, backend: str, size: str) -> dict[str, Any]:
    """load_weights in place against restarting the engine with the new weights.

    Each side is timed until the server is ready on the new weights (the load returned; the new
    actor answered ``info``). A greedy probe after each, outside the timing, checks that both
    serve the same new weights: its answer must equal between them and differ from the old
    weights'. Its time is reported too (time to the first answer)."""
    path = resolve_model(model).path
    tmp = tempfile.mkdtemp(prefix="evoforge-bench-sync-")
    try:
        new = _perturbed(path, os.path.join(tmp, "new"))
        probe = _with_tokens(_prompts(1), 4)
        info = cluster.connect()
        pool = ServerPool("bench", "policy", server_spec(path, backend))
        reloads, probes, answers = [], [], []
        engine_before = pool.info().engine_id
        old_answer = pool.generate(probe)[0].texts
        for target in (new, path, new):
            t = time.time()
            pool.load_weights(target)
            reloads.append(time.time() - t)
            t = time.time()
            answers.append(pool.generate(probe)[0].texts)
            probes.append(time.time() - t)
        same_engine = pool.info().engine_id == engine_before
        pool.shutdown()
        t = time.time()
        restarted = ServerPool("bench", "policy", server_spec(new, pool.backend))
        restart = time.time() - t
        t = time.time()
        restarted_answer = restarted.generate(probe)[0].texts
        restart_probe = time.time() - t
        restarted.shutdown()
        if info.started_here:
            cluster.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    in_place = sum(reloads) / len(reloads)
    probe_s = sum(probes) / len(probes)
    if not (answers[0] == answers[2] == restarted_answer and answers[1] == old_answer):
        raise EvoforgeError("sync bench: in-place weights answer unlike a fresh engine on them")
    first_answer = (restart + restart_probe) / (in_place + probe_s)
    return {
        "model": model,
        "backend": pool.backend,
        "evoforge": {
            "load_weights_s": [round(x, 3) for x in reloads],
            "mean_s": round(in_place, 3),
            "probe_s": round(probe_s, 3),
            "engine_unchanged": same_engine,
            "same_answer_as_restart": True,
            "weights_changed_answer": answers[0] != old_answer,
        },
        "baseline": {
            "name": "engine restart with the new weights",
            "restart_s": round(restart, 2),
            "probe_s": round(restart_probe, 3),
        },
        "ratio": restart / in_place,
        "ratio_to_first_answer": first_answer,
        "target": 10.0,
        "table": [
            {
                "in_place_s": round(in_place, 3),
                "restart_s": round(restart, 2),
                "ratio": round(restart / in_place, 1),
                "to_first_answer": round(first_answer, 1),
            }
        ],
    }
