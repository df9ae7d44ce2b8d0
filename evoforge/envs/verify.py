"""Calling a verifier: every verdict is checked, and a verifier's failure is an error, never a 0.

Every place that verifies a response (generation, the tree search, evaluation, GRPO's reward)
goes through :func:`safe_verify`, so a broken or inconsistent verifier stops the run with one
line naming the environment and the task instead of silently scoring answers.

A verifier that hangs: :class:`TimeLimit` runs an environment's verify() calls on a worker thread
of their own and stops waiting after the limit (``verify_timeout_s``). A thread cannot be killed,
so the stuck call is abandoned (a daemon thread, gone when the process exits) and the caller gets
:class:`VerifyTimeout`, which stops the run with one line. A verifier stuck in C code that never
releases the GIL (a catastrophic regular expression) would stop the waiting thread as well; for
that case a C-level watchdog (``faulthandler``) armed for the same call ends the process with the
stuck verifier's traceback on stderr instead of letting it hang for ever.
"""

from __future__ import annotations

import faulthandler
import math
import queue
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from evoforge.envs.base import Environment, Task, Verdict
from evoforge.errors import EvoforgeError

FEEDBACK_CHARS = 2000
"""Feedback longer than this is cut (it is shown to the refiner inside its prompt)."""
WATCHDOG_GRACE_S = 30.0
"""How long past the limit the C-level watchdog waits before ending a process whose verifier
holds the GIL."""


class VerifyTimeout(EvoforgeError):
    """A verify() call did not return within the time limit."""


def env_name(env: object) -> str:
    """The environment's name as errors show it."""
    return str(getattr(env, "name", type(env).__name__))


def validate_verdict(env: str, v: object) -> Verdict:
    """Raise ValueError with a precise message when ``v`` is not a well-formed Verdict.

    Well-formed: a Verdict whose score is a finite number in [0, 1], whose ``passed`` is a bool,
    whose ``passed`` does not contradict the score (a pass with score 0, a fail with score 1),
    whose ``details`` is a dict and whose ``feedback`` is a string.
    """
    if not isinstance(v, Verdict):
        raise ValueError(
            f"environment '{env}': verify() must return a Verdict, got {type(v).__name__}"
        )
    score = v.score
    if not isinstance(score, int | float) or isinstance(score, bool) or not math.isfinite(score):
        raise ValueError(
            f"environment '{env}': verify() returned score {score!r}; it must be a number in [0, 1]"
        )
    if not 0.0 <= score <= 1.0:
        raise ValueError(
            f"environment '{env}': verify() returned score {score}; it must be in [0, 1]"
        )
    if not isinstance(v.passed, bool):
        raise ValueError(
            f"environment '{env}': verify() returned passed={v.passed!r}; it must be a bool"
        )
    if (v.passed and score == 0.0) or (not v.passed and score == 1.0):
        raise ValueError(
            f"environment '{env}': verify() returned passed={v.passed} with score {score}; "
            "a pass needs a score above 0 and a fail a score below 1"
        )
    if not isinstance(v.details, dict):
        raise ValueError(
            f"environment '{env}': verify() returned details of type {type(v.details).__name__}; "
            "it must be a dict"
        )
    if not isinstance(v.feedback, str):
        raise ValueError(
            f"environment '{env}': verify() returned feedback of type "
            f"{type(v.feedback).__name__}; it must be a string"
        )
    return v


def safe_verify(env: Environment, task: Task, response: str | Sequence[dict[str, str]]) -> Verdict:
    """``env.verify`` with its verdict checked; any failure is an EvoforgeError naming the task.
    Feedback longer than FEEDBACK_CHARS is cut.

    ``response``: one response, or a trajectory's messages for a multi-turn environment."""
    name = env_name(env)
    try:
        v = env.verify(task, response)
    except EvoforgeError:
        raise
    except Exception as e:
        raise EvoforgeError(
            f"environment '{name}': verify() raised {type(e).__name__}: {e} on task "
            f"'{task.id}'; fix the verifier (it must return a Verdict)"
        ) from e
    try:
        v = validate_verdict(name, v)
    except ValueError as e:
        raise EvoforgeError(f"{e} (task '{task.id}')") from None
    if len(v.feedback) > FEEDBACK_CHARS:
        v = replace(v, feedback=v.feedback[:FEEDBACK_CHARS] + " ... (feedback cut)")
    return v


@dataclass
class _Call:
    task: Task
    response: str
    done: threading.Event = field(default_factory=threading.Event)
    result: Any = None
    error: BaseException | None = None


def _serve(env: Environment, calls: queue.SimpleQueue) -> None:
    while True:
        call = calls.get()
        try:
            call.result = env.verify(call.task, call.response)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting caller
            if isinstance(e, SystemExit):
                e = RuntimeError(f"verify() called sys.exit({e.code})")
            call.error = e
        call.done.set()


def _arm_watchdog(seconds: float) -> bool:
    """Arm faulthandler's C-level timer in the main thread; whether it was armed."""
    if threading.current_thread() is not threading.main_thread() or sys.__stderr__ is None:
        return False
    try:
        faulthandler.dump_traceback_later(seconds, exit=True, file=sys.__stderr__)
    except (ValueError, OSError, RuntimeError):  # stderr closed or not a real file
        return False
    return True


class TimeLimit:
    """verify() calls of one environment on one worker thread, each waited for at most
    ``seconds`` (see the module's doc for what happens to a call that does not return)."""

    def __init__(self, env: Environment, seconds: float) -> None:
        self.env, self.seconds = env, seconds
        self._calls: queue.SimpleQueue | None = None

    def _worker(self) -> queue.SimpleQueue:
        if self._calls is None:
            self._calls = queue.SimpleQueue()
            name = f"verify:{env_name(self.env)}"
            threading.Thread(
                target=_serve, args=(self.env, self._calls), name=name, daemon=True
            ).start()
        return self._calls

    def verify(self, task: Task, response: str) -> Any:
        call = _Call(task, response)
        self._worker().put(call)
        watchdog = _arm_watchdog(self.seconds + WATCHDOG_GRACE_S)
        try:
            finished = call.done.wait(self.seconds)
        finally:
            if watchdog:
                faulthandler.cancel_dump_traceback_later()
        if not finished:
            self._calls = None  # the stuck thread keeps its queue; the next call gets a new one
            raise VerifyTimeout(
                f"environment '{env_name(self.env)}': verify() did not return within "
                f"{self.seconds:g} s on task '{task.id}'; fix the verifier (or raise "
                "verify_timeout_s if it is just slow)"
            )
        if call.error is not None:
            raise call.error
        return call.result
