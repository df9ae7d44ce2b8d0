"""The trainer's settings, built from the config (every default lives in evoforge/config/: the
train section's in train.py)."""

from __future__ import annotations

from dataclasses import dataclass

from evoforge.config import Config
from evoforge.config.sections import DataConfig


@dataclass(frozen=True)
class TrainSettings:
    """What the trainer actor needs of the config (see TrainConfig for each field's meaning)."""

    algorithm: str
    learning_rate: float
    epochs: int
    batch_size: int
    micro_batch_size: int
    beta: float
    sft_weight: float
    lora: bool
    lora_r: int
    max_length: int
    seed: int
    threads: int
    env: str
    """Environment spec, for the reward of GRPO (the environment is rebuilt inside the actor)."""
    data: DataConfig
    """The config's data section: a ``file:`` environment needs its reward function and columns."""
    grpo_generations: int
    max_completion_length: int
    verify_timeout_s: float
    """Time limit of one verify() call of the GRPO or RLOO reward (0 = none)."""
    workers: int
    worker_cpus: int
    strategy: str
    precision: str
    """train.precision as configured (auto, fp32, bf16); resolved where the trainer runs."""
    checkpoint_steps: int

    @classmethod
    def from_config(cls, config: Config) -> TrainSettings:
        t = config.train
        return cls(
            algorithm=t.algorithm,
            learning_rate=t.learning_rate,
            epochs=t.epochs,
            batch_size=t.batch_size,
            micro_batch_size=t.micro_batch_size,
            beta=t.beta,
            sft_weight=t.sft_weight,
            lora=t.lora,
            lora_r=t.lora_r,
            max_length=t.max_length,
            seed=config.seed,
            threads=config.serving.threads,
            env=config.env,
            data=config.data,
            grpo_generations=t.grpo_generations,
            max_completion_length=config.generation.max_tokens,
            verify_timeout_s=config.verify_timeout_s,
            workers=t.workers,
            worker_cpus=t.worker_cpus,
            strategy=t.strategy,
            precision=t.precision,
            checkpoint_steps=t.checkpoint_steps,
        )
