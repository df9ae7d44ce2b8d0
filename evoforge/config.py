"""Every setting of a run and its one default: frozen nested dataclasses.

Each field is documented and bounded where it is declared (``opt``); ``evoforge run --help``
prints them all. This module is the only home of a default: settings objects elsewhere
(``SearchSettings``, ``ServerSpec``, ``TrainSettings``, the roles' sampling) are built from a
``Config`` by their own ``from_config`` and carry no defaults of their own.

Loading (YAML, ``key=value`` overrides, type and range checks) lives in ``config_loader.py``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def opt(
    default: Any,
    help: str,
    choices: tuple[str, ...] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
) -> Any:
    """A config field with its documentation, its allowed values (strings) or range (numbers)."""
    meta: dict[str, Any] = {"help": help}
    if choices:
        meta["choices"] = choices
    for name, bound in (("ge", ge), ("gt", gt), ("le", le)):
        if bound is not None:
            meta[name] = bound
    if isinstance(default, list | dict) or dataclasses.is_dataclass(default):
        return field(default_factory=lambda: default, metadata=meta)
    return field(default=default, metadata=meta)


def sub(cls: type) -> Any:
    """A nested config section."""
    return field(default_factory=cls, metadata={"help": (cls.__doc__ or "").strip()})


@dataclass(frozen=True)
class ServingConfig:
    """How models are served (Ray actors around vLLM or transformers)."""

    replicas: int = opt(
        1, "Server replicas per distinct model; a batch is split across them.", ge=1, le=1024
    )
    max_model_len: int = opt(
        1536, "Context window the servers allow (prompt + completion tokens).", ge=16, le=1 << 20
    )
    dtype: str = opt(
        "auto",
        "Weights dtype: auto (bfloat16 on GPU, float32 on CPU), float32, bfloat16.",
        ("auto", "float32", "bfloat16", "float16"),
    )
    threads: int = opt(
        0, "Torch threads per CPU server actor; 0 = all cores of the machine.", ge=0, le=4096
    )
    hf_batch_size: int = opt(
        64,
        "Largest batch one transformers generate() call runs (smaller splits cost throughput).",
        ge=1,
        le=65536,
    )
    vllm_memory_fraction: float = opt(
        0.3,
        "vLLM gpu_memory_utilization; on CPU the share of RAM vLLM reserves (its 0.92 default fails in Ray).",
        gt=0.0,
        le=1.0,
    )
    vllm_kv_cache_gib: float = opt(
        3.0,
        "vLLM on CPU: GiB of RAM for the KV cache; running sequences are capped so none is ever preempted.",
        gt=0.0,
        le=4096.0,
    )
    vllm_start_timeout_s: float = opt(
        300.0,
        "Seconds to wait for a vLLM engine to start before falling back (auto).",
        gt=0.0,
        le=86400.0,
    )


@dataclass(frozen=True)
class GenerationConfig:
    """Sampling of the actor's answers."""

    temperature: float = opt(
        0.7, "Sampling temperature of the actor's answers (0 = greedy).", ge=0.0, le=10.0
    )
    top_p: float = opt(0.95, "Nucleus sampling threshold.", gt=0.0, le=1.0)
    max_tokens: int = opt(192, "Most tokens of one answer.", ge=1, le=1 << 20)


@dataclass(frozen=True)
class CriticConfig:
    """The judge: a language critique ending in a yes/no verdict, sampled k times."""

    model: str = opt(
        "",
        "Model of the critic; empty = the actor's server (one model plays every role, as in SPaR).",
    )
    votes: int = opt(
        5,
        "Verdicts sampled per response; the node value is the share of yes among parsed votes.",
        ge=1,
        le=64,
    )
    temperature: float = opt(0.8, "Sampling temperature of the verdicts.", ge=0.0, le=10.0)
    max_tokens: int = opt(
        128,
        "Most tokens of one critique (the verdict comes last: too short a budget means abstentions).",
        ge=1,
        le=1 << 20,
    )


@dataclass(frozen=True)
class RefinerConfig:
    """The refiner: rewrites a response given its critique and the environment's feedback."""

    model: str = opt("", "Model of the refiner; empty = the actor's server.")
    temperature: float = opt(0.8, "Sampling temperature of refinements.", ge=0.0, le=10.0)
    max_tokens: int = opt(192, "Most tokens of one refinement.", ge=1, le=1 << 20)
    use_env_feedback: bool = opt(True, "Show the environment's feedback in words to the refiner.")


@dataclass(frozen=True)
class SearchConfig:
    """Tree-search refinement of failed answers (level-synchronous across all tasks)."""

    strategy: str = opt(
        "bfs",
        "bfs: expand the best `keep` nodes of each level; dfs: follow the best child first.",
        ("bfs", "dfs"),
    )
    children: int = opt(3, "Refinements sampled per expanded node.", ge=1, le=64)
    keep: int = opt(2, "Nodes kept per level (bfs) after ranking by value.", ge=1, le=64)
    max_depth: int = opt(3, "Deepest refinement level.", ge=0, le=32)
    threshold: float = opt(
        0.5,
        "A node whose value is above this is accepted and ends its task's search.",
        ge=0.0,
        le=1.0,
    )
    node_budget: int = opt(
        6,
        "Most refinement nodes per task (bounds the cost of a round: 6 = one full level of 3 children plus half the next).",
        ge=0,
        le=4096,
    )
    value: str = opt(
        "both",
        "Node value: judge (critic votes), verifier (the environment), or both (mean).",
        ("judge", "verifier", "both"),
    )
    adaptive_stop: bool = opt(
        False, "Stop a task's search when the best value did not rise over the last level."
    )


@dataclass(frozen=True)
class PairsConfig:
    """Preference pairs: chosen = accepted refinement, rejected = original."""

    require_verifier: bool = opt(
        True, "Keep a pair only if the verifier passes chosen and fails rejected."
    )
    max_length_ratio: float = opt(
        3.0,
        "Drop pairs whose longer side is more than this many times the shorter.",
        ge=1.0,
        le=1e6,
    )


@dataclass(frozen=True)
class TrainConfig:
    """Training of the actor on the round's data (TRL)."""

    algorithm: str = opt(
        "dpo",
        "dpo: DPO (+SFT term) on the round's pairs. grpo: TRL GRPO, on-policy, rewards from the environment's "
        "verifier on the round's tasks, no value model. sft: SFT on chosen answers. ppo: not available "
        "(TRL ships no PPO trainer).",
        ("dpo", "grpo", "sft", "ppo"),
    )
    learning_rate: float = opt(2e-5, "Optimizer learning rate.", gt=0.0, le=1.0)
    epochs: int = opt(1, "Passes over the round's data.", ge=1, le=1000)
    batch_size: int = opt(4, "Examples per optimizer step.", ge=1, le=65536)
    beta: float = opt(
        0.1, "DPO beta (SPaR uses 0.1); also GRPO's KL coefficient.", ge=0.0, le=1000.0
    )
    sft_weight: float = opt(
        0.2,
        "Weight of the SFT (NLL) term on chosen answers added to the DPO loss.",
        ge=0.0,
        le=1000.0,
    )
    reference: str = opt(
        "round",
        "DPO reference: round = the round's starting model, original = the first model.",
        ("round", "original"),
    )
    lora: bool = opt(False, "Train a LoRA adapter (merged before serving) instead of all weights.")
    lora_r: int = opt(16, "LoRA rank.", ge=1, le=4096)
    max_length: int = opt(640, "Most tokens of prompt + answer in training.", ge=16, le=1 << 20)
    grpo_generations: int = opt(
        4, "GRPO: completions sampled per prompt (the group of the advantage).", ge=2, le=256
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


@dataclass(frozen=True)
class EvalConfig:
    """Held-out evaluation and the promotion gate."""

    heldout_tasks: int = opt(
        200, "Held-out tasks of the main environment per evaluation (greedy).", ge=1, le=1_000_000
    )
    guard_env: str = opt(
        "arithmetic", "Second environment that must not regress (forgetting guard); empty = none."
    )
    guard_tasks: int = opt(40, "Held-out tasks of the guard environment.", ge=1, le=1_000_000)
    max_tokens: int = opt(192, "Most tokens of an evaluation answer.", ge=1, le=1 << 20)
    tolerance: float = opt(
        0.02,
        "Keep a round unless its pass rate is worse than the last kept one by more than this "
        "(negative: keep only a gain of at least that much).",
        ge=-1.0,
        le=1.0,
    )
    patience: int = opt(
        2,
        "Stop after this many rounds in a row without a gain; 0 = never stop early.",
        ge=0,
        le=1000,
    )


@dataclass(frozen=True)
class DataConfig:
    """For env=file:PATH (a jsonl, csv or parquet file of tasks)."""

    reward: str = opt(
        "",
        "Reward function module:attr, f(task, response) -> float or Verdict; empty = exact match.",
    )
    prompt_field: str = opt("prompt", "Column holding the prompt.")
    answer_field: str = opt("answer", "Column holding the reference answer (for exact match).")
    pass_threshold: float = opt(1.0, "A reward at or above this counts as passed.", ge=0.0, le=1.0)


@dataclass(frozen=True)
class PromptsConfig:
    """Prompt template overrides: paths to plain-text files with the same {placeholders}."""

    critic: str = opt("", "Critic template file ({instruction}, {response}); empty = built-in.")
    refiner: str = opt(
        "",
        "Refiner template file ({instruction}, {response}, {critique}, {feedback}); empty = built-in.",
    )


@dataclass(frozen=True)
class Config:
    """A self-improvement run."""

    model: str = opt(
        "default",
        "default (SmolLM2-135M-Instruct), tiny (random 2-layer Llama), or a path "
        "to a Hugging Face model directory or a .gguf file.",
    )
    env: str = opt(
        "instructions", "Environment: a registered name, an entry point, or module:attr."
    )
    rounds: int = opt(2, "Self-improvement rounds.", ge=1, le=1000)
    tasks_per_round: int = opt(
        32, "Training tasks the actor answers per round.", ge=1, le=1_000_000
    )
    seed: int = opt(
        0,
        "Seed of tasks, sampling and training; the same seed reproduces a run "
        "(numpy and torch take 32-bit seeds).",
        ge=0,
        le=2**31 - 1,
    )
    run_dir: str = opt(
        "", "Run directory; empty = runs/<timestamp>-<env> under the current directory."
    )
    backend: str = opt(
        "auto",
        "Serving engine: vllm, hf (transformers), or auto (vLLM if it starts, else hf).",
        ("auto", "vllm", "hf"),
    )
    ray_address: str = opt(
        "", "Ray cluster to join (e.g. ray://host:10001 or auto); empty = start a local one."
    )
    dashboard_host: str = opt(
        "127.0.0.1", "Interface the Ray dashboard of a local cluster binds to."
    )
    cache_dir: str = opt(
        "",
        "Where converted models are cached; empty = $EVOFORGE_CACHE, else ~/.cache/evoforge.",
    )
    curriculum: str = opt(
        "weakness",
        "Task selection: weakness (weight types by last eval failures) or uniform.",
        ("weakness", "uniform"),
    )
    verify_timeout_s: float = opt(
        60.0,
        "Seconds one verify() call of an environment may take; a call that does not return in "
        "time stops the run with an error naming the environment and the task. 0 = no limit "
        "(verify() then runs in the calling thread, for verifiers that use signals).",
        ge=0.0,
        le=86400.0,
    )
    progress_interval_s: float = opt(
        10.0,
        "Without a terminal (a log file, CI): seconds between the plain progress lines of long work.",
        ge=0.1,
        le=3600.0,
    )
    serving: ServingConfig = sub(ServingConfig)
    generation: GenerationConfig = sub(GenerationConfig)
    critic: CriticConfig = sub(CriticConfig)
    refiner: RefinerConfig = sub(RefinerConfig)
    search: SearchConfig = sub(SearchConfig)
    pairs: PairsConfig = sub(PairsConfig)
    train: TrainConfig = sub(TrainConfig)
    eval: EvalConfig = sub(EvalConfig)
    prompts: PromptsConfig = sub(PromptsConfig)
    data: DataConfig = sub(DataConfig)


RESUME_SAFE_KEYS: tuple[str, ...] = (
    "ray_address",
    "dashboard_host",
    "cache_dir",
    "verify_timeout_s",
    "progress_interval_s",
    "serving.threads",
    "serving.vllm_memory_fraction",
    "serving.vllm_kv_cache_gib",
    "serving.vllm_start_timeout_s",
)
"""Keys ``evoforge resume RUN_DIR key=value`` may change: where the run executes, its memory and
time limits, its output; never what it computes. Any other difference between a run's
config.yaml and the config it started with stops the resume with the keys named."""


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> Config:
    """A :class:`Config` from an optional YAML file and dotted ``key=value`` overrides.

    Unknown keys, wrong types, values out of range, nan/inf, control characters, duplicate YAML
    keys and settings that cannot work together are each a one-line
    :class:`~evoforge.errors.ConfigError` naming the key and the fix."""
    from evoforge.config_loader import build, check_combinations

    return check_combinations(build(Config, path, overrides))
