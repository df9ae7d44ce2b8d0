"""A stage as a graph node: one call inside a timer, its counts reported explicitly.

A stage is ``f(rt, state) -> StageResult``. The node around it times it, measures the seconds
spent inside the model servers, prints one line, appends to events.jsonl, records Ray metrics and
the round's seconds per node, then hands LangGraph the state update.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evoforge.loops.runtime import Runtime
from evoforge.loops.state import RunState
from evoforge.telemetry import record_node

SEARCH_STAGES = ("expand", "judge")
"""Stages that run once per search level; their seconds are keyed name@level."""


@dataclass
class StageResult:
    """What a stage returns."""

    counts: dict[str, Any] = field(default_factory=dict)
    """Shown on the stage's line, written to events.jsonl and exported as Ray metrics."""
    update: dict[str, Any] = field(default_factory=dict)
    """The graph-state update (the routing fields of RunState)."""


Stage = Callable[[Runtime, RunState], StageResult]


def as_node(rt: Runtime, name: str, stage: Stage) -> Callable[[RunState], dict[str, Any]]:
    """The LangGraph node that runs ``stage`` and reports it."""

    def node(state: RunState) -> dict[str, Any]:
        start = time.time()
        pools = rt.servers.pools()
        for pool in pools:  # the dashboard shows each node's remote work by name
            pool.task_label = f"round{state.get('round', 0)}/{name}"
        busy = sum(p.busy_seconds() for p in pools)
        r = state.get("round", -1)
        debug_delay(name, r, "start")
        result = stage(rt, state)
        # time inside the engines during this node (a restarted replica restarts its clock)
        engine = round(max(0.0, sum(p.busy_seconds() for p in pools) - busy), 3)
        seconds = round(time.time() - start, 3)
        counts = dict(result.counts)
        restarts = sum(p.restarts for p in pools)
        if restarts:  # actors that died and were restarted (the batch was retried)
            counts["server_restarts"] = restarts
        rt.rd.event(round=r, node=name, seconds=seconds, engine_seconds=engine, **counts)
        record_node(rt.run_id, r, name, seconds, engine, counts)
        if rt.trackers is not None:
            rt.trackers.after_node(rt.rd, r, name, state.get("level", 0), seconds)
        if r >= 0 and name != "baseline":
            key = f"{name}@{state.get('level', 0)}" if name in SEARCH_STAGES else name
            extra = {"server_restarts": restarts} if restarts else {}
            rt.store(state).update_metrics(
                r, seconds={key: seconds}, engine_seconds={key: engine}, **extra
            )
        shown = ", ".join(f"{k}={v}" for k, v in counts.items() if not isinstance(v, dict | list))
        rt.progress.line(f"[round {r}] {name:<9} {seconds:7.1f}s  {shown}")
        debug_delay(name, r, "end")
        return result.update

    node.__name__ = name
    return node


def debug_delay(name: str, round_: int, phase: str) -> None:
    """Fault-injection window for crash tests (and for looking at a live dashboard).

    EVOFORGE_DEBUG_DELAY="NODE[@ROUND][:end]=SECONDS" pauses at the start of that node (or at
    its end: outputs written, the checkpoint not yet taken) and says so on stderr, so that a test
    can SIGKILL the run at a known point of the graph.
    """
    spec = os.environ.get("EVOFORGE_DEBUG_DELAY", "")
    where, _, secs = spec.partition("=")
    where, _, at = where.partition(":")
    node_name, _, at_round = where.partition("@")
    if (
        node_name == name
        and secs
        and (at or "start") == phase
        and (not at_round or int(at_round) == round_)
    ):
        print(
            f"evoforge debug: pausing at {phase} of round {round_} {name}",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(float(secs))
