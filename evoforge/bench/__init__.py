"""Side-by-side benchmarks: both sides measured in one process run, reported as a ratio.

``evoforge bench NAME [--model tiny|default|PATH] [--backend vllm|hf] [--json PATH]``. Each bench
prints a table and writes JSON with the machine, both sides' raw figures, and top-level
``ratio`` (oriented so that higher is better), ``target`` and ``met``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from evoforge.agents.serving.pool import ServerSpec
from evoforge.config import Config
from evoforge.errors import EvoforgeError


def server_spec(model_path: str, backend: str) -> ServerSpec:
    """A replica as a run with the default config would start it."""
    return ServerSpec.from_config(Config(), model_path, backend)


def machine() -> dict[str, Any]:
    import torch

    info = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        import vllm

        info["vllm"] = vllm.__version__
    except ImportError:
        pass
    return info


def finish(name: str, result: dict[str, Any], json_path: str | None) -> dict[str, Any]:
    """Add the common fields, print the table, write the JSON."""
    result = {
        "bench": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": machine(),
    } | result
    result["met"] = bool(result["ratio"] >= result["target"])
    print(
        f"\n{name}: ratio {result['ratio']:.3f} (target >= {result['target']}) -> "
        f"{'met' if result['met'] else 'MISSED'}"
    )
    for row in result.get("table", []):
        print("  " + "  ".join(f"{k}={v}" for k, v in row.items()))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {json_path}")
    return result


def run_bench(
    name: str,
    model: str = "tiny",
    backend: str = "vllm",
    json_path: str | None = None,
    size: str = "full",
) -> dict[str, Any]:
    from evoforge.bench import (
        kv_blocks,
        loop,
        pairs,
        sandbox,
        search,
        serving,
        train_passes,
        training,
    )

    benches = {
        "pairs": pairs.bench_pairs,
        "round": loop.bench_round,
        "sandbox": sandbox.bench_sandbox,
        "generate": serving.bench_generate,
        "kv-blocks": kv_blocks.bench_kv_blocks,
        "sync": serving.bench_sync,
        "train": train_passes.bench_train,
        "train-step": training.bench_train,
        "tree": search.bench_tree,
    }
    if name not in benches:
        raise EvoforgeError(f"unknown bench '{name}'; available: {', '.join(benches)}")
    return finish(name, benches[name](model=model, backend=backend, size=size), json_path)
