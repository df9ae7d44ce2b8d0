"""The trainer's body: load weights, train with TRL, write a model directory for the servers.

It runs in the trainer actor (one worker) or in each Ray Train worker (several, see
distributed.py); with several, rank 0 writes the model and the world splits every batch.
A round's training is one or two phases (the refiner's SFT examples first when they are mixed
in, then the algorithm); each phase checkpoints into its own directory under ``out_dir.work``,
and a phase that finished before a crash left its model there, so a resumed training skips it.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict
from typing import Any

from evoforge.agents.serving.engine_base import configure_threads
from evoforge.errors import EvoforgeError
from evoforge.rewards import env_reward_function
from evoforge.training.precision import resolve
from evoforge.training.settings import TrainSettings
from evoforge.training.trl_adapters import (
    PROGRESS_FILE,
    LossLog,
    common_args,
    dpo_config,
    dpo_rows,
    fit,
    lora_config,
    merged,
    read_step_progress,
    save_model,
    sft_rows,
    write_json_whole,
)

ALGORITHMS = ("dpo", "sft", "grpo", "rloo")


def work_dir(out_dir: str) -> str:
    """Where a training into ``out_dir`` keeps its phases' checkpoints until the model is saved."""
    return out_dir + ".work"


def step_progress(out_dir: str) -> dict[str, Any] | None:
    """The optimizer step a running training into ``out_dir`` has reached: {"phase" (e.g.
    "1-dpo"), "step", "max_steps"}, or None before its first phase starts and after it ends."""
    return read_step_progress(os.path.join(work_dir(out_dir), PROGRESS_FILE))


def world() -> tuple[int, int]:
    """(rank, world size) of the data-parallel group this process trains in."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


class Trainer:
    """The body of the trainer actor: loads weights, trains with TRL, writes a model directory."""

    def __init__(self, threads: int = 0) -> None:
        import torch

        self.cuda = torch.cuda.is_available()
        self.warmed = False
        if not self.cuda:
            configure_threads(threads)

    def warm(self) -> None:
        """Import what training needs (torch, transformers, TRL: seconds on a CPU) before the
        round has data for it: the trainer actor is started ahead (actor.py's ``prepare``) so
        this overlaps the round's generation. Then the interpreter's objects so far are frozen:
        the trainer's ``gc.collect()`` after every training (accelerate's free_memory) no longer
        walks the hundreds of thousands of objects the imports made (0.3 s each on 2 cores)."""
        if self.warmed:  # once: a later freeze would keep a finished training's garbage
            return
        import gc

        from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401
        from trl import DPOTrainer, SFTTrainer  # noqa: F401

        gc.freeze()
        self.warmed = True

    def _load(self, path: str):
        import torch
        from transformers import AutoModelForCausalLM

        # float32 master weights in every precision: bf16 is mixed (autocast), see precision.py
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)

    def _tokenizer(self, path: str):
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(path)
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        return tok

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

        if algorithm not in ALGORITHMS:
            raise EvoforgeError(
                f"unknown train.algorithm '{algorithm}'; use {', '.join(ALGORITHMS)}"
            )
        torch.manual_seed(settings.seed)
        start = time.time()
        rank, size = world()
        self.warm()
        # one tokenizer for every phase: the saved phases and the reference model carry the same
        model, tok = self._load(model_path), self._tokenizer(model_path)
        log = LossLog()
        metrics: dict[str, Any] = {
            "algorithm": algorithm,
            "examples": len(data),
            "workers": size,
            "precision": resolve(settings.precision, self.cuda),
            "settings": asdict(settings),
        }
        work = work_dir(out_dir)
        phases = ([("sft", sft_data)] if sft_data else []) + [(algorithm, data)]
        for i, (algo, rows) in enumerate(phases):
            phase_dir = os.path.join(work, f"{i}-{algo}")
            done = os.path.join(phase_dir, "final")
            if os.path.isfile(os.path.join(done, "log.json")):  # finished before a crash
                model = self._load(done)
                with open(os.path.join(done, "log.json")) as f:
                    log.add(json.load(f))
                continue
            model = self._phase(algo, model, tok, rows, settings, phase_dir, log, ref_path, size)
            if algo == "sft" and i < len(phases) - 1:
                model = merged(model)
                if settings.checkpoint_steps:
                    # the next phase starts from the saved copy, as a resumed run does: the model
                    # the SFT trainer leaves in memory trains other numbers in bf16 (~1e-4 in the
                    # loss), so a crash would not resume to the same weights
                    self._save_phase(model, tok, done, log, rank)
                    model = self._load(done)
        if sft_data:
            metrics["sft_examples"] = len(sft_data)
        if rank == 0:
            save_model(model, tok, out_dir)
            shutil.rmtree(work, ignore_errors=True)  # checkpoints go once the model is written
        barrier()
        losses = [r["loss"] for r in log.records if not math.isnan(r["loss"])]
        metrics.update(
            steps=len(log.records),
            loss_first=losses[0] if losses else None,
            loss_last=losses[-1] if losses else None,
            log=log.records,
            resumed_from=log.resumed,
            sequences=log.sequences,
            seconds=round(time.time() - start, 2),
            step_seconds=round((time.time() - start) / max(1, len(log.records)), 2),
        )
        return metrics

    def _save_phase(self, model, tok, done: str, log: LossLog, rank: int) -> None:
        if rank == 0:
            save_model(model, tok, done)
            # log.json marks the phase finished: written whole, after the weights
            write_json_whole(os.path.join(done, "log.json"), log.records)
        barrier()

    def _phase(self, algo, model, tok, rows, s: TrainSettings, work, log, ref_path, size: int):
        if algo == "dpo":
            return self._dpo(model, tok, rows, s, work, log, ref_path, size)
        if algo == "sft":
            return self._sft(model, tok, rows, s, work, log, size)
        return self._online(algo, model, tok, rows, s, work, log, size)

    def _dpo(self, model, tok, pairs, s, work: str, log: LossLog, ref_path, size: int):
        from trl import DPOTrainer

        ref = None
        if ref_path and not s.lora:
            ref = self._load(ref_path)
        return fit(
            DPOTrainer,
            model,
            dpo_config(s, work, self.cuda, size),
            dpo_rows(pairs, tok),
            tok,
            log,
            ref_model=ref,
            peft_config=lora_config(s),
        )

    def _sft(self, model, tok, examples, s: TrainSettings, work: str, log: LossLog, size: int):
        from trl import SFTConfig, SFTTrainer

        rows = sft_rows(examples, tok)
        args = SFTConfig(
            **common_args(s, work, self.cuda, size),
            max_length=s.max_length,
            completion_only_loss=True,
        )
        return fit(
            SFTTrainer, model, args, rows, tok, log, merge_prefixes=True, peft_config=lora_config(s)
        )

    def _online(self, algo, model, tok, tasks, s: TrainSettings, work, log, size: int):
        """GRPO or RLOO: on-policy, completions sampled by the trainer, rewards from the
        environment's verifier; RLOO's baseline is the mean reward of the other completions."""
        from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

        config_cls, trainer_cls = (
            (GRPOConfig, GRPOTrainer) if algo == "grpo" else (RLOOConfig, RLOOTrainer)
        )
        reward = env_reward_function(s.env, s.data, s.verify_timeout_s)
        rows = [{"prompt": list(t["messages"]), "task": json.dumps(t)} for t in tasks]
        args = config_cls(
            **common_args(s, work, self.cuda, size, rows_per_example=0),
            num_generations=s.grpo_generations,
            max_completion_length=s.max_completion_length,
            beta=s.beta,
            generation_batch_size=max(s.grpo_generations, s.batch_size),
        )
        return fit(trainer_cls, model, args, rows, tok, log, reward_funcs=[reward])
