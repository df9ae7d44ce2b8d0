"""A run directory written before a node was renamed (judge, now select) resumes at the new name:
LangGraph's checkpoint names the node due next, which the renamed graph would not run."""

from __future__ import annotations

from typing import TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from evoforge.round.graph import open_checkpointer, resume_renamed
from evoforge.round.state import RENAMED_NODES


class S(TypedDict, total=False):
    log: str


def graph(path, middle: str, crash_at: str = ""):
    """expand -> MIDDLE -> pairs, the shape of the search's nodes, checkpointed to ``path``."""

    def node(name):
        def run(state: S) -> S:
            if name == crash_at:
                raise KeyboardInterrupt(name)
            return {"log": state.get("log", "") + name + ","}

        return run

    g = StateGraph(S)
    for name in ("expand", middle, "pairs"):
        g.add_node(name, node(name))
    g.add_edge(START, "expand")
    g.add_edge("expand", middle)
    g.add_conditional_edges(middle, lambda s: "pairs", {"pairs": "pairs"})
    g.add_edge("pairs", END)
    return g.compile(checkpointer=open_checkpointer(str(path)))


CFG = {"configurable": {"thread_id": "run"}}


@pytest.mark.parametrize("killed_at, resumed", [("judge", "select,pairs,"), ("pairs", "pairs,")])
def test_an_old_run_killed_anywhere_resumes_to_the_end(tmp_path, killed_at, resumed):
    assert RENAMED_NODES == {"judge": "select"}
    db = tmp_path / "graph.sqlite"
    with pytest.raises(KeyboardInterrupt):
        graph(db, "judge", crash_at=killed_at).invoke({"log": ""}, CFG)
    before = "expand," if killed_at == "judge" else "expand,judge,"
    new = graph(db, "select")
    if killed_at == "judge":
        assert new.get_state(CFG).next == ()  # what the run would have taken for its end
    assert resume_renamed(new, CFG) == ("judge" if killed_at == "judge" else "")
    assert new.get_state(CFG).values == {"log": before}
    assert new.invoke(None, CFG) == {"log": before + resumed}
    assert resume_renamed(new, CFG) == ""  # finished: nothing waits
