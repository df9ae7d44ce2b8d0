"""train: optimizer steps per second of the round's DPO trainer, three A/B pairs in one run.

- precision: float32 against bf16 mixed precision (``train.precision``);
- reference: DPO reference log-probs computed once before training (``precompute_ref_log_probs``)
  against a reference forward at every step;
- batching: rows grouped by length (``length_grouped``) against TRL's random order.

Every side builds the trainer a round builds (model load aside) and trains one epoch over the
same pairs, whose answers range from a few words to a few hundred, as a round's do. Steps per
second count the whole fit: tokenizing, the reference pass, the steps, in CPU seconds of the
process (wall seconds beside them). The sides alternate
(A B A B) so the load of a shared machine falls on both. On a CPU without bf16 instructions bf16
is emulated (tens of times slower, and train.precision=auto never picks it): the precision sides
are then the processor's matmul in each dtype, not DPO fits that would take many minutes.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from typing import Any

from evoforge.agents.models import resolve_model
from evoforge.bench.training import FILLER as WORDS
from evoforge.config import load_config
from evoforge.envs.registry import get_env
from evoforge.training.precision import cpu_bf16_flag, cuda_bf16
from evoforge.training.settings import TrainSettings
from evoforge.training.trl_adapters import build_trainer, dpo_config, dpo_rows, length_grouped

BATCH = 4


def _pairs(n: int, longest: int) -> list[dict[str, Any]]:
    """``n`` pairs whose answers span 4 to ``longest`` words (a spread, as a round's answers)."""
    tasks = get_env("instructions").tasks("train", n, 0)
    out = []
    for i, t in enumerate(tasks):
        words = 4 + (i * 7919) % max(1, longest - 3)  # lengths scattered over the range
        body = " ".join(WORDS[j % len(WORDS)] for j in range(words))
        out.append(
            {
                "prompt": list(t.messages),
                "chosen": body + " thank you.",
                "rejected": body.capitalize() + ", with commas, everywhere.",
            }
        )
    return out


def _fit(path: str, pairs, side: dict[str, Any], work: str) -> dict[str, Any]:
    """One side: the round's DPO trainer with ``side``'s changes, one epoch; wall seconds."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOTrainer

    settings = TrainSettings.from_config(
        load_config(None, [f"train.batch_size={BATCH}", f"train.precision={side['precision']}"])
    )
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    cfg = dpo_config(settings, work, torch.cuda.is_available())
    cfg = replace(
        cfg,
        precompute_ref_log_probs=side["precompute"],
        train_sampling_strategy="sequential" if side["grouped"] else "random",
        max_steps=side.get("max_steps", -1),
        save_strategy="no",  # a round saves its model once, after training: not timed here
    )
    rows = dpo_rows(pairs, tok)
    if side["grouped"]:
        rows = length_grouped(rows, BATCH, settings.seed)
    extra = {}
    if not side["precompute"]:  # the round passes its starting model as the reference
        extra["ref_model"] = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    start, cpu = time.time(), time.process_time()
    trainer = build_trainer(DPOTrainer, model, cfg, rows, tok, [], **extra)
    trainer.train()
    seconds, cpu = time.time() - start, time.process_time() - cpu
    shutil.rmtree(work, ignore_errors=True)
    steps = trainer.state.global_step
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "steps": steps,
        "steps_per_s": steps / seconds,
        "steps_per_cpu_s": steps / cpu,
    }


def _compare(path, pairs, name, a, b, reps: int, work: str, fit=None) -> dict[str, Any]:
    """Sides ``a`` and ``b`` alternated ``reps`` times; ratio of median steps per CPU second
    (all threads of this process: on a shared machine, the work, where wall time also counts
    the other tenants), b over a; the wall-time ratio beside it."""
    runs: dict[str, list[dict[str, Any]]] = {"a": [], "b": []}
    for _ in range(reps):
        for key, side in (("a", a), ("b", b)):
            runs[key].append(fit(side) if fit else _fit(path, pairs, side, work))
            r = runs[key][-1]
            print(
                f"  {name} {side['label']}: {r['steps']} steps in {r['seconds']:.1f} s "
                f"({r['cpu_seconds']:.1f} CPU s)",
                flush=True,
            )
    med = {k: statistics.median(r["steps_per_cpu_s"] for r in v) for k, v in runs.items()}
    wall = {k: statistics.median(r["steps_per_s"] for r in v) for k, v in runs.items()}
    return {
        "a": a["label"],
        "b": b["label"],
        "runs": runs,
        "steps_per_cpu_s": med,
        "steps_per_s": wall,
        "ratio": med["b"] / med["a"],
        "ratio_wall": wall["b"] / wall["a"],
    }


def _matmul(side: dict[str, Any], reps: int = 5) -> dict[str, Any]:
    """The processor's own ratio: a (2048x576) by (576x1536) matmul, the default model's MLP
    shape at a batch of 2048 tokens, in the side's dtype."""
    import torch

    dtype = torch.bfloat16 if side["precision"] == "bf16" else torch.float32
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(2048, 576, generator=gen).to(dtype)
    b = torch.randn(576, 1536, generator=gen).to(dtype)
    a @ b  # warm-up
    start, cpu = time.time(), time.process_time()
    for _ in range(reps):
        a @ b
    seconds, cpu = time.time() - start, time.process_time() - cpu
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "steps": reps,
        "steps_per_s": reps / seconds,
        "steps_per_cpu_s": reps / cpu,
    }


def bench_train(model: str, backend: str, size: str) -> dict[str, Any]:
    import torch

    path = resolve_model(model).path
    n, longest, reps = (8, 96, 2) if size == "full" else (8, 24, 1)
    pairs = _pairs(n, longest)
    cuda = torch.cuda.is_available()
    flag = cpu_bf16_flag()
    native = cuda_bf16() if cuda else flag is not None
    base = {"precision": "fp32", "precompute": True, "grouped": False}  # a round's trainer
    work = tempfile.mkdtemp(prefix="evoforge-bench-train-")
    try:
        precision = _compare(
            path,
            pairs,
            "precision",
            base | {"label": "fp32" if native else "fp32 matmul"},
            base | {"precision": "bf16", "label": "bf16 mixed" if native else "bf16 matmul"},
            reps,
            work,
            fit=None if native else _matmul,  # emulated bf16: a DPO step would take many minutes
        )
        ours = "bf16" if native else "fp32"
        reference = _compare(
            path,
            pairs,
            "reference",
            base | {"precision": ours, "precompute": False, "label": "per step"},
            base | {"precision": ours, "label": "precomputed once"},
            reps,
            work,
        )
        batching = _compare(
            path,
            pairs,
            "batching",
            base | {"precision": ours, "label": "random order"},
            base | {"precision": ours, "grouped": True, "label": "grouped by length"},
            reps,
            work,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = [
        {
            "compare": name,
            "a": c["a"],
            "b": c["b"],
            "a_steps_per_cpu_s": round(c["steps_per_cpu_s"]["a"], 4),
            "b_steps_per_cpu_s": round(c["steps_per_cpu_s"]["b"], 4),
            "ratio_b_over_a": round(c["ratio"], 3),
            "ratio_wall": round(c["ratio_wall"], 3),
        }
        for name, c in (("precision", precision), ("reference", reference), ("batching", batching))
    ]
    return {
        "model": model,
        "batch_pairs": BATCH,
        "pairs": len(pairs),
        "answer_words": [4, longest],
        "reps": reps,
        "processor_bf16": ("cuda" if cuda and native else flag),
        "precision_sides": "DPO trainer" if native else "matmul (bf16 emulated here)",
        "precision": precision,
        "reference": reference,
        "batching": batching,
        "evoforge": {  # the sides a round trains with, where the processor has bf16
            "precision": precision["b"] if native else precision["a"],
            "reference": reference["b"],
            "batching": batching["a"],  # grouping measured no gain: not the default
        },
        "baseline": {
            "precision": precision["a"],
            "reference": reference["a"],
            "batching": batching["a"],
        },
        "ratio": precision["ratio"],
        "target": 1.0,
        "table": table,
    }
