import json

import pytest

from evoforge.envs import Task
from evoforge.envs.base import Verdict
from evoforge.envs.check import check_env
from evoforge.envs.multiturn import (
    EnvReply,
    Tool,
    ToolError,
    Trajectory,
    apply_turn,
    first_failed_turn,
    object_schema,
    tool_map,
)
from evoforge.envs.tool_prompt import text_chat
from evoforge.envs.toolcalls import (
    MAX_CALLS_PER_TURN,
    ToolCall,
    closes_call,
    first_call,
    parse_turn,
)
from evoforge.errors import EvoforgeError


def add(a: float, b: float) -> float:
    return a + b


def city(name: str) -> str:
    if name != "Velmora":
        raise ToolError(f"no city named {name!r}")
    return "Valdoria"


TOOLS = {
    "add": Tool("add", "Add two numbers.", object_schema(a="number", b="number"), add),
    "city": Tool("city", "Country of a city.", object_schema(name="string"), city),
}


def call(tool, **args):
    return f"<tool_call>{json.dumps({'name': tool, 'arguments': args})}</tool_call>"


def test_valid_calls_in_order_with_the_tolerated_variants():
    text = (
        "Let me add.\n" + call("add", a=1, b=2) + "\n<tool_call>\n```json\n"
        '{"name": "city", "parameters": {"name": "Velmora"}}\n```\n</tool_call>'
        '<tool_call>[{"name": "add", "arguments": "{\\"a\\": 3, \\"b\\": 4}"}]</tool_call>'
    )
    p = parse_turn(text, TOOLS)
    assert p.attempted and not p.errors
    assert p.calls == [
        ToolCall("add", {"a": 1, "b": 2}),
        ToolCall("city", {"name": "Velmora"}),
        ToolCall("add", {"a": 3, "b": 4}),
    ]
    # an unterminated last block whose JSON is complete; a whole message that is one call
    assert parse_turn('<tool_call>{"name": "add", "arguments": {"a": 1, "b": 1}}', TOOLS).calls
    whole = parse_turn('{"name": "city", "arguments": {"name": "Velmora"}}', TOOLS)
    assert whole.calls == [ToolCall("city", {"name": "Velmora"})]


def test_an_answer_is_not_a_call_and_nothing_is_guessed():
    for text in ("The answer is 3.", "", 'I would call {"name": "add"} maybe', "add(1, 2)"):
        p = parse_turn(text, TOOLS)
        assert not p.attempted and not p.items


def test_a_turn_cut_to_its_first_call():
    one = call("add", a=1, b=2)
    guessed = f"Let me add.\n{one}\nThe result is 2.\n\n{call('city', name='Oslo')}"
    assert first_call(guessed) == f"Let me add.\n{one}"
    assert parse_turn(first_call(guessed), TOOLS).calls == parse_turn(one, TOOLS).calls
    # the stop string cut the closing tag off: it is written back, and the call still parses
    cut = one.removesuffix("</tool_call>")
    assert first_call(cut + "  ") == one and parse_turn(first_call(cut), TOOLS).calls
    # an answer, and a list of calls in one block, are left whole
    assert first_call("The answer is 3.") == "The answer is 3."
    listed = f"<tool_call>[{one[11:-12]}, {one[11:-12]}]</tool_call> done"
    assert len(parse_turn(first_call(listed), TOOLS).calls) == 2
    assert closes_call(one) and not closes_call(cut) and not closes_call("</tool_call>")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('<tool_call>{"name": "add", "arguments": {"a": 1,</tool_call>', "not valid JSON"),
        ("<tool_call></tool_call>", "empty tool call"),
        ('<tool_call>{"arguments": {}}</tool_call>', 'needs a JSON object with a "name"'),
        (call("multiply", a=1, b=2), "unknown tool 'multiply'; the tools are: add, city"),
        (call("add", a="one", b=2), "add: argument 'a': 'one' is not of type 'number'"),
        (call("add", a=1), "add: arguments: 'b' is a required property"),
        (call("add", a=1, b=2, c=3), "Additional properties are not allowed"),
        (call("add", a=True, b=2), "True is not of type 'number'"),
        ('<tool_call>{"name": "add", "arguments": [1, 2]}</tool_call>', "must be a JSON object"),
    ],
)
def test_each_bad_call_is_an_error_in_words(text, words):
    p = parse_turn(text, TOOLS)
    assert p.attempted and not p.calls
    assert words in p.errors[0]


def test_too_many_calls_in_one_turn_are_refused():
    p = parse_turn(call("add", a=1, b=1) * (MAX_CALLS_PER_TURN + 3), TOOLS)
    assert len(p.calls) == MAX_CALLS_PER_TURN
    assert p.errors == [f"3 calls beyond {MAX_CALLS_PER_TURN} in one turn were not run"]


class Env:
    name = "mini"

    def __init__(self, reply=None):
        self.reply = reply

    def tasks(self, split, n, seed):
        return [
            Task(id=f"{split}/{seed}/{i}", messages=({"role": "user", "content": f"{split} {i}"},))
            for i in range(n)
        ]

    def tools(self, task):
        return list(TOOLS.values())

    def step(self, task, messages):
        return self.reply

    def verify(self, task, messages):
        ok = any(m["role"] == "tool" and m["content"] == "3" for m in messages)
        return Verdict(float(ok), ok, {"failed_turn": 0} if not ok else {})


def start(env=None):
    env = env or Env()
    task = env.tasks("train", 1, 0)[0]
    return env, Trajectory.start(task, "k"), tool_map(env, task)


def test_a_turn_runs_calls_and_a_bad_call_is_a_failed_turn_not_a_crash():
    env, traj, tools = start()
    r = apply_turn(env, traj, call("add", a=1, b=2) + call("city", name="Oslo"), 4, tools)
    assert r.calls == [{"name": "add", "arguments": {"a": 1, "b": 2}}]
    assert r.errors == ["city: no city named 'Oslo'"] and not r.final and not traj.done
    assert traj.messages[-2:] == [
        {"role": "tool", "name": "add", "content": "3"},
        {"role": "tool", "name": "city", "content": "error: no city named 'Oslo'"},
    ]
    apply_turn(env, traj, "<tool_call>{oops</tool_call>", 4, tools)
    assert traj.turns[-1].errors and "not valid JSON" in traj.messages[-1]["content"]
    apply_turn(env, traj, "It is 3.", 4, tools)
    assert traj.ended == "answer" and traj.turns[-1].final
    with pytest.raises(EvoforgeError, match="has ended"):
        apply_turn(env, traj, "more", 4, tools)


def test_max_turns_ends_with_feedback_and_the_step_hook_speaks_or_ends():
    env, traj, tools = start()
    apply_turn(env, traj, call("add", a=1, b=2), 1, tools)
    assert traj.ended == "max_turns" and "too many turns" in traj.turns[-1].errors[-1]
    env, traj, tools = start(Env(EnvReply("Are you sure?")))
    apply_turn(env, traj, "It is 3.", 5, tools)
    assert not traj.done and traj.messages[-1] == {"role": "user", "content": "Are you sure?"}
    env, traj, tools = start(Env(EnvReply(done=True)))
    apply_turn(env, traj, call("add", a=1, b=2), 5, tools)
    assert traj.ended == "env"
    env, traj, tools = start(Env("not a reply"))
    with pytest.raises(EvoforgeError, match="step\\(\\) must return an EnvReply or None"):
        apply_turn(env, traj, "x", 5, tools)


def test_a_failed_turn_repeated_word_for_word_with_the_same_errors_ends_the_trajectory():
    env, traj, tools = start()
    bad = call("city", name="Oslo")
    apply_turn(env, traj, bad, 6, tools)
    apply_turn(env, traj, call("city", name="Bergen"), 6, tools)  # another failed call goes on
    apply_turn(env, traj, call("city", name="Bergen"), 6, tools)  # the same failure again: a loop
    assert traj.ended == "repeated" and len(traj.turns) == 3
    assert "word for word" in traj.turns[-1].errors[-1]
    assert env.verify(traj.task, traj.messages).passed is False
    # A call that succeeded may be repeated; a repeated call that fails differently (a flaky
    # tool, a timeout that then resolves) is a new try, not a loop.
    env, traj, tools = start()
    for _ in range(3):
        apply_turn(env, traj, call("add", a=1, b=2), 6, tools)
    assert not traj.done
    tries = iter(range(10))

    def flaky(name):
        raise ToolError(f"busy, try {next(tries)}")

    tools = dict(tools, city=Tool("city", "", object_schema(name="string"), flaky))
    env, traj, _ = start()
    for _ in range(3):
        apply_turn(env, traj, bad, 6, tools)
    assert not traj.done and [t.errors for t in traj.turns][-1] == ["city: busy, try 2"]


def test_a_tool_that_crashes_is_an_error_of_the_environment():
    env, traj, _ = start()
    broken = Tool("add", "", object_schema(a="number", b="number"), lambda a, b: 1 / 0)
    with pytest.raises(EvoforgeError, match="tool 'add' raised ZeroDivisionError.*ToolError"):
        apply_turn(env, traj, call("add", a=1, b=2), 3, {"add": broken})


def test_branch_trajectory_json_and_the_failed_turn():
    env, traj, tools = start()
    apply_turn(env, traj, call("city", name="Oslo"), 5, tools)
    apply_turn(env, traj, call("add", a=1, b=2), 5, tools)
    apply_turn(env, traj, "3", 5, tools)
    assert Trajectory.from_json(json.loads(json.dumps(traj.to_json()))) == traj
    b = traj.branch(1, "k2")
    assert b.messages == traj.messages[: traj.turns[1].index] and len(b.turns) == 1
    assert not b.done and b.key == "k2"
    assert first_failed_turn(traj, Verdict(0.0, False, {"failed_turn": 2})) == 2
    assert first_failed_turn(traj, Verdict(0.0, False, {})) == 0  # the turn with a failed call
    with pytest.raises(EvoforgeError, match=r"failed_turn'\]=9 for a trajectory of 3"):
        first_failed_turn(traj, Verdict(0.0, False, {"failed_turn": 9}))  # an error, not ignored


def test_text_chat_shows_tools_and_alternates_roles():
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": call("add", a=1, b=2)},
        {"role": "tool", "name": "add", "content": "3"},
        {"role": "tool", "name": "city", "content": "error: x"},
        {"role": "user", "content": "hint"},
        {"role": "assistant", "content": "3"},
    ]
    out = text_chat(msgs, [t.spec() for t in TOOLS.values()])
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user", "assistant"]
    assert out[0]["content"].startswith("Be brief.\n\nYou can call these tools:")
    assert "\n- add(a: number, b: number): Add two numbers.\n" in out[0]["content"]
    assert "<tool_call>" in out[0]["content"]
    assert out[3]["content"] == (
        '<tool_response>\n{"name": "add", "content": "3"}\n</tool_response>\n'
        '<tool_response>\n{"name": "city", "content": "error: x"}\n</tool_response>\nhint'
    )


def test_a_tool_is_one_line_with_types_allowed_values_and_optional_arguments():
    from evoforge.envs.tool_prompt import tool_signature

    spec = {
        "name": "find",
        "description": "Find rows.",
        "parameters": {
            "type": "object",
            "properties": {
                "table": {"type": "string", "enum": ["a", "b"], "description": "where"},
                "ids": {"type": "array", "items": {"type": "integer"}},
                "limit": {"type": ["integer", "null"]},
            },
            "required": ["table", "ids"],
        },
    }
    assert tool_signature({"type": "function", "function": spec}) == (
        "find(table: a|b (where), ids: list of integer, limit?: integer or null): Find rows."
    )
    assert tool_signature({"name": "now"}) == "now()"


def test_tool_prompt_shows_a_call_that_parses_and_runs_not_placeholders():
    # the default model copied `{<arguments as JSON>}` from the prompt into every forced call
    from evoforge.envs.tool_prompt import tool_prompt
    from evoforge.envs.tools.catalogue import CATALOGUE

    specs = [t.spec() for t in CATALOGUE]
    prompt = tool_prompt(specs)
    assert "<arguments as JSON>" not in prompt and "<tool name>" not in prompt
    example = prompt.split("for example:\n", 1)[1].splitlines()[0]
    parsed = parse_turn(example, {t.name: t for t in CATALOGUE})
    assert not parsed.errors and [c.name for c in parsed.calls] == ["calculate"]
    assert CATALOGUE[0].fn(**parsed.calls[0].arguments) == 60
    # without an example value in the schema: enum -> first value, number/integer -> a number
    enum_only = tool_prompt([CATALOGUE[1].spec()])
    assert '"arguments": {"value": 1.5, "from_unit": "m", "to_unit": "m"}' in enum_only


class NoisyTool(Env):
    def tools(self, task):
        import random

        return [Tool("roll", "A die.", object_schema(), lambda: random.random())]


class BadSchema(Env):
    def tools(self, task):
        return [Tool("add", "", {"type": "array"}, add)]


class CrashingStep(Env):
    def step(self, task, messages):
        raise KeyError("turn")


def test_check_env_covers_multiturn_environments():
    assert check_env(Env()).ok
    r = check_env(NoisyTool())
    assert any("different results for the same call" in p for p in r.problems)
    r = check_env(BadSchema())
    assert any('"type": "object"' in p for p in r.problems)
    r = check_env(CrashingStep())
    assert any("step() raised KeyError" in p for p in r.problems)
    r = check_env(Env(reply="bad"))
    assert any("step() must return an EnvReply" in p for p in r.problems)


def test_the_example_tool_environment():
    from pathlib import Path

    import examples.custom_tool_env as mod
    from examples.custom_tool_env import StockEnv

    assert len(Path(mod.__file__).read_text().splitlines()) < 80
    env = StockEnv()
    assert check_env(env).ok
    task = env.tasks("train", 1, 0)[0]
    a, b = task.metadata["items"]
    traj, tools = Trajectory.start(task, "k"), tool_map(env, task)
    apply_turn(env, traj, call("stock", item=a) + call("stock", item=b), 4, tools)
    apply_turn(env, traj, "Quite a few.", 4, tools)  # the step hook asks for a number
    assert traj.messages[-1]["role"] == "user" and not traj.done
    apply_turn(env, traj, f"{task.metadata['answer']}", 4, tools)
    assert traj.ended == "answer" and env.verify(task, traj.messages).passed


# -- the tool time limit ------------------------------------------------------------------------


@pytest.fixture
def stuck():
    """The stuck-tool environment; its hung calls are let go at the end."""
    from tests.helpers.stuck_tool import RELEASE, StuckToolEnv

    RELEASE.clear()
    yield StuckToolEnv()
    RELEASE.set()


def test_a_tool_that_never_returns_is_a_failed_turn_the_model_sees(stuck):
    import time

    task = stuck.tasks("train", 1, 0)[0]
    traj = Trajectory.start(task, "k")
    start = time.monotonic()
    record = apply_turn(stuck, traj, call("lookup", name="x"), 3, tool_map(stuck, task))
    assert time.monotonic() - start < 5
    assert traj.messages[-1] == {
        "role": "tool",
        "name": "lookup",
        "content": "error: timeout: the tool did not return within 0.5 s; try other arguments",
    }
    assert record.errors == [
        "lookup: timeout: the tool did not return within 0.5 s; try other arguments"
    ]
    assert not traj.done  # the model gets another turn


def test_tools_that_stay_stuck_stop_the_run_in_one_line(stuck):
    from evoforge.envs import tool_limit

    task = stuck.tasks("train", 1, 0)[0]
    stuck.tool_timeout_s = 0.01
    tools = tool_map(stuck, task)
    with pytest.raises(EvoforgeError) as e:
        for _ in range(tool_limit.MAX_STUCK + 1):
            apply_turn(stuck, Trajectory.start(task, "k"), call("lookup", name="x"), 3, tools)
    assert str(e.value) == (
        f"environment 'stucktool': tool 'lookup' did not return within 0.01 s on task "
        f"'{task.id}', and {tool_limit.MAX_STUCK} earlier calls are still stuck; fix the tool (it "
        "must return or raise ToolError), or raise generation.tool_timeout_s if it is just slow"
    )
    from tests.helpers.stuck_tool import RELEASE

    RELEASE.set()
    for t in list(tool_limit._stuck):
        t.join(5)
    assert tool_limit.stuck_calls() == 0


def test_the_config_limit_wins_over_the_environments_own(stuck):
    from evoforge.envs.check import CheckedEnv
    from evoforge.envs.multiturn import DEFAULT_TOOL_TIMEOUT_S, tool_time_limit
    from tests.helpers.stuck_tool import SlowDefaultEnv

    assert tool_time_limit(stuck) == 0.5
    assert tool_time_limit(CheckedEnv(stuck, 60)) == 0.5
    assert tool_time_limit(CheckedEnv(stuck, 60, tool_timeout_s=2)) == 2
    assert tool_time_limit(CheckedEnv(SlowDefaultEnv(), 60)) == DEFAULT_TOOL_TIMEOUT_S


def test_envs_check_prints_each_check_as_it_runs_and_fails_a_stuck_tool(stuck):
    seen: list[str] = []
    report = check_env(stuck, n=4, echo=seen.append)
    task = stuck.tasks("train", 4, 0)[0]
    assert seen[:2] == [
        "ok   tasks('train', 4, 0) returns 4 storable Task objects",
        "ok   same seed gives the same tasks",
    ]
    assert seen[-1] == (
        f"FAIL environment 'stucktool': tool 'lookup' did not return within 0.5 s on task "
        f"'{task.id}' (arguments {{'name': 'a'}}); fix the tool, or set the environment's "
        "tool_timeout_s if it is just slow"
    )
    assert seen == [f"ok   {c}" for c in report.checks] + [f"FAIL {p}" for p in report.problems]
