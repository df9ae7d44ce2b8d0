"""The optional guidance protocol of the built-in environments: ``hint(task)`` and
``response_prefix(task)`` (envs/base.py), and the tools env's ``demonstrations``."""

from __future__ import annotations

import json
import random

import pytest

from evoforge.envs import get_env
from evoforge.envs.base import Task, env_guidance
from evoforge.envs.instructions.constraints import CONSTRAINTS

# what a model may write after the forced opening of each start constraint for it to pass
ENDINGS = {
    "start_phrase": " and so on.",
    "first_word": " is the day.",
    "repeat_request": " Done.",
    "quotation": ' hello"',
    "title": "A Day>> It was fine.",
    "json_format": 'answer": "yes"}',
    "constrained_response": " yes.",
}


def _task(constraints) -> Task:
    return Task(
        "instructions/x/0/0",
        ({"role": "user", "content": "q"},),
        metadata={"request": "Write a note.", "constraints": constraints},
        tags=tuple(c["type"] for c in constraints),
    )


@pytest.mark.parametrize("c", CONSTRAINTS, ids=lambda c: c.id)
def test_every_constraint_type_has_a_hint_and_start_constraints_an_opening_that_can_pass(c):
    env = get_env("instructions")
    params = c.draw(random.Random(c.id), "Write a note about rivers.")
    task = _task([{"type": c.id, "params": params, "phrasing": 0}])
    hint = env.hint(task)
    assert hint and hint[0].isupper() and hint.endswith(".") and "{" not in hint.replace('{"', "")
    prefix = env.response_prefix(task)
    if c.id in ENDINGS:
        assert prefix and env.verify(task, prefix + ENDINGS[c.id]).passed, prefix
    elif c.id not in ("sections", "bullet_points"):
        assert prefix == ""


def test_an_opening_follows_the_case_the_task_asks_for_and_hints_join():
    start = {"type": "start_phrase", "params": {"phrase": "My friend"}, "phrasing": 0}
    lower = {"type": "lowercase", "params": {}, "phrasing": 0}
    env = get_env("instructions")
    both = _task([start, lower])
    assert env.response_prefix(both) == "my friend"
    assert env.verify(both, env.response_prefix(both) + " says hi.").passed
    assert env.hint(both).count(";") == 1
    assert env.response_prefix(_task([lower])) == ""


def test_tools_hint_names_the_calls_not_the_answer_and_the_opening_parses():
    from evoforge.envs.toolcalls import parse_turn
    from evoforge.envs.tools.catalogue import TOOLS

    env = get_env("tools")
    for task in env.tasks("train", 14, 0):
        calls = task.metadata["calls"]
        hint = env_guidance(env, "hint", task)
        assert all(c["name"] in hint for c in calls) and "<tool_call>" in hint
        assert json.dumps(calls[0]["arguments"]) in hint
        if len(calls) > 1:  # later arguments come from results: the hint does not give them
            assert json.dumps(calls[-1]["arguments"]) not in hint
        assert f"is {task.metadata['answer']}" not in hint
        prefix = env_guidance(env, "response_prefix", task)
        [call] = parse_turn(prefix, TOOLS).calls  # the whole first call, nothing of the answer
        assert f"is {task.metadata['answer']}" not in prefix
        assert call.name == calls[0]["name"] and call.arguments == calls[0]["arguments"]
    assert env_guidance(get_env("arithmetic"), "hint", task) == ""


def test_tools_demonstrations_pass_and_depend_on_the_seed():
    env = get_env("tools")
    demos = env.demonstrations(7, 0)
    assert len(demos) == 7 and all(d.ended == "answer" for d in demos)
    assert all(env.verify(d.task, d.messages).passed for d in demos)
    assert [d.task.id for d in demos] == [t.id for t in env.tasks("train", 7, 0)]
    assert all(
        m["role"] == "tool" and not m["content"].startswith("error")
        for d in demos
        for m in d.messages
        if m["role"] == "tool"
    )
    assert [d.to_json() for d in env.demonstrations(7, 0)] == [d.to_json() for d in demos]
    assert [d.task.id for d in env.demonstrations(2, 1)] != [d.task.id for d in demos[:2]]
