import random

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
