"""The train section of a run's config: how the actor learns from a round's data (TRL). Fields
are declared with ``opt`` (sections.py), each documented and bounded where it is declared."""

from __future__ import annotations

from dataclasses import dataclass

from evoforge.config.sections import opt


@dataclass(frozen=True)
class TrainConfig:
    """Training of the actor on the round's data (TRL)."""

    algorithm: str = opt(
        "dpo",
        "dpo: DPO (+SFT term) on the round's pairs. grpo: TRL GRPO, on-policy, rewards from the environment's "
        "verifier on the round's tasks, no value model. sft: SFT on chosen answers. ppo: not available "
        "(TRL ships no PPO trainer). rloo: TRL RLOO, on-policy like grpo, advantages from the "
        "leave-one-out mean of the other completions' verifier rewards.",
        ("dpo", "grpo", "rloo", "sft", "ppo"),
    )
    learning_rate: float = opt(
        5e-5,
        "Optimizer learning rate (docs/tuning.md: what was tried on the default model).",
        gt=0.0,
        le=1.0,
    )
    epochs: int = opt(1, "Passes over the round's data.", ge=1, le=1000)
    batch_size: int = opt(4, "Examples per optimizer step.", ge=1, le=65536)
    micro_batch_size: int = opt(
        0,
        "Examples per forward/backward pass; the optimizer step accumulates train.batch_size "
        "of them (per worker). 0 = auto: on a CPU, as many as keep a pass within 2048 tokens "
        "at train.max_length (a DPO example is two rows; float32 activations of the default "
        "135M model are ~1.6 MB a token, so a whole batch of 4 pairs of 1024 tokens took 16 GB); "
        "on a GPU, the whole batch. DPO and SFT only (GRPO and RLOO take the whole batch).",
        ge=0,
        le=65536,
    )
    beta: float = opt(
        0.1, "DPO beta (SPaR uses 0.1); also GRPO's KL coefficient.", ge=0.0, le=1000.0
    )
    sft_weight: float = opt(
        0.2,
        "Weight of the SFT (NLL) term on chosen answers added to the DPO loss.",
        ge=0.0,
        le=1000.0,
    )
    rft: bool = opt(
        True,
        "Rejection-sampling fine-tuning: SFT on the round's passing samples and accepted "
        "refinements before the preference step.",
    )
    rft_per_task: int = opt(2, "Most passing answers per task in the RFT data.", ge=1, le=256)
    reference: str = opt(
        "round",
        "DPO reference: round = the round's starting model, original = the first model.",
        ("round", "original"),
    )
    lora: bool = opt(False, "Train a LoRA adapter (merged before serving) instead of all weights.")
    lora_r: int = opt(16, "LoRA rank.", ge=1, le=4096)
    max_length: int = opt(
        1024,
        "Most tokens of prompt + answer in training (a tool environment's specs count: ~700 "
        "tokens in `tools`). TRL pads to the longest row of a batch, so a larger value costs "
        "nothing until rows are that long.",
        ge=16,
        le=1 << 20,
    )
    grpo_generations: int = opt(
        4,
        "GRPO and RLOO: completions sampled per prompt (the group of the advantage).",
        ge=2,
        le=256,
    )
    workers: int = opt(
        1,
        "Data-parallel training workers; 1 trains in one Ray actor, more run the same TRL "
        "trainer under Ray Train (TorchTrainer); train.batch_size is split across them.",
        ge=1,
        le=1024,
    )
    worker_cpus: int = opt(
        1, "CPUs (Ray's accounting, and torch threads on CPU) per training worker.", ge=1, le=256
    )
    strategy: str = opt(
        "ddp",
        "Data parallelism with several workers: ddp (replicated weights), or fsdp (sharded; GPUs only).",
        ("ddp", "fsdp"),
    )
    precision: str = opt(
        "auto",
        "Training arithmetic. bf16: mixed precision (float32 master weights and optimizer, "
        "matmuls in bfloat16 under autocast). fp32: float32 throughout. auto: bf16 on CUDA GPUs "
        "with bf16 and on CPUs with avx512_bf16 or amx_bf16 (read from /proc/cpuinfo), fp32 "
        "elsewhere. A forced bf16 on a CPU without them runs emulated, far slower (the placement "
        "line warns). The run's start prints the choice.",
        ("auto", "fp32", "bf16"),
    )
    checkpoint_steps: int = opt(
        100,
        "Save the trainer's checkpoint (weights, optimizer, scheduler, RNG) every this many "
        "optimizer steps inside the round's train directory; a resumed run continues from the "
        "last one. 0 = never.",
        ge=0,
        le=1_000_000_000,
    )
    max_refiner_examples: int = opt(
        12,
        "Most refiner examples (refinement chains first, then judgements) mixed into a round's training.",
        ge=0,
        le=1_000_000,
    )
    refiner_data: str = opt(
        "mix",
        "Refiner SFT data: mix into the actor's training when roles share one model, or off.",
        ("mix", "off"),
    )
