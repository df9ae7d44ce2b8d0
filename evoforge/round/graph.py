"""The round as a LangGraph state machine, checkpointed to RUN_DIR/graph.sqlite.

    START -> baseline -> plan -> generate -> verify -> explore -> critique
      --(any tree?)--> expand -> select --(trees left and depth < max?)--> expand ...
      -> pairs -> train -> sync -> evaluate -> promote
      --(rounds left and not stopped)--> plan ... -> END

``baseline`` evaluates the starting model once, before the first plan, so that the curriculum
and the promotion gate have a reference. Each node is one stage of stages/. Where we depart from
SPaR's round: every answer is verified right after it is sampled (so pairs come from the samples
themselves), the tasks no sample passed are sampled again with guidance first (explore), the
judge is measured before it is trusted, and the tree search works only on the tasks that neither
sampling nor guidance solved.
"""

from __future__ import annotations

import sqlite3
from functools import partial

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

from evoforge.round.nodes import Stage, as_node
from evoforge.round.runtime import Runtime
from evoforge.round.stages.critique import critique
from evoforge.round.stages.evaluate import baseline, evaluate
from evoforge.round.stages.explore import explore
from evoforge.round.stages.generate import generate
from evoforge.round.stages.pairs import pairs
from evoforge.round.stages.plan import plan
from evoforge.round.stages.promote import promote
from evoforge.round.stages.sync import sync
from evoforge.round.stages.train import train
from evoforge.round.stages.tree_search import expand, select
from evoforge.round.stages.verify import verify
from evoforge.round.state import (
    RENAMED_NODES,
    RunState,
    after_critique,
    after_promote,
    after_select,
)

STAGES: dict[str, Stage] = {
    "baseline": baseline,
    "plan": plan,
    "generate": generate,
    "verify": verify,
    "explore": explore,
    "critique": critique,
    "expand": expand,
    "select": select,
    "pairs": pairs,
    "train": train,
    "sync": sync,
    "evaluate": evaluate,
    "promote": promote,
}
NODES = tuple(STAGES)


def build_graph(rt: Runtime, checkpointer=None):
    """Compile the run graph over the runtime's servers and run directory."""
    g = StateGraph(RunState)
    for name, stage in STAGES.items():
        g.add_node(name, as_node(rt, name, stage))
    g.add_edge(START, "baseline")
    g.add_edge("baseline", "plan")
    for a, b in (
        ("plan", "generate"),
        ("generate", "verify"),
        ("verify", "explore"),
        ("explore", "critique"),
    ):
        g.add_edge(a, b)
    g.add_conditional_edges("critique", after_critique, {"expand": "expand", "pairs": "pairs"})
    g.add_edge("expand", "select")
    g.add_conditional_edges(
        "select",
        partial(after_select, max_depth=rt.config.search.max_depth),
        {"expand": "expand", "pairs": "pairs"},
    )
    for a, b in (("pairs", "train"), ("train", "sync"), ("sync", "evaluate")):
        g.add_edge(a, b)
    g.add_edge("evaluate", "promote")
    g.add_conditional_edges("promote", after_promote, {"plan": "plan", END: END})
    return g.compile(checkpointer=checkpointer)


def resume_renamed(graph, gcfg: dict) -> str:
    """Move a checkpoint that waits at a renamed node (``RENAMED_NODES``) to its new name, and
    return the old name ('' when none waits). LangGraph keeps a node due next as the channel
    ``branch:to:NAME``; the renamed graph has no such channel, so it would find nothing left to
    run and end the run there, unfinished but marked finished. The checkpoint goes on as if the
    node whose edge leads to the new name had just finished: no node runs and the state is
    unchanged, and the new node re-runs the old one's stage, which reuses what that wrote."""
    saved = graph.checkpointer.get_tuple(gcfg) if graph.checkpointer else None
    waiting = saved.checkpoint.get("channel_values", {}) if saved else {}
    for old, new in RENAMED_NODES.items():
        if f"branch:to:{old}" in waiting and not graph.get_state(gcfg).next:
            edges = graph.get_graph().edges
            before = next(e.source for e in edges if e.target == new and not e.conditional)
            graph.update_state(gcfg, None, as_node=before)
            return old
    return ""


def open_checkpointer(path: str) -> SqliteSaver:
    conn = sqlite3.connect(path, check_same_thread=False)
    return SqliteSaver(conn)


def graph_config(run_id: str, rounds: int, max_depth: int) -> dict:
    # Each round visits at most 11 + 2 * max_depth nodes (plus the baseline once).
    return {
        "configurable": {"thread_id": run_id},
        "recursion_limit": (13 + 2 * max_depth) * (rounds + 1) + 10,
    }
