"""The graph state (small: counters and file references only) and the pure routing functions."""

from __future__ import annotations

from typing import TypedDict

from langgraph.graph import END

RENAMED_NODES = {"judge": "select"}
"""Nodes renamed since run directories were written: old name -> new. Such a run directory
resumes at the new name (graph.resume_renamed) and its report counts both as one."""
SEARCH_STAGES = ("expand", "select")
"""Stages that run once per search level (the graph loops expand -> select); their seconds, in
metrics.json and in the trackers, are keyed name@level."""


class RunState(TypedDict, total=False):
    round: int
    """The round being run (0-based)."""
    rounds: int
    """Rounds planned in total."""
    level: int
    """Search level within the round."""
    failed: int
    """Tasks that no sample passed and that the search took on (trees started)."""
    active: int
    """Trees still searching."""
    last_kept: int
    """Last kept round; -1 = the starting model."""
    no_gain: int
    """Rounds in a row without a gain."""
    serving: str
    """Weights the servers hold now, relative to the run directory; empty = the starting model."""
    stop: bool
    stop_reason: str


def after_critique(state: RunState) -> str:
    """Search only when some task has a tree to grow."""
    return "expand" if state.get("failed", 0) > 0 and state.get("active", 0) > 0 else "pairs"


def after_select(state: RunState, max_depth: int) -> str:
    """Keep expanding while some tree searches and the depth allows."""
    return "expand" if state.get("active", 0) > 0 and state.get("level", 0) < max_depth else "pairs"


def after_promote(state: RunState) -> str:
    """Next round unless the rounds are done or the run stopped early."""
    if state.get("stop") or state.get("round", 0) >= state.get("rounds", 0):
        return END
    return "plan"
