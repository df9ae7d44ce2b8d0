"""Trajectory statistics of a multi-turn round: calls, failed calls by kind, endings."""

from evoforge.envs.base import Task
from evoforge.envs.multiturn import REPEATED, TIMEOUT, Trajectory, TurnRecord
from evoforge.round.stages.trajectory_stats import error_kind, trajectory_stats


def test_error_kinds_from_the_feedback_the_model_got():
    assert error_kind(f"calc: {TIMEOUT}the tool did not return within 5 s") == "timeout"
    assert error_kind("unknown tool 'calcc'; the tools are: calc") == "unknown_tool"
    assert error_kind("the tool call is not valid JSON (Expecting value at 0)") == "malformed"
    assert error_kind("12 calls beyond 8 in one turn were not run") == "too_many_calls"
    assert error_kind("too many turns: 2 turns without a final answer") == "max_turns"
    assert error_kind(REPEATED + " and it failed the same way") == "repeated"
    assert error_kind("calc: 'x' is a required property") == "rejected"


def test_stats_count_per_sample_calls_errors_and_endings():
    task = Task("t", ({"role": "user", "content": "q"},))
    a = Trajectory(task, "a", turns=[TurnRecord(1, calls=[{"name": "calc"}]), TurnRecord(3)])
    a.ended = "answer"
    b = Trajectory(task, "b", turns=[TurnRecord(1, errors=["unknown tool 'x'", "too many turns"])])
    b.ended = "max_turns"
    s = trajectory_stats([a, b])
    assert s["turns_per_sample"] == 1.5 and s["tool_calls_per_sample"] == 0.5
    assert s["calling_samples"] == 1
    assert s["errors"] == {"max_turns": 1, "unknown_tool": 1}
    assert s["ended"] == {"answer": 1, "max_turns": 1}
