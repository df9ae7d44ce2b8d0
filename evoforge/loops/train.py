"""Training adapters over TRL, run inside a Ray actor (its own resources; a GPU when there is one).

Why the TRL defaults are overridden: DPOConfig defaults to ``gradient_checkpointing=True`` (every
forward recomputed in backward) and ``bf16=True``, and runs a reference model at every step. On
CPU we turn the first two off and precompute the reference log-probs once per round
(``precompute_ref_log_probs``), and on CPU replace TRL's fused LM head with a dense one over the
labelled positions (see lm_head.py). Measured with ``evoforge bench train`` on SmolLM2-135M, 2 CPU
cores, 4 pairs of ~200 tokens: 10.5 s per step against 13.3 s for TRL's defaults and 12.3 s for a
bare forward/backward/AdamW step on the same sequences (tiny model: 1.03 s, 3.77 s, 0.92 s). The
77 s default step reported earlier does not reproduce with TRL 1.16.

- dpo: TRL DPOTrainer on (chosen, rejected) pairs, sigmoid loss plus an SFT (NLL) term on chosen
  (``loss_type=["sigmoid", "sft"]``, the SFT weight from config, as SPaR's small SFT term).
- sft: TRL SFTTrainer on completions (the refiner's data, or chosen answers).
- grpo: TRL GRPOTrainer on the round's prompts with the environment's verifier as reward.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from typing import Any

from evoforge.errors import EvoforgeError


@dataclass(frozen=True)
class TrainSettings:
    algorithm: str = "dpo"
    learning_rate: float = 5e-6
    epochs: int = 1
    batch_size: int = 4
    beta: float = 0.1
    sft_weight: float = 0.2
    lora: bool = False
    lora_r: int = 16
    max_length: int = 640
    seed: int = 0
    threads: int = 0
    env: str = ""
    """Environment spec, for GRPO's reward function (loaded inside the actor)."""
    grpo_generations: int = 4
    max_completion_length: int = 256


def _common_args(s: TrainSettings, out: str, cuda: bool) -> dict[str, Any]:
    return dict(
        output_dir=out,
        per_device_train_batch_size=s.batch_size,
        num_train_epochs=s.epochs,
        learning_rate=s.learning_rate,
        seed=s.seed,
        data_seed=s.seed,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        gradient_checkpointing=False,
        bf16=cuda,
        fp16=False,
        use_cpu=not cuda,
        dataloader_num_workers=0,
        lr_scheduler_type="constant",
        warmup_steps=0,
        disable_tqdm=True,
    )


def dpo_rows(pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our pairs as TRL's conversational preference rows."""
    return [
        {
            "prompt": p["prompt"],
            "chosen": [{"role": "assistant", "content": p["chosen"]}],
            "rejected": [{"role": "assistant", "content": p["rejected"]}],
        }
        for p in pairs
    ]


def dpo_config(s: TrainSettings, work: str, cuda: bool):
    """Sigmoid DPO plus an SFT term on chosen, reference log-probs computed once up front."""
    from trl import DPOConfig

    return DPOConfig(
        **_common_args(s, work, cuda),
        beta=s.beta,
        max_length=s.max_length,
        precompute_ref_log_probs=True,
        loss_type=["sigmoid", "sft"],
        loss_weights=[1.0, s.sft_weight],
    )


def _lora(s: TrainSettings):
    if not s.lora:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=s.lora_r, lora_alpha=2 * s.lora_r, target_modules="all-linear", task_type="CAUSAL_LM"
    )


class LossLog:
    """Collects TRL's logged losses (a TrainerCallback built lazily to keep imports light)."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        outer = self
        self.records: list[dict[str, float]] = []

        class _CB(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kw):
                if logs and "loss" in logs:
                    outer.records.append(
                        {k: float(v) for k, v in logs.items() if isinstance(v, int | float)}
                    )

        self.callback = _CB()


def _merged(model):
    """A LoRA-wrapped model with its adapter merged in (servers and the next stage want plain weights)."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


def build_trainer(trainer_cls, model, args, rows: list[dict[str, Any]], tok, callbacks, **extra):
    """A TRL trainer on ``rows``; on CPU with the dense LM head (see loops/lm_head.py)."""
    import torch
    from accelerate.utils import is_peft_model
    from datasets import Dataset

    from evoforge.loops.lm_head import use_dense_lm_head

    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tok,
        callbacks=callbacks,
        **extra,
    )
    if not torch.cuda.is_available():
        temperature = getattr(trainer, "temperature", 1.0)
        for m in (trainer.model, getattr(trainer, "ref_model", None)):
            if m is not None:
                use_dense_lm_head(m.get_base_model() if is_peft_model(m) else m, temperature)
    return trainer


def _fit(trainer_cls, model, args, rows: list[dict[str, Any]], tok, log: LossLog, **extra):
    """Train one TRL trainer on ``rows`` and return the trained model."""
    trainer = build_trainer(trainer_cls, model, args, rows, tok, [log.callback], **extra)
    trainer.train()
    return trainer.model


def _save(model, tokenizer, out_dir: str) -> None:
    """Plain safetensors for the servers."""
    model = _merged(model)
    tmp = out_dir + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.rename(tmp, out_dir)


class Trainer:
    """The body of the trainer actor: loads weights, trains with TRL, writes a model directory."""

    def __init__(self, threads: int = 0) -> None:
        import torch

        self.cuda = torch.cuda.is_available()
        if not self.cuda:
            from evoforge.agents.serving.engine_base import configure_threads

            configure_threads(threads)

    def _load(self, path: str):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dtype = torch.bfloat16 if self.cuda else torch.float32
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        tok = AutoTokenizer.from_pretrained(path)
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        return model, tok

    def train(
        self,
        algorithm: str,
        model_path: str,
        out_dir: str,
        data: list[dict[str, Any]],
        settings: TrainSettings,
        ref_path: str | None = None,
        sft_data: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Train from ``model_path`` and write the result to ``out_dir``; returns metrics."""
        import torch

        torch.manual_seed(settings.seed)
        start = time.time()
        model, tok = self._load(model_path)
        log = LossLog()
        metrics: dict[str, Any] = {
            "algorithm": algorithm,
            "examples": len(data),
            "settings": asdict(settings),
        }
        work = out_dir + ".work"
        if sft_data:
            model = _merged(self._sft(model, tok, sft_data, settings, work, log))
            metrics["sft_examples"] = len(sft_data)
        if algorithm == "dpo":
            model = self._dpo(model, tok, data, settings, work, log, ref_path)
        elif algorithm == "sft":
            model = self._sft(model, tok, data, settings, work, log)
        elif algorithm == "grpo":
            model = self._grpo(model, tok, data, settings, work, log)
        else:
            raise EvoforgeError(f"unknown train.algorithm '{algorithm}'; use dpo, grpo or sft")
        _save(model, tok, out_dir)
        shutil.rmtree(work, ignore_errors=True)
        losses = [r["loss"] for r in log.records if not math.isnan(r["loss"])]
        metrics.update(
            steps=len(log.records),
            loss_first=losses[0] if losses else None,
            loss_last=losses[-1] if losses else None,
            log=log.records,
            seconds=round(time.time() - start, 2),
            step_seconds=round((time.time() - start) / max(1, len(log.records)), 2),
        )
        return metrics

    def _dpo(
        self, model, tok, pairs, s: TrainSettings, work: str, log: LossLog, ref_path: str | None
    ):
        from trl import DPOTrainer

        ref = None
        if ref_path and not s.lora:
            ref, _ = self._load(ref_path)
        return _fit(
            DPOTrainer,
            model,
            dpo_config(s, work, self.cuda),
            dpo_rows(pairs),
            tok,
            log,
            ref_model=ref,
            peft_config=_lora(s),
        )

    def _sft(self, model, tok, examples, s: TrainSettings, work: str, log: LossLog):
        from trl import SFTConfig, SFTTrainer

        rows = [
            {
                "prompt": e["messages"],
                "completion": [{"role": "assistant", "content": e["completion"]}],
            }
            for e in examples
        ]
        args = SFTConfig(
            **_common_args(s, work, self.cuda), max_length=s.max_length, completion_only_loss=True
        )
        return _fit(SFTTrainer, model, args, rows, tok, log, peft_config=_lora(s))

    def _grpo(self, model, tok, tasks, s: TrainSettings, work: str, log: LossLog):
        from trl import GRPOConfig, GRPOTrainer

        from evoforge.rewards import env_reward_function

        reward = env_reward_function(s.env)
        rows = [{"prompt": list(t["messages"]), "task": json.dumps(t)} for t in tasks]
        args = GRPOConfig(
            **_common_args(s, work, self.cuda),
            num_generations=s.grpo_generations,
            max_completion_length=s.max_completion_length,
            beta=s.beta,
            generation_batch_size=max(s.grpo_generations, s.batch_size),
        )
        return _fit(GRPOTrainer, model, args, rows, tok, log, reward_funcs=[reward])
