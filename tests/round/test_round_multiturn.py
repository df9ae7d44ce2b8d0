"""A round on a multi-turn environment through the real path: Ray actors, the HF engine, LangGraph,
TRL; the tiny model on the built-in ``tools`` environment."""

from __future__ import annotations

import pytest

import evoforge
from evoforge.envs import get_env
from evoforge.envs.multiturn import Trajectory
from evoforge.round.graph import NODES
from evoforge.storage.rundir import read_json, read_jsonl
from tests.helpers.runs import TOOLS_RUN

pytestmark = pytest.mark.slow


def test_a_round_on_tools_goes_through_every_node(ray_cluster, tmp_path):
    run_dir = tmp_path / "tools"
    result = evoforge.run(evoforge.load_config(None, TOOLS_RUN + [f"run_dir={run_dir}"]))
    seen = {e["node"] for e in read_jsonl(run_dir / "events.jsonl")}
    assert set(NODES) <= seen, f"missed {set(NODES) - seen}"
    d = run_dir / "rounds/000"
    env = get_env("tools")
    tasks = {t["id"]: t for t in read_jsonl(d / "tasks.jsonl")}
    samples = read_jsonl(d / "samples.jsonl")
    verdicts = {v["task_id"]: v["verdicts"] for v in read_jsonl(d / "verdicts.jsonl")}
    assert {s["task_id"] for s in samples} == set(tasks) == set(verdicts)
    for s in samples:  # two trajectories per task, each verified whole, as stored
        assert len(s["trajectories"]) == 2 == len(s["tokens"])
        for j, (traj, v) in enumerate(zip(s["trajectories"], verdicts[s["task_id"]], strict=True)):
            assert traj["key"] == f"{s['task_id']}/round0/{j}" and traj["ended"]
            assert 1 <= len(traj["turns"]) <= 2  # generation.max_turns
            t = Trajectory.from_json(traj, evoforge.Task.from_json(tasks[s["task_id"]]))
            assert env.verify(t.task, t.messages).score == v["score"]
            assert 0 <= v["failed_turn"] < len(t.turns)
    trees = read_jsonl(d / "tree.jsonl")
    assert {t["task_id"] for t in trees} == set(tasks)  # nothing passed: every task searched
    children = [n for t in trees for n in t["nodes"] if n["parent"]]
    assert children and all(n["turn"] is not None for n in children)
    assert all(
        n["response"].startswith("assistant: ") for n in children if n["status"] != "stopped"
    )
    # guided exploration of every task (nothing passed): the verifier's feedback, the tool's hint
    # and the forced first call; stored against the plain task, the forced call kept
    guided = read_jsonl(d / "guided.jsonl")
    kinds = {(g["task_id"], g["kind"]) for g in guided}
    assert {(t, k) for t in tasks for k in ("feedback", "hint", "prefix")} == kinds
    for g in guided:
        for traj in g["trajectories"]:
            assert traj["messages"][: len(tasks[g["task_id"]]["messages"])] == list(
                tasks[g["task_id"]]["messages"]
            )
            if g["kind"] == "prefix":
                first = traj["messages"][traj["turns"][0]["index"]]["content"]
                assert first.startswith('<tool_call>{"name": "')
    m = read_json(d / "metrics.json")
    own, under_guidance = m["trajectories"], m["explore"]["trajectories"]
    assert own["turns_per_sample"] >= 1 and m["expand_calls"] >= 1
    assert sum(own["ended"].values()) == own["samples"] == 2 * len(tasks)
    assert under_guidance["samples"] == len(guided) * 1  # explore.samples=1 (TINY_RUN)
    # the tools env forces its whole first call (response_prefix): every prefix trajectory makes
    # that call, well-formed, and the tool's result comes back to the model
    assert under_guidance["calling_samples"] >= len(tasks)
    for g in guided:
        if g["kind"] == "prefix":
            for traj in g["trajectories"]:
                assert any(m["role"] == "tool" for m in traj["messages"])
    assert read_json(d / "train/done.json")["skipped"].startswith("no training data")
    h = read_json(d / "eval.json")["heldout"]["tools"]
    assert h["n"] == 7 and set(h["by_type"]) >= {"calc", "date_chain", "single_call", "multi_call"}
    answers = read_jsonl(d / "eval_responses.jsonl")
    assert all(a["response"].startswith("assistant: ") for a in answers)
    assert [r["round"] for r in result.rounds] == [-1, 0]
    report = (run_dir / "report.md").read_text()
    assert "## Tool use" in report and "## Guided exploration and new data" in report
    assert "own calls a sample" in result.rounds[1]["tool_use"]
