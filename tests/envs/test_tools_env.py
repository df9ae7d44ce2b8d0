import json

import pytest

from evoforge.envs import get_env
from evoforge.envs.check import check_env
from evoforge.envs.multiturn import ToolError, Trajectory, apply_turn, tool_map
from evoforge.envs.tools.catalogue import calculate, convert_units, lookup_city
from evoforge.envs.tools.tasks import TYPES


def call(name, arguments):
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


def play(env, task, turns):
    """A scripted trajectory: each text is one assistant turn, run through the environment."""
    traj, tools = Trajectory.start(task, "script"), tool_map(env, task)
    for text in turns:
        apply_turn(env, traj, text, 8, tools)
    return traj


def solve(task):
    """The correct turns: every expected call in its own turn, then the answer."""
    m = task.metadata
    return [call(c["name"], c["arguments"]) for c in m["calls"]] + [f"The answer is {m['answer']}."]


def test_registered_deterministic_disjoint_and_balanced():
    env = get_env("tools")
    assert check_env(env).ok
    a, b = env.tasks("train", 28, 3), env.tasks("train", 28, 3)
    assert [t.to_json() for t in a] == [t.to_json() for t in b]
    assert env.task("train", 3, 5).to_json() == a[5].to_json()  # item i depends on (split, seed, i)
    assert [t.prompt for t in env.tasks("train", 28, 4)] != [t.prompt for t in a]
    held = env.tasks("heldout", 200, 3)
    assert not {t.prompt for t in env.tasks("train", 200, 3)} & {t.prompt for t in held}
    types = [t.tags[0] for t in a]
    assert sorted(set(types)) == sorted(TYPES) and all(types.count(k) == 4 for k in TYPES)
    assert {t.tags[1] for t in a} == {"single_call", "multi_call"}


def test_a_correct_trajectory_passes_every_type():
    env = get_env("tools")
    for task in env.tasks("heldout", 21, 0):
        traj = play(env, task, solve(task))
        v = env.verify(task, traj.messages)
        assert v.passed and v.score == 1.0, (task.prompt, v.feedback)
        assert v.details["by_type"] == {task.tags[0]: True, task.tags[1]: True}
        assert not any(r.errors for r in traj.turns)


def test_later_calls_use_earlier_results_and_answers_allow_rounding():
    env = get_env("tools")
    task = next(t for t in env.tasks("train", 40, 1) if t.tags[0] == "lookup_convert")
    first, second = task.metadata["calls"]
    elevation = lookup_city(first["arguments"]["city"], "elevation_m")
    assert second["arguments"]["value"] == elevation
    rounded = f"The answer is {round(task.metadata['answer'], 2)}."
    turns = [call(first["name"], first["arguments"]), call(second["name"], second["arguments"])]
    assert env.verify(task, play(env, task, [*turns, rounded]).messages).passed


def test_wrong_calls_get_feedback_in_words_partial_credit_and_the_failed_turn():
    env = get_env("tools")
    task = next(t for t in env.tasks("train", 40, 2) if t.tags[0] == "lookup_convert")
    first, second = task.metadata["calls"]
    wrong_unit = "km" if second["arguments"]["to_unit"] != "km" else "mi"
    bad = dict(second["arguments"], to_unit=wrong_unit)
    turns = [
        call(first["name"], first["arguments"]),
        call("convert_units", bad),
        "The answer is 1.",
    ]
    v = env.verify(task, play(env, task, turns).messages)
    assert not v.passed and v.score == pytest.approx(1 / 3)
    assert (
        f"called convert_units with to_unit='{wrong_unit}' but the task needs "
        f"'{second['arguments']['to_unit']}'" in v.feedback
    )
    assert v.details["failed_turn"] == 1 and v.details["calls_matched"] == 1
    # a calculator expression is compared by its value, not its text
    task = next(t for t in env.tasks("train", 40, 2) if t.tags[0] == "calc")
    expr = task.metadata["calls"][0]["arguments"]["expression"]
    v = env.verify(task, play(env, task, [call("calculate", {"expression": f"({expr})*1"}), f"The answer is {task.metadata['answer']}"]).messages)  # fmt: skip
    assert v.passed


def test_failed_turns_no_answer_and_a_plain_string():
    env = get_env("tools")
    task = next(t for t in env.tasks("heldout", 40, 0) if t.tags[0] == "date_chain")
    c1, c2 = task.metadata["calls"]
    turns = ["<tool_call>{bad json</tool_call>", call(c1["name"], c1["arguments"])]
    traj = play(env, task, turns + [call("weekday", {"date": "tomorrow"})])
    assert "'tomorrow' is not a date" in traj.messages[-1]["content"]
    v = env.verify(task, traj.messages)
    assert v.details["failed_turn"] == 0 and "turn 1: the tool call is not valid JSON" in v.feedback
    assert "no final answer" in v.feedback and v.score == pytest.approx(1 / 3)
    v = env.verify(task, "The answer is Monday.")  # a single response is a one-turn trajectory
    assert not v.passed and "did not call add_days" in v.feedback


def test_catalogue():
    assert calculate("(12 + 3) * 4") == 60 and calculate("7 / 2") == 3.5
    for bad in ("__import__('os')", "2 ** 999", "1 / 0", "x + 1"):
        with pytest.raises(ToolError):
            calculate(bad)
    assert convert_units(100, "c", "f") == 212 and convert_units(1, "mi", "km") == 1.6093
    with pytest.raises(ToolError, match="cannot convert length"):
        convert_units(1, "km", "kg")
