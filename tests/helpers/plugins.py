"""Plugins the tests name by ``module:attr``, as a user's config would: environments that are
broken in one way each, and a reward function for data-file environments."""

from __future__ import annotations

import zlib

from evoforge.envs.base import Task, Verdict


def reward_len(task: Task, response: str) -> float:
    """1 when the response is at most ``limit`` characters (a data-file column)."""
    return 1.0 if len(response) <= int(task.metadata["limit"]) else 0.0


class _Base:
    name = "bad"

    def tasks(self, split, n, seed):
        return [
            Task(
                id=f"{split}{seed}{i}", messages=({"role": "user", "content": f"{split}{seed}{i}"},)
            )
            for i in range(n)
        ]

    def verify(self, task, response):
        return Verdict(score=1.0, passed=True)


class RaisingTasks(_Base):
    def tasks(self, split, n, seed):
        raise RuntimeError("boom")


class NaNVerify(_Base):
    def verify(self, task, response):
        return Verdict(score=float("nan"), passed=False)


class EmptyTasks(_Base):
    def tasks(self, split, n, seed):
        return []


class RaisingVerify(_Base):
    def verify(self, task, response):
        raise KeyError("label")


class WrongTypeVerify(_Base):
    def verify(self, task, response):
        return 1.0


class LongPrompts(_Base):
    def tasks(self, split, n, seed):
        return [
            Task(
                id=f"long{split}{seed}{i}",
                messages=({"role": "user", "content": f"{split}{seed}{i} " + "word " * 3000},),
            )
            for i in range(n)
        ]


class GradedText(_Base):
    """Two checks per task and partial credit that depends only on the response's text, never a
    pass: with a random model, samples of one task differ in score, so partial pairs exist."""

    name = "graded"

    def tasks(self, split, n, seed):
        return [
            Task(
                id=f"g{split}{seed}{i}",
                messages=({"role": "user", "content": f"Say something about {split} {seed} {i}."},),
                tags=("first", "second"),
            )
            for i in range(n)
        ]

    def verify(self, task, response):
        return Verdict(score=(zlib.crc32(response.encode()) % 4) / 4, passed=False)
