"""``check_env``: validate an environment before a run depends on it (Gymnasium's env checker idea);
``CheckedEnv``: the environment as a run uses it, with the same checks on every call.

Checks: tasks() types, well-formed messages, ids unique and tasks storable as JSON (run files
record them), determinism for a seed, a different seed changing the tasks, train/heldout
disjointness, and verify() on sample and adversarial responses returning a well-formed Verdict
within the time limit; for a multi-turn environment (one with tools) the tool and step
checks of check_multiturn.py. Each problem is reported as one line naming the environment.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evoforge.envs.base import Environment, Task, Verdict
from evoforge.envs.check_multiturn import check_multiturn
from evoforge.envs.multiturn import is_multiturn
from evoforge.envs.verify import TimeLimit, env_name, safe_verify
from evoforge.errors import EvoforgeError

ADVERSARIAL = (
    "",
    "A short answer.",
    "\n\n   \t",
    "é 中文 🚀 \x00 \u202e",
    "{}[](){{}}\\boxed{} <answer></answer> ```python\n```",
    "a" * 20_000 + "!",
)
"""Responses every verifier must survive (empty, whitespace, non-ASCII and control characters,
markup, a long run that trips naive regular expressions); the task's own prompt is tried too."""


class _Lines(list):
    """A report's list of lines that also shows each line as it is added, when told how."""

    def __init__(self, echo: Callable[[str], None] | None = None, mark: str = "") -> None:
        super().__init__()
        self.echo, self.mark = echo, mark

    def append(self, line: str) -> None:
        super().append(line)
        if self.echo is not None:
            self.echo(self.mark + line)


@dataclass
class CheckReport:
    env: str
    problems: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    echo: Callable[[str], None] | None = field(default=None, repr=False, compare=False)
    """Called with each line (``ok   ...`` or ``FAIL ...``) as the check that gives it ends:
    ``envs check`` prints each check as it runs."""

    def __post_init__(self) -> None:
        problems, checks = self.problems, self.checks
        self.problems, self.checks = _Lines(self.echo, "FAIL "), _Lines(self.echo, "ok   ")
        for line in problems:
            self.problems.append(line)
        for line in checks:
            self.checks.append(line)

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, msg: str) -> None:
        self.problems.append(f"environment '{self.env}': {msg}")


def _fingerprint(t: Task) -> tuple:
    return (t.id, tuple((m.get("role"), m.get("content")) for m in t.messages))


def validate_tasks(tasks: Any, split: str, n: int, seed: int) -> list[Task]:
    """Raise ValueError naming the first problem of what ``tasks(split, n, seed)`` returned.

    Fewer than ``n`` tasks is fine (finite data), none is not."""
    call = f"tasks('{split}', {n}, {seed})"
    if not isinstance(tasks, list):
        raise ValueError(f"{call} must return a list of Task, got {type(tasks).__name__}")
    bad = [type(t).__name__ for t in tasks if not isinstance(t, Task)]
    if bad:
        raise ValueError(f"{call} must return Task objects (evoforge.envs.Task), got {bad[0]}")
    if not tasks or len(tasks) > n:
        raise ValueError(f"{call} returned {len(tasks)} tasks, expected 1 to {n}")
    seen: set[str] = set()
    for t in tasks:
        if not isinstance(t.id, str) or not t.id:
            raise ValueError(
                f"{call} returned a task with id {t.id!r}; ids must be non-empty strings"
            )
        if t.id in seen:
            raise ValueError(f"{call} returned task id '{t.id}' twice; make each id unique")
        seen.add(t.id)
        if not t.messages or not all(
            isinstance(m, dict)
            and isinstance(m.get("role"), str)
            and isinstance(m.get("content"), str)
            for m in t.messages
        ):
            raise ValueError(
                f"task '{t.id}' needs messages as a list of {{'role': str, 'content': str}} dicts"
            )
        try:
            json.dumps(t.to_json(), allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"task '{t.id}' cannot be stored as JSON ({e}); metadata and tags must hold only "
                "strings, finite numbers, booleans, None, lists and dicts"
            ) from None
    return tasks


def checked_tasks(env: Environment, split: str, n: int, seed: int) -> list[Task]:
    """``env.tasks(split, n, seed)``, validated; any problem is an EvoforgeError naming the
    environment."""
    name = env_name(env)
    try:
        tasks = env.tasks(split, n, seed)
    except EvoforgeError:
        raise
    except Exception as e:
        raise EvoforgeError(
            f"environment '{name}': tasks('{split}', {n}, {seed}) raised {type(e).__name__}: {e}"
        ) from e
    try:
        return validate_tasks(tasks, split, n, seed)
    except ValueError as e:
        raise EvoforgeError(f"environment '{name}': {e}") from None


class CheckedEnv:
    """An environment as a run uses it: every tasks() call validated, every verify() call under
    ``verify_timeout_s`` (0 = no limit), every tool call under ``tool_timeout_s`` (0 = the
    environment's own ``tool_timeout_s``, else DEFAULT_TOOL_TIMEOUT_S; see
    :func:`~evoforge.envs.multiturn.tool_time_limit`). Other attributes are the wrapped
    environment's."""

    def __init__(
        self, env: Environment, verify_timeout_s: float, tool_timeout_s: float = 0.0
    ) -> None:
        self.inner = env
        self.name = env_name(env)
        self._limit = TimeLimit(env, verify_timeout_s) if verify_timeout_s > 0 else None
        if tool_timeout_s > 0:
            self.tool_timeout_s = tool_timeout_s

    def tasks(self, split: str, n: int, seed: int) -> list[Task]:
        return checked_tasks(self.inner, split, n, seed)

    def verify(self, task: Task, response: str) -> Verdict:
        if self._limit is None:
            return self.inner.verify(task, response)
        return self._limit.verify(task, response)

    def __getattr__(self, attr: str) -> Any:
        if attr == "inner":  # not set yet (e.g. while unpickling)
            raise AttributeError(attr)
        return getattr(self.inner, attr)


def _tasks(
    env: Environment, report: CheckReport, split: str, n: int, seed: int
) -> list[Task] | None:
    try:
        return checked_tasks(env, split, n, seed)
    except EvoforgeError as e:
        report.problems.append(str(e))
        return None


def _check_verify(env: Environment, report: CheckReport, tasks: list[Task]) -> None:
    for i, t in enumerate(tasks[:4]):
        for response in (*(ADVERSARIAL if i == 0 else ADVERSARIAL[:2]), t.prompt):
            try:
                safe_verify(env, t, response)
            except EvoforgeError as e:
                detail = str(e).split(": ", 1)[-1]
                report.fail(f"{detail} (response {response[:40]!r})")
                return
    report.checks.append(
        "verify() returns well-formed Verdicts on sample and adversarial responses"
    )


def check_env(
    env: Environment, n: int = 16, seed: int = 0, echo: Callable[[str], None] | None = None
) -> CheckReport:
    """Run every check; the report lists what passed and each problem found (``echo``, when
    given, gets each line as its check ends). Wrap ``env`` in :class:`CheckedEnv` to hold
    verify() and tool calls to a time limit."""
    name = env_name(env)
    report = CheckReport(env=name, echo=echo)
    if not isinstance(getattr(env, "name", None), str):
        report.fail("needs a string attribute `name`")
    a = _tasks(env, report, "train", n, seed)
    if not a:
        return report
    report.checks.append(f"tasks('train', {n}, {seed}) returns {len(a)} storable Task objects")
    b = _tasks(env, report, "train", n, seed)
    if b is not None:
        if [_fingerprint(t) for t in a] != [_fingerprint(t) for t in b]:
            report.fail(
                f"tasks('train', {n}, {seed}) differs between two calls; derive every task from "
                "(split, seed, index) only, e.g. random.Random(f'{split}/{seed}/{index}')"
            )
        else:
            report.checks.append("same seed gives the same tasks")
    c = _tasks(env, report, "train", n, seed + 1)
    if c is not None and n > 1 and [_fingerprint(t) for t in a] == [_fingerprint(t) for t in c]:
        report.fail("another seed gives the same tasks; use the seed when generating tasks")
    h = _tasks(env, report, "heldout", n, seed)
    if h is not None:
        shared_ids = {t.id for t in a} & {t.id for t in h}
        shared_text = {_fingerprint(t)[1] for t in a} & {_fingerprint(t)[1] for t in h}
        if shared_ids or shared_text:
            report.fail(
                f"train and heldout share {len(shared_ids | shared_text)} tasks; the splits must be disjoint"
            )
        else:
            report.checks.append("train and heldout are disjoint")
    if is_multiturn(env):
        check_multiturn(env, a, report)
    else:
        _check_verify(env, report, a)
    return report
