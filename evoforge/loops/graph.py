"""The round as a LangGraph state machine, checkpointed to RUN_DIR/graph.sqlite.

    START -> baseline -> plan -> generate -> verify -> explore -> critique
      --(any tree?)--> expand -> judge --(trees left and depth < max?)--> expand ...
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

from evoforge.loops.nodes import Stage, as_node
from evoforge.loops.runtime import Runtime
from evoforge.loops.stages.critique import critique
from evoforge.loops.stages.evaluate import baseline, evaluate
from evoforge.loops.stages.explore import explore
from evoforge.loops.stages.generate import generate
from evoforge.loops.stages.pairs import pairs
from evoforge.loops.stages.plan import plan
from evoforge.loops.stages.promote import promote
from evoforge.loops.stages.sync import sync
from evoforge.loops.stages.train import train
from evoforge.loops.stages.tree_search import expand, judge
from evoforge.loops.stages.verify import verify
from evoforge.loops.state import RunState, after_critique, after_judge, after_promote

STAGES: dict[str, Stage] = {
    "baseline": baseline,
    "plan": plan,
    "generate": generate,
    "verify": verify,
    "explore": explore,
    "critique": critique,
    "expand": expand,
    "judge": judge,
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
    g.add_edge("expand", "judge")
    g.add_conditional_edges(
        "judge",
        partial(after_judge, max_depth=rt.config.search.max_depth),
        {"expand": "expand", "pairs": "pairs"},
    )
    for a, b in (("pairs", "train"), ("train", "sync"), ("sync", "evaluate")):
        g.add_edge(a, b)
    g.add_edge("evaluate", "promote")
    g.add_conditional_edges("promote", after_promote, {"plan": "plan", END: END})
    return g.compile(checkpointer=checkpointer)


def open_checkpointer(path: str) -> SqliteSaver:
    conn = sqlite3.connect(path, check_same_thread=False)
    return SqliteSaver(conn)


def graph_config(run_id: str, rounds: int, max_depth: int) -> dict:
    # Each round visits at most 11 + 2 * max_depth nodes (plus the baseline once).
    return {
        "configurable": {"thread_id": run_id},
        "recursion_limit": (13 + 2 * max_depth) * (rounds + 1) + 10,
    }
