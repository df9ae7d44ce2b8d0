"""A model server that died for want of memory while starting: how to tell, and which knob sizes
the memory of its engine (named in the one-line error instead of Ray's traceback)."""

from __future__ import annotations

import re
from typing import Any

from evoforge.errors import EvoforgeError

_LOW_MEMORY = re.compile(
    r"OutOfMemoryError|running low on memory|memory usage threshold|out of memory", re.I
)
"""What Ray (its memory monitor kills the newest worker past the threshold), CUDA and vLLM say
when a process was killed, or failed, for want of memory."""
_VLLM_MEMORY = re.compile(
    r"less than requested memory for kv|VLLM_CPU_KVCACHE_SPACE|gpu_memory_utilization|"
    r"memory for the cache blocks",
    re.I,
)
"""vLLM refusing to start because the memory its KV cache asks for is not there (vLLM-CPU: more
than the node's free RAM; CUDA: more than the GPU's free memory, or none left for the cache):
its message names its own knob, which evoforge sets from a config field."""


class ServerOutOfMemory(EvoforgeError):
    """A model server was killed for memory (or ran out of it) while starting."""


def killed_for_memory(error: BaseException) -> bool:
    """Whether ``error`` (from ray.get on a server) says the server died for want of memory."""
    import ray

    return isinstance(error, ray.exceptions.OutOfMemoryError) or bool(
        _LOW_MEMORY.search(f"{type(error).__name__}: {error}")
    )


def short_of_memory(error: BaseException) -> bool:
    """Whether ``error`` says the server was killed for memory, or could not get what its KV
    cache asks for."""
    return killed_for_memory(error) or bool(_VLLM_MEMORY.search(str(error)))


def memory_detail(error: BaseException) -> str:
    """The line of the server's error that says what memory was missing, cut to 200 characters."""
    lines = [x.strip() for x in str(getattr(error, "cause", None) or error).splitlines()]
    lines = [x for x in lines if x] or [type(error).__name__]
    said = next((x for x in lines if _LOW_MEMORY.search(x) or _VLLM_MEMORY.search(x)), lines[-1])
    return said[:200]


def memory_hint(spec: Any, gpu: bool, error: BaseException | None = None) -> str:
    """The knob that sizes a starting server's memory (``spec``: its ServerSpec), with its value (``error``: what the server
    said, when it tells which way to turn it)."""
    if spec.backend == "vllm" and gpu and "cache blocks" in str(error):
        return (
            "raise serving.vllm_memory_fraction (vLLM's gpu_memory_utilization, now "
            f"{spec.memory_fraction:g}): the model left no room for the KV cache"
        )
    if spec.backend == "vllm" and gpu:
        return (
            "lower serving.vllm_memory_fraction (vLLM's gpu_memory_utilization, now "
            f"{spec.memory_fraction:g})"
        )
    if spec.backend == "vllm":
        return (
            f"lower serving.vllm_kv_cache_gib (vLLM-CPU's KV cache space, now {spec.kv_cache_gib:g} "
            "GiB)"
        )
    return f"lower serving.hf_batch_size (now {spec.hf_batch_size}) or serve a smaller model"
