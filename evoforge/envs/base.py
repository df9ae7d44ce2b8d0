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
    """A task family with a verifier. ``tasks`` depends only on (split, n, seed)."""

    name: str

    def tasks(self, split: str, n: int, seed: int) -> list[Task]: ...

    def verify(self, task: Task, response: str) -> Verdict: ...


SPLITS = ("train", "heldout")


def item_rng(env: str, split: str, seed: int, index: int) -> random.Random:
    """The generator of one item: it depends only on (env, split, seed, index) (reasoning-gym style)."""
    return random.Random(f"{env}/{split}/{seed}/{index}")


def check_split(env: str, split: str) -> None:
    from evoforge.errors import EvoforgeError

    if split not in SPLITS:
        raise EvoforgeError(
            f"environment '{env}' has no split '{split}'; use one of {', '.join(SPLITS)}"
        )
