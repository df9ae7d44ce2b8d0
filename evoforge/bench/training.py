"""train: a DPO step of our trainer config against a bare forward/backward/AdamW step on the same
tokens; TRL's default DPOConfig is measured too (the question of why a default step was slow)."""

from __future__ import annotations

import shutil
import tempfile
import time
from typing import Any

from evoforge.agents.models import resolve_model
from evoforge.config import load_config
from evoforge.envs.registry import get_env
from evoforge.training.settings import TrainSettings
from evoforge.training.trl_adapters import build_trainer, dpo_config, dpo_rows

FILLER = [
    "the",
    "river",
    "runs",
    "past",
    "the",
    "garden",
    "and",
    "the",
    "lantern",
    "glows",
    "in",
    "the",
    "quiet",
    "evening",
    "light",
]
"""The words the benches' answers are made of (their content does not matter, their length does)."""


def _pairs(n: int, words: int) -> list[dict[str, Any]]:
    tasks = get_env("instructions").tasks("train", n, 0)
    body = " ".join(FILLER[i % len(FILLER)] for i in range(words))
    return [
        {
            "prompt": list(t.messages),
            "chosen": body + " thank you for reading.",
            "rejected": body.capitalize() + ", with commas, everywhere.",
        }
        for t in tasks
    ]


class _StepTimer:
    def __init__(self) -> None:
        from transformers import TrainerCallback

        outer = self
        self.times: list[float] = []

        class CB(TrainerCallback):
            def on_step_begin(self, *a, **k):
                outer._t = time.time()

            def on_step_end(self, *a, **k):
                outer.times.append(time.time() - outer._t)

        self.callback = CB()


def _dpo_steps(path: str, pairs, batch: int, ours: bool, work: str) -> tuple[list[float], int]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    rows = dpo_rows(pairs)
    timer = _StepTimer()
    if ours:  # exactly what a round's train node builds
        cfg = dpo_config(
            TrainSettings.from_config(load_config(None, [f"train.batch_size={batch}"])),
            work,
            torch.cuda.is_available(),
        )
        trainer = build_trainer(DPOTrainer, model, cfg, rows, tok, [timer.callback])
    else:  # TRL as it comes
        from datasets import Dataset

        cfg = DPOConfig(
            output_dir=work,
            per_device_train_batch_size=batch,
            num_train_epochs=1,
            report_to=[],
            save_strategy="no",
            use_cpu=not torch.cuda.is_available(),
            disable_tqdm=True,
            logging_steps=1,
        )
        trainer = DPOTrainer(
            model=model,
            args=cfg,
            train_dataset=Dataset.from_list(rows),
            processing_class=tok,
            callbacks=[timer.callback],
        )
    batch0 = next(iter(trainer.get_train_dataloader()))
    tokens = int(sum(batch0[k].numel() for k in batch0 if k.endswith("input_ids")))
    trainer.train()
    return timer.times, tokens


def _bare_steps(path: str, pairs, batch: int, steps: int) -> tuple[list[float], int]:
    """Forward + backward + AdamW on the same (prompt + chosen/rejected) sequences, padded per batch."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    seqs = []
    for p in pairs:
        for side in ("chosen", "rejected"):
            seqs.append(
                tok.apply_chat_template(
                    p["prompt"] + [{"role": "assistant", "content": p[side]}], tokenize=True
                )
            )
    seqs = [
        list(s["input_ids"] if isinstance(s, dict) or hasattr(s, "input_ids") else s) for s in seqs
    ]
    times, tokens = [], 0
    for i in range(steps):
        group = seqs[(i * 2 * batch) % len(seqs) :][: 2 * batch]
        width = max(len(s) for s in group)
        ids = torch.tensor([s + [tok.pad_token_id] * (width - len(s)) for s in group])
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in group])
        tokens = int(ids.numel())
        t = time.time()
        out = model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100))
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        times.append(time.time() - t)
    return times, tokens


def _mean_after_first(xs: list[float]) -> float:
    rest = xs[1:] or xs
    return sum(rest) / len(rest)


def bench_train(model: str, backend: str, size: str) -> dict[str, Any]:
    path = resolve_model(model).path
    batch = 4
    n, words = (12, 120) if size == "full" else (8, 20)
    pairs = _pairs(n, words)
    work = tempfile.mkdtemp(prefix="evoforge-bench-train-")
    try:
        ours, ours_tokens = _dpo_steps(path, pairs, batch, True, work)
        default, _ = _dpo_steps(path, pairs, batch, False, work)
        bare, bare_tokens = _bare_steps(path, pairs, batch, steps=len(ours))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    o, d, b = _mean_after_first(ours), _mean_after_first(default), _mean_after_first(bare)
    table = [
        {"side": "evoforge DPO config", "step_s": round(o, 2)},
        {"side": "TRL default DPOConfig", "step_s": round(d, 2)},
        {"side": "bare fwd/bwd/AdamW", "step_s": round(b, 2)},
    ]
    return {
        "model": model,
        "batch_pairs": batch,
        "words_per_answer": words,
        "evoforge": {"dpo_step_s": ours, "tokens_first_batch": ours_tokens},
        "trl_default": {"dpo_step_s": default},
        "baseline": {
            "name": "bare forward/backward/AdamW step, same sequences",
            "step_s": bare,
            "tokens": bare_tokens,
        },
        "dpo_over_bare": o / b,
        "ratio": b / o,
        "target": 0.5,
        "table": table,
    }
