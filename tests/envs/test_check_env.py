import random

import pytest

from evoforge.envs import Task, Verdict, get_env
from evoforge.envs.check import check_env


class Base:
    name = "base"

    def tasks(self, split, n, seed):
        return [
            Task(
                id=f"{split}-{seed}-{i}",
                messages=({"role": "user", "content": f"{split} {seed} {i}"},),
            )
            for i in range(n)
        ]

    def verify(self, task, response):
        return Verdict(score=1.0, passed=True)


class Nondeterministic(Base):
    def tasks(self, split, n, seed):
        return [
            Task(
                id=f"{split}-{i}-{random.random()}",
                messages=({"role": "user", "content": str(random.random())},),
            )
            for i in range(n)
        ]


class RaisingVerify(Base):
    def verify(self, task, response):
        raise KeyError("answer")


class WrongTypes(Base):
    def tasks(self, split, n, seed):
        return [{"id": i} for i in range(n)]


class NaNScore(Base):
    def verify(self, task, response):
        return Verdict(score=float("nan"), passed=False)


class Overlapping(Base):
    def tasks(self, split, n, seed):
        return super().tasks("x", n, seed)


def test_builtins_pass():
    for name in ("instructions", "arithmetic"):
        assert check_env(get_env(name)).ok


def test_catches_each_problem_with_its_message():
    assert check_env(Base()).ok
    r = check_env(Nondeterministic())
    assert any("differs between two calls" in p for p in r.problems)
    r = check_env(RaisingVerify())
    assert any("verify() raised KeyError" in p for p in r.problems)
    r = check_env(WrongTypes())
    assert any("must return Task objects" in p for p in r.problems)
    r = check_env(NaNScore())
    assert any("score nan" in p for p in r.problems)
    r = check_env(Overlapping())
    assert any("train and heldout share" in p for p in r.problems)
    assert all(p.startswith("environment 'base'") for p in r.problems)


class RepeatsLater(Base):
    """Ids repeat only past the 4 tasks a run's first check asks for."""

    def tasks(self, split, n, seed):
        return [
            Task(
                id=f"{split}-{i % 5}",
                messages=({"role": "user", "content": f"{split} {seed} {i}"},),
            )
            for i in range(n)
        ]


def _with_metadata(value):
    class Meta(Base):
        def tasks(self, split, n, seed):
            return [
                Task(id=t.id, messages=t.messages, metadata={"answer": value})
                for t in super().tasks(split, n, seed)
            ]

    return Meta()


def _with_message(message):
    class Msg(Base):
        def tasks(self, split, n, seed):
            return [Task(id=f"{split}{i}", messages=(message,)) for i in range(n)]

    return Msg()


def test_tasks_a_run_cannot_store_or_key_are_caught_at_every_size():
    """Techniques: ids that repeat only in larger calls, metadata JSON cannot hold (a set, bytes,
    a datetime, NaN, an object), malformed messages, empty or non-string ids, too many tasks."""
    import datetime

    from evoforge.envs.check import CheckedEnv, checked_tasks
    from evoforge.errors import EvoforgeError

    assert check_env(RepeatsLater(), n=4).ok  # the small check a run starts with passes...
    assert any("returned task id 'train-0' twice" in p for p in check_env(RepeatsLater()).problems)
    with pytest.raises(
        EvoforgeError, match="environment 'base': tasks\\('train', 24, 0\\) returned"
    ):
        CheckedEnv(RepeatsLater(), 0).tasks("train", 24, 0)  # ...the run's own calls do not

    for value in ({1, 2}, b"raw", datetime.date(2020, 1, 1), float("nan"), object()):
        problems = check_env(_with_metadata(value)).problems
        assert any("cannot be stored as JSON" in p for p in problems), value
    for message in ({"role": "user"}, {"role": "user", "content": None}, "hello", {"content": "x"}):
        problems = check_env(_with_message(message)).problems
        assert any("needs messages as a list" in p for p in problems), message

    class BadIds(Base):
        def __init__(self, make):
            self.make = make

        def tasks(self, split, n, seed):
            return [
                Task(id=self.make(i), messages=({"role": "user", "content": f"{split}{i}"},))
                for i in range(n)
            ]

    for make in (lambda i: "", lambda i: i, lambda i: None):
        with pytest.raises(EvoforgeError, match="ids must be non-empty strings"):
            checked_tasks(BadIds(make), "train", 3, 0)

    class TooMany(Base):
        def tasks(self, split, n, seed):
            return super().tasks(split, n + 1, seed)

    with pytest.raises(EvoforgeError, match="returned 5 tasks, expected 1 to 4"):
        checked_tasks(TooMany(), "train", 4, 0)
