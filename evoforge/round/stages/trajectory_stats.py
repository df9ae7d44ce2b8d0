"""What a multi-turn round's trajectories did: turns and tool calls per sample, failed calls by
kind, and how the trajectories ended (for metrics.json, the report and the closing table)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from evoforge.envs.multiturn import REPEATED, TIMEOUT, Trajectory

ERROR_KINDS = (
    ("timeout", (TIMEOUT,)),
    ("unknown_tool", ("unknown tool",)),
    (
        "malformed",
        ("not valid JSON", "empty tool call", "needs a JSON object", "not a JSON object"),
    ),
    ("too_many_calls", ("calls beyond",)),
    ("max_turns", ("too many turns",)),
    ("repeated", (REPEATED,)),
    ("context", ("outgrew the context window",)),
)
"""A failed call's kind, by the words of the feedback the environment gave for it; anything
else is ``rejected``: arguments the tool's schema refused, or the tool's own ToolError."""


def error_kind(feedback: str) -> str:
    """The kind of one failed call or turn, from its feedback (see :data:`ERROR_KINDS`)."""
    return next(
        (kind for kind, words in ERROR_KINDS if any(w in feedback for w in words)), "rejected"
    )


def trajectory_stats(trajectories: list[Trajectory]) -> dict[str, Any]:
    """Per sample: turns and tool calls that ran; failed calls by kind; how each ended."""
    n = max(1, len(trajectories))
    calls = sum(len(r.calls) for t in trajectories for r in t.turns)
    return {
        "samples": len(trajectories),
        "turns_per_sample": round(sum(len(t.turns) for t in trajectories) / n, 3),
        "tool_calls_per_sample": round(calls / n, 3),
        "calling_samples": sum(any(r.calls for r in t.turns) for t in trajectories),
        "errors": dict(
            sorted(
                Counter(
                    error_kind(e) for t in trajectories for r in t.turns for e in r.errors
                ).items()
            )
        ),
        "ended": dict(sorted(Counter(t.ended or "live" for t in trajectories).items())),
    }
