"""A stage and the graph node around it: the plumbing of every stage, written once.

A stage declares the round files it reads and writes and is two functions:

- ``run(rt, state, store) -> outputs``: the algorithm. It returns what it made, by the names of
  the round store's files; the stage writes them (atomically, each recorded in the manifest) in
  the declared order. A stage whose last declared output exists is done: on a re-run after a
  crash its ``run`` is skipped. Stages with internal checkpoints (the search levels, training
  phases, sync, promote) declare no outputs and keep their own.
- ``summary(rt, state, store) -> StageResult``: what the stage shows and records, read back from
  its outputs, so a skipped stage reports exactly what a run one reported. A stage that declares
  no outputs has no summary: its ``run`` returns the StageResult.

The node around a stage times it, measures the seconds spent inside the model servers, prints one
line, appends to events.jsonl, records Ray metrics, and merges the stage's metrics with its seconds
into the round's metrics.json in one write; then it hands LangGraph the state update.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evoforge.errors import EvoforgeError
from evoforge.round.runtime import Runtime
from evoforge.round.state import SEARCH_STAGES, RunState
from evoforge.storage.store import RoundStore
from evoforge.telemetry import record_node

METRICS = "metrics"
"""The key of ``run``'s outputs that holds metrics only the algorithm knows (e.g. what a filter
dropped); they are merged into metrics.json before the completion file is written."""


@dataclass
class StageResult:
    """What a stage's summary returns."""

    counts: dict[str, Any] = field(default_factory=dict)
    """Shown on the stage's line, written to events.jsonl and exported as Ray metrics."""
    metrics: dict[str, Any] = field(default_factory=dict)
    """Merged into the round's metrics.json (dict values key by key), with the node's seconds."""
    update: dict[str, Any] = field(default_factory=dict)
    """The graph-state update (the routing fields of RunState)."""


Run = Callable[[Runtime, RunState, RoundStore], "dict[str, Any] | StageResult"]
Summary = Callable[[Runtime, RunState, RoundStore], StageResult]


@dataclass(frozen=True)
class Stage:
    """One stage of the round: its algorithm, its summary and the files it reads and writes."""

    name: str
    run: Run
    summary: Summary | None
    reads: tuple[str, ...] = ()
    """Round files that must exist before ``run`` (a missing one is a one-line error)."""
    writes: tuple[str, ...] = ()
    """Round files ``run`` makes, in the order they are written; the last marks the stage done."""
    baseline: bool = False
    """The stage works in the baseline's directory, not the round's."""

    def store(self, rt: Runtime, state: RunState) -> RoundStore:
        return rt.baseline_store() if self.baseline else rt.store(state)

    def done(self, store: RoundStore) -> bool:
        """Whether the outputs exist (a stage without declared outputs always runs)."""
        return bool(self.writes) and store.file(self.writes[-1]).exists()

    def __call__(self, rt: Runtime, state: RunState) -> StageResult:
        store = self.store(rt, state)
        if self.summary is None:  # no declared outputs: the stage keeps its own checkpoints
            result = self.run(rt, state, store)
            assert isinstance(result, StageResult), f"stage {self.name} returned {result!r}"
            return result
        if not self.done(store):
            for name in self.reads:
                if not store.file(name).exists():
                    raise EvoforgeError(
                        f"stage {self.name} needs {store.file(name).path} and it is missing; "
                        "resume the run from a directory an earlier evoforge wrote whole"
                    )
            outputs = dict(self.run(rt, state, store))  # type: ignore[arg-type]
            unknown = set(outputs) - set(self.writes) - {METRICS}
            if unknown:  # a programming error: the declaration and the body disagree
                raise EvoforgeError(f"stage {self.name} made undeclared outputs {sorted(unknown)}")
            *first, last = self.writes or (None,)
            for name in first:
                if name in outputs:
                    store.file(name).write(outputs[name])
            if outputs.get(METRICS) and state.get("round", -1) >= 0 and not self.baseline:
                store.update_metrics(state["round"], **outputs[METRICS])
            if last is not None and last in outputs:
                store.file(last).write(outputs[last])
        return self.summary(rt, state, store)


def stage(
    *,
    summary: Summary | None = None,
    reads: tuple[str, ...] = (),
    writes: tuple[str, ...] = (),
    **kw: Any,
) -> Callable[[Run], Stage]:
    """Declare a function ``run(rt, state, store)`` as a stage (see the module docstring)."""

    def wrap(run: Run) -> Stage:
        if bool(writes) != (summary is not None):
            raise TypeError(f"stage {run.__name__}: declared outputs and a summary go together")
        return Stage(run.__name__, run, summary, tuple(reads), tuple(writes), **kw)

    return wrap


def as_node(rt: Runtime, name: str, stage: Stage) -> Callable[[RunState], dict[str, Any]]:
    """The LangGraph node that runs ``stage`` and reports it."""

    def node(state: RunState) -> dict[str, Any]:
        start = time.time()
        pools = rt.servers.pools()
        for pool in pools:  # the dashboard shows each node's remote work by name
            pool.task_label = f"round{state.get('round', 0)}/{name}"
        busy = sum(p.busy_seconds() for p in pools)
        r = state.get("round", -1)
        with rt.progress.activity(f"[round {r}] {name}"):
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
        if r >= 0 and not stage.baseline:
            key = f"{name}@{state.get('level', 0)}" if name in SEARCH_STAGES else name
            extra = {"server_restarts": restarts} if restarts else {}
            rt.store(state).update_metrics(
                r, **result.metrics, seconds={key: seconds}, engine_seconds={key: engine}, **extra
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
