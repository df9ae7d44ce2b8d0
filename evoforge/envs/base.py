"""The plug-in unit: an Environment gives tasks and verifies responses."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Task:
    """One task: what the actor reads, and what the verifier needs."""

    id: str
    """Unique within the environment; the key of every run-directory record."""
    messages: tuple[dict[str, str], ...]
    """Chat messages the actor answers (role/content dicts)."""
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    """Whatever verify() needs: constraints, reference answer, hidden tests... (JSON values).
    An optional ``group`` (a string) splits heldout pass rates into groups, e.g. tasks phrased
    as in training vs in words never trained on."""
    tags: tuple[str, ...] = ()
    """Task types (e.g. constraint types): the per-type breakdown and the weakness curriculum use them."""

    @property
    def prompt(self) -> str:
        """The last user message (the instruction as the model reads it)."""
        return next((m["content"] for m in reversed(self.messages) if m.get("role") == "user"), "")

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "messages": list(self.messages),
            "metadata": self.metadata,
            "tags": list(self.tags),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Task:
        return cls(
            id=d["id"],
            messages=tuple(d["messages"]),
            metadata=d.get("metadata", {}),
            tags=tuple(d.get("tags", ())),
        )


@dataclass(frozen=True)
class Verdict:
    """The environment's judgement of one response."""

    score: float
    """In [0, 1]; partial credit allowed (e.g. share of constraints met)."""
    passed: bool
    """The strict pass/fail used for pairs and pass rates."""
    details: dict[str, Any] = field(default_factory=dict)
    """Per-check results; ``loose`` (bool) and ``by_type`` ({tag: bool}) are read by evaluation."""
    feedback: str = ""
    """What is wrong, in words a refiner can act on; empty when passed."""

    def to_json(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "passed": self.passed,
            "details": self.details,
            "feedback": self.feedback,
        }


@runtime_checkable
class Environment(Protocol):
    """A task family with a verifier. ``tasks`` depends only on (split, n, seed).

    Optional methods (duck-typed, like a multi-turn environment's ``tools``), used by guided
    exploration (agents/guidance.py) on tasks that plain sampling never passes:

    - ``hint(task) -> str | None``: what the task needs, in one or two sentences (a format, the
      tool to call, a first step), never the answer itself. It is added to the prompt the model
      sees; what gets stored and trained on is the plain task.
    - ``response_prefix(task) -> str | None``: an opening of the answer to force (the start of a
      tool call, a required first phrase). The model writes the rest; the prefix stays part of
      the stored answer.

    - ``followup_prefixes(task) -> Sequence[str] | None`` (multi-turn): what to force on the
      assistant turns after the first of a prefix-guided trajectory, in order (a tool
      environment: the task's later calls, so that a chain of calls gets verified trajectories
      before the model can write one); a turn past the list is the model's own.

    Any of them may return None (or "", or no items) for a task it has nothing to say about.
    """

    name: str

    def tasks(self, split: str, n: int, seed: int) -> list[Task]: ...

    def verify(self, task: Task, response: str) -> Verdict: ...


SPLITS = ("train", "heldout")

GUIDANCE_METHODS = ("hint", "response_prefix")
"""The optional guidance methods of an environment (see :class:`Environment`)."""


def env_guidance(env: object, method: str, task: Task) -> str:
    """What the environment's optional ``hint`` or ``response_prefix`` says about ``task``; ''
    when it has no such method or returns None. A one-line error when it returns a non-string."""
    from evoforge.errors import EvoforgeError

    if method not in GUIDANCE_METHODS:
        raise ValueError(f"unknown guidance method '{method}'; use one of {GUIDANCE_METHODS}")
    fn = getattr(env, method, None)
    if not callable(fn):
        return ""
    out = fn(task)
    if out is not None and not isinstance(out, str):
        raise EvoforgeError(
            f"environment '{getattr(env, 'name', env)}': {method}(task) must return a string or "
            f"None, got {type(out).__name__}"
        )
    return out or ""


def env_followups(env: object, task: Task) -> tuple[str, ...]:
    """What the environment's optional ``followup_prefixes`` forces on ``task``'s later turns;
    () without one. A one-line error when it returns anything but strings."""
    from evoforge.errors import EvoforgeError

    fn = getattr(env, "followup_prefixes", None)
    out = fn(task) if callable(fn) else None
    if out is None:
        return ()
    if isinstance(out, str) or not all(isinstance(x, str) for x in out):
        raise EvoforgeError(
            f"environment '{getattr(env, 'name', env)}': followup_prefixes(task) must return a "
            f"list of strings or None, got {type(out).__name__}"
        )
    return tuple(out)


def item_rng(env: str, split: str, seed: int, index: int) -> random.Random:
    """The generator of one item: it depends only on (env, split, seed, index) (reasoning-gym style)."""
    return random.Random(f"{env}/{split}/{seed}/{index}")


def check_split(env: str, split: str) -> None:
    from evoforge.errors import EvoforgeError

    if split not in SPLITS:
        raise EvoforgeError(
            f"environment '{env}' has no split '{split}'; use one of {', '.join(SPLITS)}"
        )
