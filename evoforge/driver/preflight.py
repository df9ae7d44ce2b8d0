"""Everything a run checks before its run directory is written.

A value or a plugin that cannot work is a one-line error here, in seconds, not a traceback
minutes (or rounds) into the run: the run directory, the prompt templates, the dashboard's
address, the Ray cluster, the GPU layout's static rules (``placement.static_checks``), the
experiment trackers' libraries, the environments (``check_env``, then ``tasks()`` at the sizes the run
will ask for), the models and their cache, the token budgets of every prompt the roles will
build against the context window and TRL's ``max_length``, and last the placement, CPU slots and
GPUs against the cluster itself (resources.py; a cluster to join is joined here).
"""

from __future__ import annotations

import functools
import socket
from dataclasses import dataclass, field
from pathlib import Path

from evoforge.agents.models import ModelRef, resolve_model
from evoforge.agents.prompts import load_template
from evoforge.agents.roles import Roles
from evoforge.agents.serving import cluster, placement
from evoforge.agents.serving.chat_tokenizer import load_chat_tokenizer
from evoforge.agents.serving.engine_base import prompt_ids, too_long
from evoforge.config import Config
from evoforge.config.env_defaults import ENV_DEFAULTS
from evoforge.driver.resources import RunPlan, plan_run
from evoforge.driver.trackers import check_trackers
from evoforge.envs.base import Environment, Task
from evoforge.envs.check import CheckedEnv, check_env
from evoforge.envs.multiturn import is_multiturn, tool_map
from evoforge.envs.registry import get_env
from evoforge.envs.verify import safe_verify
from evoforge.errors import ConfigError, EvoforgeError
from evoforge.round.servers import resolve_models
from evoforge.storage.rundir import check_run_dir

SAMPLE_PROMPTS = 4
"""Longest prompts of each split whose tokens are counted against the budgets."""


@dataclass
class Checked:
    """What the checks built: the environments a run uses, and notes to show the user."""

    env: CheckedEnv
    guard: CheckedEnv | None
    notes: list[str] = field(default_factory=list)
    models: dict[str, ModelRef] = field(default_factory=dict)
    """Each role's resolved model (roles with one spec share one), for the run's servers."""
    plan: RunPlan | None = None
    """Placement, CPU slots, GPU shares and memory on the run's cluster (``evoforge plan``); the
    run starts its servers and trainer as it says (runner.py), it is not planned twice."""


def validate(config: Config, new_run_dir: Path | None = None) -> Checked:
    """Every check that can run before a run directory is written (``new_run_dir``: the
    directory a new run will create, checked too)."""
    if config.train.algorithm == "ppo":
        raise EvoforgeError(
            "train.algorithm=ppo: TRL 1.16 ships no PPO trainer (it was removed upstream); use "
            "grpo or rloo, which learn on-policy from the environment's rewards without a value model"
        )
    placement.static_checks(config)
    check_trackers(config)
    if new_run_dir is not None:
        check_run_dir(new_run_dir)
    for role in ("critic", "refiner"):
        load_template(role, getattr(config.prompts, role))
    if config.ray_address:
        if not cluster.reachable(config.ray_address):
            raise EvoforgeError(
                f"cannot reach the Ray cluster at ray_address='{config.ray_address}'; start it "
                "with `ray start --head` or leave ray_address empty for a local cluster"
            )
    else:
        check_local_address(config.dashboard_host)
    env = _environment(config, config.env)
    guard = None
    if config.eval.guard_env and config.eval.guard_env != config.env:
        guard = _environment(config, config.eval.guard_env)
    if config.train.algorithm in ("grpo", "rloo") and is_multiturn(env):
        raise EvoforgeError(
            f"train.algorithm={config.train.algorithm}: environment '{env.name}' is multi-turn "
            "(it gives tools) and evoforge's on-policy trainers sample one completion per prompt; "
            "use train.algorithm=dpo or sft"
        )
    checked = Checked(env, guard, notes=env_default_notes(config))
    train, heldout = _task_counts(config, checked)
    checked.models = resolve_models(config, _model)
    check_budgets(config, env, train, heldout, checked.models["actor"].path)
    checked.plan = plan_run(config, checked.models)
    return checked


def env_default_notes(config: Config) -> list[str]:
    """A line naming the environment's own defaults the run keeps (config/env_defaults.py)."""
    own = ENV_DEFAULTS.get(config.env, {}).items()
    kept = [f"{k}={v}" for k, v in own if functools.reduce(getattr, k.split("."), config) == v]
    if not kept:
        return []
    return [
        f"note: environment '{config.env}' defaults to {', '.join(kept)} (set any to change it)"
    ]


def check_local_address(host: str) -> None:
    """``dashboard_host`` must be an address of this machine (the dashboard binds to it)."""
    try:
        for family, kind, proto, _, addr in socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM):
            with socket.socket(family, kind, proto) as s:
                s.bind(addr[:2] if family == socket.AF_INET else addr)
                return
    except (OSError, UnicodeError) as e:
        raise ConfigError(
            f"dashboard_host='{host}' is not an address of this machine ({e}); use 127.0.0.1 "
            "(or 0.0.0.0 to expose the dashboard on every interface)"
        ) from None


def _environment(config: Config, spec: str) -> CheckedEnv:
    env = CheckedEnv(
        get_env(spec, config.data), config.verify_timeout_s, config.generation.tool_timeout_s
    )
    report = check_env(env, n=4, seed=config.seed)
    if not report.ok:
        raise EvoforgeError(
            report.problems[0] + f" (run `evoforge envs check {spec}` for all checks)"
        )
    return env


def _task_counts(config: Config, checked: Checked) -> tuple[list[Task], list[Task]]:
    """tasks() at the sizes the run asks for (ids unique, every task storable), with a note
    where a finite environment has fewer."""
    c, env = config, checked.env
    train = env.tasks("train", c.tasks_per_round, c.seed)
    heldout = env.tasks("heldout", c.eval.heldout_tasks, c.seed)
    sizes = [("tasks_per_round", "train", c.tasks_per_round, train, env.name)]
    sizes.append(("eval.heldout_tasks", "heldout", c.eval.heldout_tasks, heldout, env.name))
    if checked.guard is not None:
        g = checked.guard.tasks("heldout", c.eval.guard_tasks, c.seed)
        sizes.append(("eval.guard_tasks", "heldout", c.eval.guard_tasks, g, checked.guard.name))
    for key, split, asked, got, name in sizes:
        if len(got) < asked:
            checked.notes.append(
                f"note: {key}={asked} but environment '{name}' has {len(got)} {split} tasks; "
                f"the run uses those {len(got)}"
            )
    t = c.train
    if t.algorithm in ("grpo", "rloo") and len(train) * t.grpo_generations < max(
        t.batch_size, t.grpo_generations
    ):
        raise ConfigError(
            f"train.algorithm={t.algorithm}: {len(train)} training tasks x train.grpo_generations="
            f"{t.grpo_generations} completions cannot fill one batch of train.batch_size="
            f"{t.batch_size}; lower train.batch_size or raise tasks_per_round"
        )
    return train, heldout


def _model(spec: str, cache_dir: str) -> ModelRef:
    if cache_dir and Path(cache_dir).exists() and not Path(cache_dir).is_dir():
        raise ConfigError(f"cache_dir='{cache_dir}' is a file; pick a directory for cached models")
    try:
        return resolve_model(spec, cache_dir)
    except OSError as e:
        where = f"cache_dir='{cache_dir}'" if cache_dir else "the model cache"
        raise EvoforgeError(
            f"cannot prepare model '{spec}' in {where} ({e.strerror or e}); pick a writable "
            "cache_dir (or set EVOFORGE_CACHE)"
        ) from None


def _longest(tasks: list[Task]) -> list[Task]:
    return sorted(tasks, key=lambda t: -sum(len(m["content"]) for m in t.messages))[:SAMPLE_PROMPTS]


def check_budgets(
    config: Config, env: Environment, train: list[Task], heldout: list[Task], model_path: str
) -> None:
    """The longest prompts of each role, with the longest texts the run lets them carry, must fit
    in ``serving.max_model_len``; a training prompt must fit in ``train.max_length`` (tokens of
    the actor's model at ``model_path``)."""
    tok = load_chat_tokenizer(model_path)
    window, c = config.serving.max_model_len, config
    if is_multiturn(env):
        _multiturn_budgets(config, env, tok, train + heldout)
        return
    roles = Roles.from_config(config, None, None, None)  # prompts only: no server is called
    response = max(c.generation.max_tokens, c.refiner.max_tokens)

    def tokens(messages) -> int:
        return len(prompt_ids(tok, messages))

    for task in _longest(train):
        n = tokens(task.messages)
        if n + c.generation.max_tokens > window:
            raise too_long(task.id, n, window, c.generation.max_tokens)
        if c.train.algorithm in ("dpo", "sft") and n >= c.train.max_length:
            raise ConfigError(
                f"train.max_length={c.train.max_length} does not exceed the {n} prompt tokens of "
                f"'{task.id}'; TRL would drop every such example: raise train.max_length"
            )
        critic = tokens(roles.critic_prompt(task, "")) + response
        feedback = safe_verify(env, task, "").feedback
        refiner = tokens(roles.refiner_prompt(task, "", "", feedback)) + response
        refiner += c.critic.max_tokens
        for role, n_role, parts in (
            ("critic", critic, "generation.max_tokens/refiner.max_tokens"),
            ("refiner", refiner, "the answer's max_tokens + critic.max_tokens"),
        ):
            if n_role >= window:
                raise ConfigError(
                    f"the {role} prompt of '{task.id}' can reach {n_role} tokens (template, task "
                    f"and {parts}) but serving.max_model_len is {window}; raise "
                    "serving.max_model_len or lower those max_tokens"
                )
    for task in _longest(heldout):
        n = tokens(task.messages)
        if n + c.eval.max_tokens > window:
            raise ConfigError(
                f"heldout prompt of '{task.id}' has {n} tokens plus {c.eval.max_tokens} answer "
                f"tokens (eval.max_tokens) but the context window is {window}; shorten the task "
                "or raise serving.max_model_len"
            )


def _multiturn_budgets(config: Config, env: Environment, tok, tasks: list[Task]) -> None:
    """A multi-turn prompt counts its tools' specs as the model sees them, and must leave room for
    a turn in the context window and in training (``train.max_length``): a longer prompt would be
    refused by the server or its turn cut off by the trainer."""
    window, answer = config.serving.max_model_len, config.generation.max_tokens
    for task in _longest(tasks):
        specs = [t.spec() for t in tool_map(env, task).values()]
        n = len(prompt_ids(tok, task.messages, specs))
        if n + answer > window:
            raise too_long(task.id, n, window, answer)
        if n + answer > config.train.max_length:
            raise ConfigError(
                f"prompt of '{task.id}' has {n} tokens with its tools plus {answer} answer "
                f"tokens (generation.max_tokens) but train.max_length is "
                f"{config.train.max_length}; raise train.max_length to at least {n + answer}"
            )
