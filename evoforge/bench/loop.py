"""round: one real round of the loop, timed per node, and the share of its wall time spent inside
engine calls (generate, load_weights, timed in the server actors) and trainer calls (load, train,
save, timed in the trainer actor). The rest is orchestration: the driver's Python, Ray's
scheduling and transfers, verification, writing the run directory, LangGraph's checkpoints and
starting the trainer actor."""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

from evoforge.config import load_config
from evoforge.storage.rundir import RunDir, read_jsonl


def bench_round(model: str, backend: str, size: str) -> dict[str, Any]:
    """One round of `instructions`, or of `parity` for the tiny model: its random weights form no
    pairs on instructions, so the round would skip training."""
    from evoforge.driver.runner import run

    env = "parity" if model == "tiny" else "instructions"
    tasks, heldout, tokens = (16, 32, 96) if size == "full" else (4, 8, 16)
    tmp = tempfile.mkdtemp(prefix="evoforge-bench-round-")
    try:
        config = load_config(
            None,
            [
                f"model={model}",
                f"backend={backend}",
                f"env={env}",
                "rounds=1",
                f"tasks_per_round={tasks}",
                f"generation.max_tokens={tokens}",
                f"critic.max_tokens={tokens}",
                f"refiner.max_tokens={tokens}",
                f"eval.heldout_tasks={heldout}",
                f"eval.max_tokens={tokens}",
                "eval.guard_env=",
                f"run_dir={tmp}/run",
            ],
        )
        run(config, quiet=True)
        events = read_jsonl(RunDir(f"{tmp}/run").events_path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"env": env} | summarize_round(events, model, backend)


def summarize_round(events: list[dict[str, Any]], model: str, backend: str) -> dict[str, Any]:
    """Seconds per node of the first round and the share spent inside engines and the trainer.

    The round's wall time runs from the end of the baseline to the end of promote, so the time
    between nodes (checkpoints, routing) counts as orchestration too."""
    start = next(e["time"] for e in events if e["node"] == "baseline")
    nodes = [e for e in events if e["node"] != "baseline" and e.get("round") == 0]
    wall = nodes[-1]["time"] - start
    table: dict[str, dict[str, float]] = {}
    for e in nodes:
        row = table.setdefault(e["node"], {"seconds": 0.0, "inside": 0.0})
        row["seconds"] += e["seconds"]
        row["inside"] += e.get("engine_seconds", 0.0) + (e.get("trainer_seconds") or 0.0)
    inside = sum(r["inside"] for r in table.values())
    return {
        "model": model,
        "backend": backend,
        "evoforge": {
            "inside_engine_and_trainer_s": round(inside, 2),
            "per_node": {k: {n: round(v, 2) for n, v in r.items()} for k, r in table.items()},
        },
        "baseline": {"name": "wall time of the round", "wall_s": round(wall, 2)},
        "ratio": inside / wall,
        "target": 0.9,
        "table": [
            {
                "node": k,
                "seconds": round(r["seconds"], 2),
                "inside": round(r["inside"], 2),
                "share": round(r["inside"] / r["seconds"], 3) if r["seconds"] else None,
            }
            for k, r in table.items()
        ]
        + [{"node": "round", "seconds": round(wall, 2), "inside": round(inside, 2)}],
    }
