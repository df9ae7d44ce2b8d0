"""``check_env``: validate an environment before a run depends on it (Gymnasium's env checker idea).

Checks: tasks() types, unique ids, determinism for a seed, a different seed changing the tasks,
train/heldout disjointness, and verify() on sample responses returning a well-formed Verdict;
for a multi-turn environment (one with tools) the tool and step checks of check_multiturn.py.
Each problem is reported as one line naming the environment and what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from evoforge.envs.base import Environment, Task
from evoforge.envs.check_multiturn import check_multiturn
from evoforge.envs.multiturn import is_multiturn
from evoforge.envs.verify import validate_verdict


@dataclass
class CheckReport:
    env: str
    problems: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, msg: str) -> None:
        self.problems.append(f"environment '{self.env}': {msg}")


def _fingerprint(t: Task) -> tuple:
    return (t.id, tuple((m.get("role"), m.get("content")) for m in t.messages))


def _call_tasks(
    env: Environment, report: CheckReport, split: str, n: int, seed: int
) -> list[Task] | None:
    try:
        tasks = env.tasks(split, n, seed)
    except Exception as e:
        report.fail(f"tasks('{split}', {n}, {seed}) raised {type(e).__name__}: {e}")
        return None
    if not isinstance(tasks, list):
        report.fail(f"tasks() must return a list of Task, got {type(tasks).__name__}")
        return None
    bad = [type(t).__name__ for t in tasks if not isinstance(t, Task)]
    if bad:
        report.fail(f"tasks() must return Task objects (evoforge.envs.Task), got {bad[0]}")
        return None
    if not tasks or len(tasks) > n:  # fewer than n is fine for finite data (a file)
        report.fail(f"tasks('{split}', {n}, {seed}) returned {len(tasks)} tasks, expected 1 to {n}")
    for t in tasks:
        if not t.messages or not all(
            isinstance(m, dict) and "role" in m and "content" in m for m in t.messages
        ):
            report.fail(f"task '{t.id}' needs messages as a list of {{'role', 'content'}} dicts")
            return None
    return tasks


def check_env(env: Environment, n: int = 16, seed: int = 0) -> CheckReport:
    """Run every check; the report lists what passed and each problem found."""
    name = str(getattr(env, "name", type(env).__name__))
    report = CheckReport(env=name)
    if not isinstance(getattr(env, "name", None), str):
        report.fail("needs a string attribute `name`")
    a = _call_tasks(env, report, "train", n, seed)
    if not a:
        return report
    report.checks.append(f"tasks('train', {n}, {seed}) returns {n} Task objects")
    if len({t.id for t in a}) != len(a):
        report.fail("task ids repeat within one call; make each id unique")
    b = _call_tasks(env, report, "train", n, seed)
    if b is not None:
        if [_fingerprint(t) for t in a] != [_fingerprint(t) for t in b]:
            report.fail(
                f"tasks('train', {n}, {seed}) differs between two calls; derive every task from "
                "(split, seed, index) only, e.g. random.Random(f'{split}/{seed}/{index}')"
            )
        else:
            report.checks.append("same seed gives the same tasks")
    c = _call_tasks(env, report, "train", n, seed + 1)
    if c is not None and n > 1 and [_fingerprint(t) for t in a] == [_fingerprint(t) for t in c]:
        report.fail("another seed gives the same tasks; use the seed when generating tasks")
    h = _call_tasks(env, report, "heldout", n, seed)
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
        _check_verify(env, a, report)
    return report


def _check_verify(env: Environment, tasks: list[Task], report: CheckReport) -> None:
    for t in tasks[: min(4, len(tasks))]:
        for response in ("", "A short answer.", t.prompt):
            try:
                validate_verdict(report.env, env.verify(t, response))
            except ValueError as e:
                report.fail(str(e).split(": ", 1)[1])
                return
            except Exception as e:
                report.fail(
                    f"verify() raised {type(e).__name__}: {e} on task '{t.id}'; a verifier must "
                    "return a failing Verdict with feedback instead of raising"
                )
                return
    report.checks.append("verify() returns well-formed Verdicts on sample responses")
