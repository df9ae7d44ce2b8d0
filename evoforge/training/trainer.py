"""The trainer actor's body: load weights, train with TRL, write a model directory for the servers."""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict
from typing import Any

from evoforge.agents.serving.engine_base import configure_threads
from evoforge.errors import EvoforgeError
from evoforge.rewards import env_reward_function
from evoforge.training.settings import TrainSettings
from evoforge.training.trl_adapters import (
    LossLog,
    common_args,
    dpo_config,
    dpo_rows,
    fit,
    lora_config,
    merged,
    save_model,
    sft_rows,
)


class Trainer:
    """The body of the trainer actor: loads weights, trains with TRL, writes a model directory."""

    def __init__(self, threads: int = 0) -> None:
        import torch

        self.cuda = torch.cuda.is_available()
        if not self.cuda:
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
            model = merged(self._sft(model, tok, sft_data, settings, work, log))
            metrics["sft_examples"] = len(sft_data)
        if algorithm == "dpo":
            model = self._dpo(model, tok, data, settings, work, log, ref_path)
        elif algorithm == "sft":
            model = self._sft(model, tok, data, settings, work, log)
        elif algorithm == "grpo":
            model = self._grpo(model, tok, data, settings, work, log)
        else:
            raise EvoforgeError(f"unknown train.algorithm '{algorithm}'; use dpo, grpo or sft")
        save_model(model, tok, out_dir)
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
        return fit(
            DPOTrainer,
            model,
            dpo_config(s, work, self.cuda),
            dpo_rows(pairs, tok),
            tok,
            log,
            ref_model=ref,
            peft_config=lora_config(s),
        )

    def _sft(self, model, tok, examples, s: TrainSettings, work: str, log: LossLog):
        from trl import SFTConfig, SFTTrainer

        rows = sft_rows(examples, tok)
        args = SFTConfig(
            **common_args(s, work, self.cuda), max_length=s.max_length, completion_only_loss=True
        )
        return fit(SFTTrainer, model, args, rows, tok, log, peft_config=lora_config(s))

    def _grpo(self, model, tok, tasks, s: TrainSettings, work: str, log: LossLog):
        from trl import GRPOConfig, GRPOTrainer

        reward = env_reward_function(s.env, s.data)
        rows = [{"prompt": list(t["messages"]), "task": json.dumps(t)} for t in tasks]
        args = GRPOConfig(
            **common_args(s, work, self.cuda),
            num_generations=s.grpo_generations,
            max_completion_length=s.max_completion_length,
            beta=s.beta,
            generation_batch_size=max(s.grpo_generations, s.batch_size),
        )
        return fit(GRPOTrainer, model, args, rows, tok, log, reward_funcs=[reward])
