"""Guided exploration: guidance in the prompt the model sees, never in what is stored; a forced
prefix kept in the stored answer; single-turn (Roles.explore) and multi-turn (guided_rollout)."""

from __future__ import annotations

import json

import pytest

from evoforge.agents.guidance import (
    TOOL_CALL_OPENING,
    Guidance,
    answer,
    feedback_guidance,
    guidance_for,
    guided_messages,
)
from evoforge.agents.rollout import guided_rollout, rollout
from evoforge.agents.serving.types import GenResult, Sampling
from evoforge.envs import get_env
from evoforge.envs.base import Task, env_guidance
from evoforge.errors import EvoforgeError

SAMPLING = Sampling(temperature=0.7, max_tokens=64)


def _task(*messages: tuple[str, str]) -> Task:
    return Task("t/0", tuple({"role": r, "content": c} for r, c in messages))


def test_guided_messages_add_the_line_to_the_last_user_message_only():
    task = _task(("system", "be brief"), ("user", "first"), ("assistant", "ok"), ("user", "Q?"))
    g = Guidance("hint", "Hint: start with Yes.")
    seen = guided_messages(task, g)
    assert seen[:3] == list(task.messages[:3])
    assert seen[3] == {"role": "user", "content": "Q?\n\nHint: start with Yes."}
    assert task.messages[3]["content"] == "Q?"  # the stored task is untouched
    assert guided_messages(task, Guidance("prefix", prefix="Yes")) == list(task.messages)
    assert answer(Guidance("prefix", prefix="Yes"), ", sure.") == "Yes, sure."
    fb = feedback_guidance("the response has 3 commas.")
    assert fb.text == "A previous answer failed: the response has 3 commas. Fix this."
    with pytest.raises(ValueError, match="unknown guidance kind 'magic'"):
        Guidance("magic")


def test_which_guidance_applies_to_which_environment():
    instructions = get_env("instructions")
    task = next(
        t for t in instructions.tasks("train", 80, 0) if "start_phrase" in t.tags
    )  # a constraint that fixes the opening
    kinds = guidance_for(instructions, task, "the response does not start with it", combine=True)
    assert [g.kind for g in kinds] == ["feedback", "hint", "prefix", "hint+prefix"]
    phrase = next(c for c in task.metadata["constraints"] if c["type"] == "start_phrase")
    assert kinds[2].prefix.lower() == phrase["params"]["phrase"].lower() and not kinds[2].text
    assert kinds[1].text.startswith("Hint: ") and kinds[3].prefix == kinds[2].prefix
    assert instructions.verify(task, kinds[2].prefix + " and more.").details["by_type"][
        "start_phrase"
    ]
    assert [g.kind for g in guidance_for(instructions, task)] == ["hint", "prefix"]
    # a task no constraint of which fixes the opening gets no prefix (no generic one)
    free = next(
        t for t in instructions.tasks("train", 80, 0) if not instructions.response_prefix(t)
    )
    assert [g.kind for g in guidance_for(instructions, free)] == ["hint"]
    # tools: the env's opening names the first expected tool; a multi-turn env without its own
    # gets the generic opening of a call; an env with neither method gets nothing
    tools = get_env("tools")
    t = tools.tasks("train", 1, 0)[0]
    [hint, prefix] = guidance_for(tools, t)
    first = t.metadata["calls"][0]
    assert prefix.prefix.startswith(TOOL_CALL_OPENING + first["name"])
    assert (
        json.dumps(first["arguments"]) in hint.text and str(t.metadata["answer"]) not in hint.text
    )

    class Bare:
        name = "bare"

        def tools(self, task):
            return []

    assert guidance_for(Bare(), t) == [Guidance("prefix", prefix=TOOL_CALL_OPENING)]
    assert guidance_for(get_env("arithmetic"), get_env("arithmetic").tasks("train", 1, 0)[0]) == []


def test_an_environment_returning_a_non_string_is_a_one_line_error():
    class Bad:
        name = "bad"

        def hint(self, task):
            return ["not", "text"]

    with pytest.raises(EvoforgeError, match=r"bad'.*hint\(task\) must return a string or None"):
        env_guidance(Bad(), "hint", _task(("user", "q")))


class Recording:
    """A scripted model of the tools env: it writes the expected calls, then the answer, and
    after a forced prefix writes only the rest of the call; it keeps every request."""

    def __init__(self, tasks):
        self.tasks = {t.id: t for t in tasks}
        self.requests = []

    def generate(self, requests):
        self.requests.extend(requests)
        out = []
        for r in requests:
            key, turn = r.id.rsplit("#", 1)
            task = self.tasks["/".join(key.split("/")[:4])]
            calls = task.metadata["calls"]
            if int(turn) < len(calls):
                c = calls[int(turn)]
                text = f"<tool_call>{json.dumps({'name': c['name'], 'arguments': c['arguments']})}</tool_call>"
            else:
                text = f"The answer is {task.metadata['answer']}."
            assert text.startswith(r.prefix)
            out.append(GenResult(r.id, [text[len(r.prefix) :]], 10, [5], ["stop"]))
        return out


def test_a_guided_rollout_stores_the_plain_task_and_keeps_the_prefix():
    env = get_env("tools")
    tasks = env.tasks("train", 3, 0)
    server = Recording(tasks)
    items = [
        (t, Guidance("hint+prefix", "Hint: " + env.hint(t), env.response_prefix(t))) for t in tasks
    ]
    trajs = guided_rollout(server, env, items, SAMPLING, max_turns=5, seed=1, samples=2)
    assert [t.key for t in trajs] == [
        f"{t.id}/guided-hint+prefix/{i}" for t in tasks for i in (0, 1)
    ]
    for traj in trajs:
        n = len(traj.task.messages)
        assert traj.messages[:n] == list(traj.task.messages)  # no hint in what is stored
        assert "Hint:" not in json.dumps(traj.messages)
        assert traj.turn_text(0).startswith(env.response_prefix(traj.task))  # prefix kept
        assert env.verify(traj.task, traj.messages).passed
    seen = [r for r in server.requests if r.id.startswith(trajs[0].key + "#")]
    assert all("Hint:" in r.messages[0]["content"] for r in seen)  # every turn sees the hint
    # the prefix is the whole first call: it is turn 0, nothing is generated after it
    assert trajs[0].turn_text(0) == env.response_prefix(trajs[0].task)
    assert [r.id.rsplit("#")[1] for r in seen][0] == "1" and not any(r.prefix for r in seen)
    assert seen[0].messages[1:] == trajs[0].messages[1 : len(seen[0].messages)]
    # a turn may go on after a whole-call prefix when turns hold several calls
    several = Recording(tasks)
    guided_rollout(several, env, items[:1], SAMPLING, max_turns=5, seed=1, one_call=False)
    assert [bool(r.prefix) for r in several.requests] == [True] + [False] * (
        len(several.requests) - 1
    )
    # the same tasks without guidance: the model's own prompts, the same stored shape
    plain = Recording(tasks)
    rollout(plain, env, tasks, SAMPLING, max_turns=5, seed=1)
    assert all(not r.prefix and "Hint:" not in r.messages[0]["content"] for r in plain.requests)
    by_task = Recording(tasks)
    [one] = rollout(by_task, env, tasks[:1], SAMPLING, 5, guidance={tasks[0].id: items[0][1]})
    assert one.messages == trajs[0].messages
    # an opening that is not a whole call is sent, and the model finishes the call
    opening = env.response_prefix(tasks[0]).split('"arguments": {')[0] + '"arguments": {'
    opened = Recording(tasks)
    [t] = rollout(
        opened, env, tasks[:1], SAMPLING, 5, guidance={tasks[0].id: Guidance("prefix", "", opening)}
    )
    assert opened.requests[0].prefix == opening and t.messages == trajs[0].messages


def test_a_chain_s_later_calls_are_forced_turn_by_turn_and_the_model_answers():
    env = get_env("tools")
    chains = [t for t in env.tasks("train", 14, 0) if len(t.metadata["calls"]) > 1]
    assert {t.metadata["type"] for t in chains} == {"lookup_convert", "lookup_calc", "date_chain"}
    [g] = [g for g in guidance_for(env, chains[0]) if g.kind == "prefix"]
    calls = chains[0].metadata["calls"]
    assert len(g.followups) == len(calls) - 1 and g.forced(len(calls)) == ""
    server = Recording(chains)
    items = [(t, next(g for g in guidance_for(env, t) if g.kind == "prefix")) for t in chains]
    trajs = guided_rollout(server, env, items, SAMPLING, max_turns=4, seed=1)
    for traj in trajs:
        n = len(traj.task.metadata["calls"])
        assert [traj.turns[i].tokens for i in range(n)] == [0] * n  # every call forced, whole
        assert traj.turns[n].tokens == 5 and traj.ended == "answer"  # the model's answer
        assert env.verify(traj.task, traj.messages).passed
    # the model was asked for the answer turn only
    assert sorted({r.id.rsplit("#")[1] for r in server.requests}) == ["2", "3"]

    # a bad followup_prefixes is a one-line error
    class Bad:
        name = "bad"

        def response_prefix(self, task):
            return "<tool_call>"

        def followup_prefixes(self, task):
            return "not a list"

    with pytest.raises(EvoforgeError, match="followup_prefixes\\(task\\) must return a list"):
        guidance_for(Bad(), chains[0])


@pytest.mark.slow
def test_guided_samples_on_the_tiny_model(tiny_path):
    """The real path: Roles.explore and a guided rollout on the tiny model in the HF engine."""
    from evoforge.agents.roles import Roles
    from evoforge.agents.serving.hf_engine import HFEngine

    engine = HFEngine(tiny_path, max_model_len=2048, batch_size=8, threads=0, dtype="auto")
    env = get_env("instructions")
    tasks = env.tasks("train", 2, 0)
    s = Sampling(temperature=0.7, max_tokens=8)
    roles = Roles(engine, engine, engine, s, s, s, seed=1)
    items = [
        (tasks[0], Guidance("prefix", prefix="Yes, ")),
        (tasks[1], Guidance("hint", "Hint: be brief.")),
    ]
    out = roles.explore(items, n=3, key="k")
    assert [len(x) for x in out] == [3, 3] and all(a.startswith("Yes, ") for a in out[0])
    assert roles.explore(items, n=3, key="k") == out  # seeded by (key, task, kind)
    plain = roles.answer([tasks[1]], key="k")[0].texts[0]
    assert out[1][0] != plain  # the hint reached the model
    tools = get_env("tools")
    t = tools.tasks("train", 1, 0)[0]
    g = Guidance("prefix", prefix=tools.response_prefix(t))
    [traj] = guided_rollout(engine, tools, [(t, g)], s, max_turns=2, seed=3)
    assert traj.messages[: len(t.messages)] == list(t.messages)
    # a whole-call prefix is the whole turn; the model writes the next one
    assert traj.turn_text(0) == g.prefix and traj.turns[0].tokens == 0
    assert 0 < traj.turns[1].tokens <= 8
    opening = '<tool_call>{"name": "calculate", "arguments": {'
    [opened] = guided_rollout(engine, tools, [(t, Guidance("prefix", prefix=opening))], s, 1, 3)
    text = opened.turn_text(0)
    assert text.startswith(opening) and text.endswith("</tool_call>") and opened.turns[0].tokens > 0
