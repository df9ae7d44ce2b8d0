"""Run configuration: frozen nested dataclasses, loaded from YAML plus dotted ``key=value`` overrides.

Every field is documented where it is declared (``metadata["help"]``); ``evoforge run --help``
prints them all. Unknown keys and wrong types are errors that name the key and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from evoforge.errors import ConfigError


def opt(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    """A config field with its documentation (and, for strings, the allowed values)."""
    meta: dict[str, Any] = {"help": help}
    if choices:
        meta["choices"] = choices
    if isinstance(default, list | dict) or dataclasses.is_dataclass(default):
        return field(default_factory=lambda: default, metadata=meta)
    return field(default=default, metadata=meta)


def sub(cls: type) -> Any:
    """A nested config section."""
    return field(default_factory=cls, metadata={"help": (cls.__doc__ or "").strip()})


@dataclass(frozen=True)
class ServingConfig:
    """How models are served (Ray actors around vLLM or transformers)."""

    replicas: int = opt(1, "Server replicas per distinct model; a batch is split across them.")
    max_model_len: int = opt(1536, "Context window the servers allow (prompt + completion tokens).")
    dtype: str = opt(
        "auto",
        "Weights dtype: auto (bfloat16 on GPU, float32 on CPU), float32, bfloat16.",
        ("auto", "float32", "bfloat16", "float16"),
    )
    threads: int = opt(0, "Torch threads per CPU server actor; 0 = all cores of the machine.")
    hf_batch_size: int = opt(
        64, "Largest batch one transformers generate() call runs (smaller splits cost throughput)."
    )
    vllm_memory_fraction: float = opt(
        0.3,
        "vLLM gpu_memory_utilization; on CPU the share of RAM vLLM reserves (its 0.92 default fails in Ray).",
    )
    vllm_kv_cache_gib: float = opt(
        3.0,
        "vLLM on CPU: GiB of RAM for the KV cache; running sequences are capped so none is ever preempted.",
    )
    vllm_start_timeout_s: float = opt(
        300.0, "Seconds to wait for a vLLM engine to start before falling back (auto)."
    )


@dataclass(frozen=True)
class GenerationConfig:
    """Sampling of the actor's first answers."""

    temperature: float = opt(0.7, "Sampling temperature of the actor's answers (0 = greedy).")
    top_p: float = opt(0.95, "Nucleus sampling threshold.")
    max_tokens: int = opt(192, "Most tokens of one answer.")


@dataclass(frozen=True)
class CriticConfig:
    """The judge: a language critique ending in a yes/no verdict, sampled k times."""

    model: str = opt(
        "",
        "Model of the critic; empty = the actor's server (one model plays every role, as in SPaR).",
    )
    votes: int = opt(
        5, "Verdicts sampled per response; the node value is the share of yes among parsed votes."
    )
    temperature: float = opt(0.8, "Sampling temperature of the verdicts.")
    max_tokens: int = opt(
        128,
        "Most tokens of one critique (the verdict comes last: too short a budget means abstentions).",
    )


@dataclass(frozen=True)
class RefinerConfig:
    """The refiner: rewrites a response given its critique and the environment's feedback."""

    model: str = opt("", "Model of the refiner; empty = the actor's server.")
    temperature: float = opt(0.8, "Sampling temperature of refinements.")
    max_tokens: int = opt(192, "Most tokens of one refinement.")
    use_env_feedback: bool = opt(True, "Show the environment's feedback in words to the refiner.")


@dataclass(frozen=True)
class SearchConfig:
    """Tree-search refinement of failed answers (level-synchronous across all tasks)."""

    strategy: str = opt(
        "bfs",
        "bfs: expand the best `keep` nodes of each level; dfs: follow the best child first.",
        ("bfs", "dfs"),
    )
    children: int = opt(3, "Refinements sampled per expanded node.")
    keep: int = opt(2, "Nodes kept per level (bfs) after ranking by value.")
    max_depth: int = opt(3, "Deepest refinement level.")
    threshold: float = opt(
        0.5, "A node whose value is above this is accepted and ends its task's search."
    )
    node_budget: int = opt(
        6,
        "Most refinement nodes per task (bounds the cost of a round: 6 = one full level of 3 children plus half the next).",
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
        3.0, "Drop pairs whose longer side is more than this many times the shorter."
    )


@dataclass(frozen=True)
class TrainConfig:
    """Training of the actor on the round's data (TRL)."""

    algorithm: str = opt(
        "dpo",
        "dpo: DPO (+SFT term) on the round's pairs. grpo: TRL GRPO, on-policy, rewards from the environment's "
        "verifier on the round's tasks, no value model. sft: SFT on chosen answers. ppo: not available "
        "(TRL 1.16 ships no PPO trainer).",
        ("dpo", "grpo", "sft", "ppo"),
    )
    learning_rate: float = opt(2e-5, "Optimizer learning rate.")
    epochs: int = opt(1, "Passes over the round's data.")
    batch_size: int = opt(4, "Examples per optimizer step.")
    beta: float = opt(0.1, "DPO beta (SPaR uses 0.1).")
    sft_weight: float = opt(
        0.2, "Weight of the SFT (NLL) term on chosen answers added to the DPO loss."
    )
    reference: str = opt(
        "round",
        "DPO reference: round = the round's starting model, original = the first model.",
        ("round", "original"),
    )
    lora: bool = opt(False, "Train a LoRA adapter (merged before serving) instead of all weights.")
    lora_r: int = opt(16, "LoRA rank.")
    max_length: int = opt(640, "Most tokens of prompt + answer in training.")
    max_refiner_examples: int = opt(
        12,
        "Most refiner examples (refinement chains first, then judgements) mixed into a round's training.",
    )
    refiner_data: str = opt(
        "mix",
        "Refiner SFT data: mix into the actor's training when roles share one model, or off.",
        ("mix", "off"),
    )


@dataclass(frozen=True)
class EvalConfig:
    """Held-out evaluation and the promotion gate."""

    heldout_tasks: int = opt(200, "Held-out tasks of the main environment per evaluation (greedy).")
    guard_env: str = opt(
        "arithmetic", "Second environment that must not regress (forgetting guard); empty = none."
    )
    guard_tasks: int = opt(40, "Held-out tasks of the guard environment.")
    max_tokens: int = opt(192, "Most tokens of an evaluation answer.")
    tolerance: float = opt(
        0.02, "Keep a round unless its pass rate is worse than the last kept one by more than this."
    )
    patience: int = opt(
        2, "Stop after this many rounds in a row without a gain; 0 = never stop early."
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
    pass_threshold: float = opt(1.0, "A reward at or above this counts as passed.")


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
    rounds: int = opt(2, "Self-improvement rounds.")
    tasks_per_round: int = opt(32, "Training tasks the actor answers per round.")
    seed: int = opt(0, "Seed of tasks, sampling and training; the same seed reproduces a run.")
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
        "~/.cache/evoforge", "Where converted models are cached (EVOFORGE_CACHE overrides)."
    )
    curriculum: str = opt(
        "weakness",
        "Task selection: weakness (weight types by last eval failures) or uniform.",
        ("weakness", "uniform"),
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


# --------------------------------------------------------------------------------------------
# loading


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def all_keys(cls: type = Config, prefix: str = "") -> list[str]:
    """Every dotted key of a config class, sections excluded."""
    keys = []
    for f in dataclasses.fields(cls):
        tp = _hints(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            keys.extend(all_keys(tp, f"{prefix}{f.name}."))
        else:
            keys.append(prefix + f.name)
    return keys


def _unknown(key: str, valid: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = (
        f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(valid[:12])} ..."
    )
    return ConfigError(f"unknown config key '{key}'{hint}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(key: str, tp: Any, value: Any, from_text: bool) -> Any:
    """Check (YAML) or convert (command-line text) one value against its field type."""
    if isinstance(tp, types.UnionType):  # not used by the schema today; keep the error clear
        raise ConfigError(f"config key '{key}' has an unsupported type {tp}")
    if from_text:
        text = str(value)
        try:
            if tp is bool:
                low = text.strip().lower()
                if low in ("true", "yes", "1", "on"):
                    return True
                if low in ("false", "no", "0", "off"):
                    return False
                raise ValueError
            if tp is int:
                return int(text)
            if tp is float:
                return float(text)
            if tp is str:
                return text
        except ValueError:
            raise ConfigError(
                f"config key '{key}' expects {_type_name(tp)}, got '{text}'"
            ) from None
    ok = (
        (tp is bool and isinstance(value, bool))
        or (tp is int and isinstance(value, int) and not isinstance(value, bool))
        or (tp is float and isinstance(value, int | float) and not isinstance(value, bool))
        or (tp is str and isinstance(value, str))
    )
    if not ok:
        raise ConfigError(
            f"config key '{key}' expects {_type_name(tp)}, got {type(value).__name__} {value!r}"
        )
    return float(value) if tp is float else value


def _build(cls: type, data: dict[str, Any], prefix: str, textual: set[str]) -> Any:
    hints = _hints(cls)
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        dotted = prefix + str(key)
        if key not in names:
            raise _unknown(dotted, all_keys())
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"config key '{dotted}' is a section; set its fields, e.g. "
                    f"{dotted}.{dataclasses.fields(tp)[0].name}=..."
                )
            kwargs[key] = _build(tp, value, dotted + ".", textual)
            continue
        value = _coerce(dotted, tp, value, dotted in textual)
        choices = names[key].metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(
                f"config key '{dotted}' must be one of {', '.join(choices)}; got '{value}'"
            )
        kwargs[key] = value
    return cls(**kwargs)


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> Config:
    """Build a :class:`Config` from an optional YAML file and ``key=value`` overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(
                f"config file '{p}' not found; pass an existing YAML file or none for the default"
            )
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise ConfigError(
                f"config file '{p}' is not valid YAML{where}; fix the syntax"
            ) from None
        except UnicodeDecodeError:
            raise ConfigError(f"config file '{p}' is not UTF-8 text") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(
                f"config file '{p}' must hold a mapping of keys, not {type(loaded).__name__}"
            )
        data = loaded
    textual: set[str] = set()
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not key=value (e.g. rounds=3)")
        key, value = item.split("=", 1)
        key = key.strip()
        if key not in all_keys():
            raise _unknown(key, all_keys())
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"config key '{key}' conflicts with a scalar in the config file")
        node[parts[-1]] = value
        textual.add(key)
    return _build(Config, data, "", textual)


def to_dict(config: Any) -> dict[str, Any]:
    """The config as plain nested dicts (for config.yaml)."""
    return dataclasses.asdict(config)


def dump_yaml(config: Config) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False)


def help_text() -> str:
    """Every config key with its type, default and documentation."""
    lines = []

    def walk(cls: type, prefix: str) -> None:
        hints = _hints(cls)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if dataclasses.is_dataclass(tp):
                lines.append(f"\n  [{prefix}{f.name}] {f.metadata.get('help', '')}")
                walk(tp, f"{prefix}{f.name}.")
                continue
            default = f.default
            choices = f.metadata.get("choices")
            kind = "|".join(choices) if choices else _type_name(tp)
            setting = f"{prefix}{f.name}={default!r}"
            lines.append(f"  {setting:<40} ({kind}) {f.metadata.get('help', '')}")

    walk(Config, "")
    return "\n".join(lines)
