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
