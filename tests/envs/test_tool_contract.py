"""The tool-environment contract (docs/environments.md): the public parser of a trajectory's calls,
object_schema's types and optional arguments, ``details["failed_turn"]`` checked by ``envs check``
and at run time, and ``example_calls(task)`` reaching a tool's success path."""

from __future__ import annotations

import json

import pytest

from evoforge.envs import Task, Tool, ToolError, Verdict, object_schema, optional, trajectory_calls
from evoforge.envs.check import check_env
from evoforge.envs.multiturn import Trajectory, apply_turn, first_failed_turn
from evoforge.envs.toolcalls import ToolCall, schema_problem
from evoforge.errors import EvoforgeError

CODES = {"VX-7": "open", "QR-2": "closed"}


def door(code: str, floor: int = 0) -> str:
    """Succeeds only for a known code: arguments drawn from the schema never reach this path."""
    if code not in CODES:
        raise ToolError(f"no door with code {code!r}")
    return f"{CODES[code]} on floor {floor}"


TOOLS = [
    Tool("door", "A door's state.", object_schema(code="string", floor=optional("integer")), door)
]


def call(name, **args):
    return f"<tool_call>{json.dumps({'name': name, 'arguments': args})}</tool_call>"


class DoorEnv:
    """A correct tool environment; subclasses break one part of the contract each."""

    name = "doors"
    failed_turn: object = 0

    def tasks(self, split, n, seed):
        return [
            Task(
                id=f"doors/{split}/{seed}/{i}",
                messages=({"role": "user", "content": f"Is door {i} of {split}/{seed} open?"},),
            )
            for i in range(n)
        ]

    def tools(self, task):
        return TOOLS

    def example_calls(self, task):
        return [{"name": "door", "arguments": {"code": "VX-7"}}]

    def verify(self, task, messages):
        turns = trajectory_calls(task, messages, self.tools(task))
        ok = any(c.name == "door" for t in turns for c in t.calls)
        details = {} if ok else {"failed_turn": self.failed_turn}
        return Verdict(float(ok), ok, details, "" if ok else "call door with a known code")


def test_trajectory_calls_reads_each_turn_as_the_run_parsed_it():
    task = Task(
        "t",
        (
            {"role": "user", "content": "Say hi."},
            {"role": "assistant", "content": call("door", code="VX-7")},  # the task's own
            {"role": "user", "content": "Now the doors."},
        ),
    )
    env, tools = DoorEnv(), {t.name: t for t in TOOLS}
    traj = Trajectory.start(task, "k")
    apply_turn(env, traj, call("door", code="QR-2", floor=3) + call("door", code="nope"), 5, tools)
    apply_turn(env, traj, '<tool_call>{"name": "door", "arguments": {</tool_call>', 5, tools)
    apply_turn(env, traj, "Door QR-2 is closed.", 5, tools)
    turns = trajectory_calls(task, traj.messages, TOOLS)
    assert [t.turn for t in turns] == [0, 1, 2]  # the task's own assistant message is no turn
    assert [t.index for t in turns] == [r.index for r in traj.turns]
    first, bad, answer = turns
    assert first.calls == [ToolCall("door", {"code": "QR-2", "floor": 3})]
    assert first.errors == ["no door with code 'nope'"]  # the tool's ToolError
    assert [r["content"] for r in first.results] == [
        "closed on floor 3",
        "error: no door with code 'nope'",
    ]
    assert not bad.calls and "not valid JSON" in bad.errors[0] and not bad.final
    assert answer.final and not answer.calls and not answer.results


def test_object_schema_types_and_optional_arguments():
    schema = TOOLS[0].parameters
    assert schema["required"] == ["code"] and schema["properties"]["floor"] == {"type": "integer"}
    assert schema_problem(schema, {"code": "VX-7"}) == ""  # the optional one left out
    assert "floor" in schema_problem(schema, {"code": "VX-7", "floor": "3"})
    assert "Additional properties" in schema_problem(schema, {"code": "VX-7", "lift": 1})
    full = object_schema(
        n="number", tags="array", unit=["km", "mi"], x={"type": "string", "minLength": 2}
    )
    assert full["properties"]["unit"] == {"type": "string", "enum": ["km", "mi"]}
    assert full["properties"]["x"]["minLength"] == 2
    with pytest.raises(
        ValueError, match="argument 'n' has type 'float'; use one of string, number"
    ):
        object_schema(n="float")


def test_envs_check_reaches_the_success_path_from_example_calls():
    report = check_env(DoorEnv(), n=4)
    assert report.ok, report.problems
    assert any("example calls succeed" in c and "door" in c for c in report.checks)

    class NoExamples(DoorEnv):
        example_calls = None

    lines = check_env(NoExamples(), n=4).checks
    assert any("give example_calls(task)" in c for c in lines)  # said, not a failure

    class WrongExample(DoorEnv):
        def example_calls(self, task):
            return [{"name": "door", "arguments": {"code": "ZZ-9"}}]

    (problem,) = check_env(WrongExample(), n=4).problems
    assert "example call" in problem and "no door with code 'ZZ-9'" in problem

    class Malformed(DoorEnv):
        def example_calls(self, task):
            return ["door(VX-7)"]

    (problem,) = check_env(Malformed(), n=4).problems
    assert "example_calls(task) must return a list of {'name': str, 'arguments': dict}" in problem


def test_an_optional_argument_without_a_default_is_caught():
    class NoDefault(DoorEnv):
        def tools(self, task):
            strict = lambda code, floor: door(code, floor)  # noqa: E731
            return [
                Tool(
                    "door",
                    "A door.",
                    object_schema(code="string", floor=optional("integer")),
                    strict,
                )
            ]

    (problem,) = check_env(NoDefault(), n=4).problems
    assert "tool 'door' raised TypeError" in problem and "floor" in problem


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("0", "details['failed_turn']='0' (str); it must be an int"),
        (True, "details['failed_turn']=True (bool); it must be an int"),
        (1.0, "(float); it must be an int"),
        (
            5,
            "details['failed_turn']=5 for a trajectory of 1 assistant turn(s); it must be from 0 to 0",
        ),
        (-1, "it must be from 0 to 0"),
    ],
)
def test_envs_check_rejects_a_failed_turn_of_the_wrong_type_or_out_of_range(value, says):
    class Bad(DoorEnv):
        failed_turn = value

    problems = check_env(Bad(), n=4).problems
    assert len(problems) == 1 and says in problems[0], problems
    traj = Trajectory.start(Bad().tasks("train", 1, 0)[0], "k")
    apply_turn(Bad(), traj, "no call", 3, {t.name: t for t in TOOLS})
    with pytest.raises(EvoforgeError, match="failed_turn"):  # at run time: an error, not ignored
        first_failed_turn(traj, Bad().verify(traj.task, traj.messages))


def test_a_failed_turn_that_names_a_turn_is_used():
    env = DoorEnv()
    traj = Trajectory.start(env.tasks("train", 1, 0)[0], "k")
    apply_turn(env, traj, call("door", code="nope"), 3, {t.name: t for t in TOOLS})
    apply_turn(env, traj, "It is open.", 3, {t.name: t for t in TOOLS})
    assert first_failed_turn(traj, Verdict(0.0, False, {"failed_turn": 1})) == 1
    assert first_failed_turn(traj, Verdict(0.0, False, {"failed_turn": None})) == 0  # failed call
