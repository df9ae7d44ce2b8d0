"""A time limit for tool calls: a tool that never returns must not hang a run or ``envs check``.

A Python thread cannot be killed, and a tool is a closure over the environment's live state (open
files, caches, a client), so it cannot move to a subprocess without changing what it sees. Each
call therefore runs on a daemon thread of its own, and the caller stops waiting after the limit:
the stuck call is abandoned (its thread lives on, asleep or busy, until it returns or the
process exits; being a daemon it never holds up the exit). A tool that needs thread affinity (a
``sqlite3`` connection opened in ``__init__``) must open what it needs inside the call.

Abandoned threads are counted: past :data:`MAX_STUCK` still alive, the tool is clearly broken
rather than slow on one unlucky call, and the caller gets :class:`TooManyStuck` instead of
leaking more threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

MAX_STUCK = 8
"""Abandoned tool calls (threads still running) after which a timeout stops the run."""
DEFAULT_TOOL_TIMEOUT_S = 30.0
"""A tool call's time limit when neither the config (``generation.tool_timeout_s``) nor the
environment (a ``tool_timeout_s`` attribute) sets one."""
TIMEOUT = "timeout: "
"""How a timed-out call's error starts (after ``error: `` in the tool message the model sees)."""


def tool_time_limit(env: object) -> float:
    """Seconds one tool call of ``env`` may take: its ``tool_timeout_s`` attribute (the
    environment's own default, or the run's ``generation.tool_timeout_s`` set on the checked
    environment) when a positive number, else DEFAULT_TOOL_TIMEOUT_S."""
    limit = getattr(env, "tool_timeout_s", None)
    if isinstance(limit, int | float) and not isinstance(limit, bool) and limit > 0:
        return float(limit)
    return DEFAULT_TOOL_TIMEOUT_S


_stuck: list[threading.Thread] = []
_lock = threading.Lock()


class CallTimeout(Exception):
    """The call did not return within the limit (it was abandoned)."""


class TooManyStuck(CallTimeout):
    """A call timed out while MAX_STUCK earlier abandoned calls are still running."""


def stuck_calls() -> int:
    """Abandoned tool calls whose threads still run."""
    with _lock:
        _stuck[:] = [t for t in _stuck if t.is_alive()]
        return len(_stuck)


def call_with_limit(
    fn: Callable[..., Any], kwargs: dict[str, Any], seconds: float, name: str = "tool"
) -> Any:
    """``fn(**kwargs)`` on a daemon thread, waited for at most ``seconds``; its exception, if
    any, re-raised here. Raises CallTimeout (TooManyStuck past MAX_STUCK) when it does not
    return in time."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["result"] = fn(**kwargs)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting caller
            box["error"] = e
        done.set()

    thread = threading.Thread(target=target, name=f"tool:{name}", daemon=True)
    thread.start()
    if not done.wait(seconds):
        earlier = stuck_calls()
        with _lock:
            _stuck.append(thread)
        raise (TooManyStuck if earlier >= MAX_STUCK else CallTimeout)(earlier)
    if "error" in box:
        raise box["error"]
    return box.get("result")
