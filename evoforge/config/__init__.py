"""Every setting of a run and its one default: frozen nested dataclasses.

Each field is documented and bounded where it is declared (``opt``); ``evoforge run --help``
prints them all. This module (the top-level settings), ``sections.py`` and ``train.py`` (the
nested sections) are the only home of a default: settings objects elsewhere (``SearchSettings``,
``ServerSpec``, ``TrainSettings``, the roles' sampling) are built from a ``Config`` by their own
``from_config`` and carry no defaults of their own.

Loading (YAML, ``key=value`` overrides, type and range checks) lives in ``loader.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evoforge.config.sections import (
    CriticConfig,
    DataConfig,
    EvalConfig,
    ExploreConfig,
    GenerationConfig,
    PairsConfig,
    PromptsConfig,
    RefinerConfig,
    SearchConfig,
    ServingConfig,
    opt,
    sub,
)
from evoforge.config.train import TrainConfig


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
        72, "Training tasks the actor answers per round.", ge=1, le=1_000_000
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
    report_to: str = opt(
        "",
        "Experiment trackers that get the round metrics, the trainer's losses and the config, "
        "comma-separated: tensorboard (RUN_DIR/tensorboard), wandb, mlflow "
        "($MLFLOW_TRACKING_URI, else RUN_DIR/mlruns); empty = none.",
        ("tensorboard", "wandb", "mlflow"),
        many=True,
    )
    curriculum: str = opt(
        "informative",
        "Task selection: informative (oversample types whose sampled pass rate is between 0 and 1: "
        "they yield pairs), weakness (weight types by last eval failures) or uniform.",
        ("informative", "weakness", "uniform"),
    )
    curriculum_floor: float = opt(
        0.25,
        "Weight every type keeps under the informative and weakness curricula (types that never "
        "or always pass still appear: the tree search works on the first).",
        ge=0.0,
        le=10.0,
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
    explore: ExploreConfig = sub(ExploreConfig)
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
    "train.micro_batch_size",
)
"""Keys ``evoforge resume RUN_DIR key=value`` may change: where the run executes, its memory and
time limits, its output; never what it computes (a micro-batch splits an optimizer step's
examples into passes; the step still sees the same ones). Any other difference between a run's
config.yaml and the config it started with stops the resume with the keys named."""


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> Config:
    """A :class:`Config` from an optional YAML file and dotted ``key=value`` overrides.

    The environment's own defaults (env_defaults.py) apply where the file and the overrides
    leave a key unset. Unknown keys, wrong types, values out of range, nan/inf, control
    characters, duplicate YAML keys and settings that cannot work together are each a one-line
    :class:`~evoforge.errors.ConfigError` naming the key and the fix."""
    from evoforge.config.env_defaults import env_defaults
    from evoforge.config.loader import build, check_combinations

    def presets(data: dict[str, Any]) -> dict[str, Any]:
        return env_defaults(data, Config.env)

    return check_combinations(build(Config, path, overrides, presets))
