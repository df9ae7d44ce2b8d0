"""The checks ``check_env`` adds for a multi-turn environment (one that gives tools).

- tools(task) gives Tool objects with unique names and object schemas that are valid JSON schema;
- every tool called twice with the same arguments (drawn from its schema) gives the same message,
  and returns within its time limit;
- the step contract: a turn without a call ends the trajectory (or the step hook replies), a turn
  with a call does not, ``max_turns`` ends it, the hook returns an EnvReply or None;
- bad calls (malformed JSON, an unknown tool, wrong argument types) are failed turns with
  feedback, never an exception;
- verify() returns a well-formed Verdict on sample trajectories, bad calls included, and a
  ``details["failed_turn"]`` that is absent or an int naming one of the trajectory's turns;
- the calls of the optional ``example_calls(task)`` succeed, deterministically (each tool's
  success path, which arguments drawn from a schema rarely reach); arguments left out of an
  ``optional`` schema property are accepted.
"""

from __future__ import annotations

from typing import Any

from evoforge.envs.base import Task
from evoforge.envs.multiturn import (
    TIMEOUT,
    Tool,
    Trajectory,
    apply_turn,
    failed_turn_problem,
    tool_map,
    tool_time_limit,
)
from evoforge.envs.toolcalls import call_text, example_arguments, schema_error
from evoforge.envs.verify import validate_verdict
from evoforge.errors import EvoforgeError

_WRONG = {"string": 12345, "number": "twelve", "integer": "twelve", "boolean": "yes"}


def wrong_arguments(tool: Tool) -> dict[str, Any] | None:
    """Arguments whose types break the schema, or None when no property has a scalar type."""
    props = tool.parameters.get("properties", {})
    wrong = {k: _WRONG.get(v.get("type"), []) for k, v in props.items()}
    return wrong if any(v.get("type") in _WRONG for v in props.values()) else None


def _turn(env, task: Task, text: str, max_turns: int, tools) -> Trajectory:
    traj = Trajectory.start(task, f"{task.id}/check")
    apply_turn(env, traj, text, max_turns, tools)
    return traj


def _tools(env, task: Task, report) -> dict[str, Tool] | None:
    tools = tool_map(env, task)
    if len(tools) != len(list(env.tools(task))):
        report.fail(f"tools() of task '{task.id}' repeats a tool name; names must be unique")
    problems = [
        f"tool '{t.name}': {p}" for t in tools.values() if (p := schema_error(t.parameters))
    ]
    for p in problems:
        report.fail(p)
    return None if problems else tools


def _bad_calls(tools: dict[str, Tool]) -> dict[str, str]:
    first = next(iter(tools.values()), None)
    bad = {
        "malformed JSON": '<tool_call>{"name": "x", "arguments": {</tool_call>',
        "an unknown tool": call_text("no_such_tool", {}),
    }
    wrong = wrong_arguments(first) if first else None
    if first and wrong:
        bad["wrong argument types"] = call_text(first.name, wrong)
    return bad


def _check_task(env, task: Task, report, samples: list[Trajectory]) -> bool:
    """The tool and step checks on one task; False when a problem stops the checks."""
    tools = _tools(env, task, report)
    if tools is None:
        return False
    for tool in tools.values():
        text = call_text(tool.name, example_arguments(tool.parameters))
        a = _turn(env, task, text, 3, tools)
        if any(e.startswith(f"{tool.name}: {TIMEOUT}") for e in a.turns[-1].errors):
            report.fail(
                f"tool '{tool.name}' did not return within {tool_time_limit(env):g} s on task "
                f"'{task.id}' (arguments {example_arguments(tool.parameters)}); fix the tool, or set the "
                "environment's tool_timeout_s if it is just slow"
            )
            return False
        b = _turn(env, task, text, 3, tools)
        if a.messages != b.messages:
            report.fail(f"tool '{tool.name}' gives different results for the same call")
            return False
        if a.done and a.ended != "env":
            report.fail(f"a turn that calls '{tool.name}' ended the trajectory ({a.ended})")
        samples.append(a)
    if not _check_examples(env, task, tools, report, samples):
        return False
    for what, text in _bad_calls(tools).items():
        t = _turn(env, task, text, 3, tools)
        if not t.turns[-1].errors or t.messages[-1].get("role") not in ("tool", "user"):
            report.fail(f"a call with {what} was not a failed turn with feedback")
        samples.append(t)
    final = _turn(env, task, "A short answer.", 3, tools)
    if not final.done and final.messages[-1].get("role") != "user":
        report.fail("a turn without a tool call neither ended the trajectory nor got a reply")
    capped = _turn(env, task, next(iter(_bad_calls(tools).values())), 1, tools)
    if not capped.done:
        report.fail("max_turns=1 did not end the trajectory after one turn")
    samples.extend([final, _turn(env, task, "", 3, tools)])
    return True


def check_multiturn(env, tasks: list[Task], report) -> None:
    """Add the multi-turn checks to ``report`` (a CheckReport)."""
    samples: list[Trajectory] = []
    for task in tasks[: min(2, len(tasks))]:
        try:
            if not _check_task(env, task, report, samples):
                return
        except EvoforgeError as e:
            report.fail(str(e).split(": ", 1)[1] if str(e).startswith("environment") else str(e))
            return
        except Exception as e:
            report.fail(
                f"tools() or step() raised {type(e).__name__}: {e} on task '{task.id}'; report a "
                "bad call by raising ToolError"
            )
            return
    report.checks.append(
        "tools are well-formed and deterministic; bad calls are failed turns; the step contract holds"
    )
    report.checks.append(_examples_line(env, samples))
    for traj in samples:
        try:
            verdict = validate_verdict(report.env, env.verify(traj.task, traj.messages))
            if problem := failed_turn_problem(verdict.details, len(traj.turns)):
                report.fail(f"{problem} (task '{traj.task.id}')")
                return
        except ValueError as e:
            report.fail(str(e).split(": ", 1)[1])
            return
        except Exception as e:
            report.fail(
                f"verify() raised {type(e).__name__}: {e} on a trajectory of task "
                f"'{traj.task.id}'; a verifier must return a failing Verdict with feedback"
            )
            return
    report.checks.append(
        "verify() returns well-formed Verdicts (and a usable failed_turn) on sample trajectories"
    )


def example_calls(env, task: Task) -> list[dict[str, Any]] | None:
    """The environment's ``example_calls(task)``, checked; None when it has no such method."""
    fn = getattr(env, "example_calls", None)
    if not callable(fn):
        return None
    calls = fn(task)
    ok = isinstance(calls, list | tuple) and all(
        isinstance(c, dict)
        and isinstance(c.get("name"), str)
        and isinstance(c.get("arguments"), dict)
        for c in calls
    )
    if not ok:
        raise EvoforgeError(
            f"environment '{getattr(env, 'name', env)}': example_calls(task) must return a list of "
            f"{{'name': str, 'arguments': dict}}, got {calls!r:.80} for task '{task.id}'"
        )
    return list(calls)


def _check_examples(env, task: Task, tools: dict[str, Tool], report, samples) -> bool:
    """Each example call succeeds twice alike and leaves the trajectory open; then an answer
    ends a two-turn sample. Also each tool called with its required arguments only."""
    for tool in tools.values():
        required = tool.parameters.get("required", [])
        args = {k: v for k, v in example_arguments(tool.parameters).items() if k in required}
        if len(args) < len(tool.parameters.get("properties", {})):
            samples.append(_turn(env, task, call_text(tool.name, args), 3, tools))
    for c in example_calls(env, task) or []:
        text = call_text(c["name"], c["arguments"])
        a, b = (_turn(env, task, text, 3, tools) for _ in range(2))
        if not a.turns[-1].calls or a.turns[-1].errors:
            why = (a.turns[-1].errors or ["it made no call"])[0]
            report.fail(
                f"example call {text} of task '{task.id}' failed ({why}); example_calls(task) "
                "must give calls that succeed"
            )
            return False
        if a.messages != b.messages:
            report.fail(f"tool '{c['name']}' gives different results for the same example call")
            return False
        if not a.done:
            apply_turn(env, a, "A short answer.", 3, tools)
        samples.append(a)
    return True


def _examples_line(env, samples: list[Trajectory]) -> str:
    if not callable(getattr(env, "example_calls", None)):
        return (
            "tools were called with arguments drawn from their schemas only; give "
            "example_calls(task) to reach their success paths"
        )
    reached = sorted({c["name"] for t in samples for r in t.turns for c in r.calls})
    return (
        f"example calls succeed and are deterministic (tools that succeeded: {', '.join(reached)})"
    )
