"""Multi-turn environments with tools, beside the single-turn Environment (which is unchanged).

A multi-turn environment has the single-turn ``name`` and ``tasks(split, n, seed)``, plus:

- ``tools(task) -> Sequence[Tool]``: Python callables with a JSON-schema signature. They are
  trusted code and run in-process; a tool that runs model-written code must run it through
  ``evoforge.sandbox.run_code``. A tool reports a bad call (unknown city, bad date) by raising
  :class:`ToolError`; any other exception is a bug of the environment and stops the run.
  Each call has a time limit (:func:`tool_time_limit`): a call that does not return in time is
  a failed turn whose tool message is ``error: timeout: ...`` (see envs/tool_limit.py).
- ``verify(task, messages) -> Verdict``: judges the whole trajectory (the chat messages, the
  task's own first; envs/toolcalls.py ``trajectory_calls`` reads its calls). ``details["failed_turn"]``
  may name the first assistant turn (0-based, an int below the number of assistant turns) that
  went wrong; the refiner rewrites that turn.
- optional ``step(task, messages) -> EnvReply | None``: anything else the environment says after
  an assistant turn and its tool results (a simulated user, a hint, "2 turns left"), or ``done``.
- optional ``example_calls(task) -> [{"name": ..., "arguments": {...}}]``: calls that succeed on
  the task; ``envs check`` runs them to reach each tool's success path (check_multiturn.py).

The whole contract, for users: docs/environments.md.

A trajectory runs turn by turn (:func:`apply_turn`): the assistant's text is parsed for tool calls
(envs/toolcalls.py), each call runs, its result is appended as a ``tool`` message, then the step
hook speaks. A turn without a call is the final answer and ends the trajectory unless the step
hook replies; ``max_turns`` ends it too, and so does a failed turn written again word for word
that fails the same way (``repeated``: a loop, which would otherwise run to ``max_turns``). A bad
call is a failed turn whose feedback goes back to the model as the tool message, never an
exception.

Canonical messages are ``{"role", "content"}`` dicts (tool results add ``"name"``); the assistant's
content is its raw text, tool calls included, so training sees exactly what the model wrote.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from evoforge.envs.base import Task, Verdict
from evoforge.envs.tool_limit import (  # noqa: F401 - DEFAULT_TOOL_TIMEOUT_S: public here too
    DEFAULT_TOOL_TIMEOUT_S,
    MAX_STUCK,
    TIMEOUT,
    CallTimeout,
    TooManyStuck,
    call_with_limit,
    tool_time_limit,
)
from evoforge.envs.toolcalls import CallError, ToolCall, parse_turn
from evoforge.errors import EvoforgeError

Message = dict[str, str]

REPEATED = "repeated a failed turn word for word"
"""Opens the feedback of a trajectory that ended ``repeated``."""


class ToolError(Exception):
    """Raised by a tool for a call it cannot answer; the message goes back to the model."""


@dataclass(frozen=True)
class Tool:
    """A function the model may call: a name, a description and a JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any] = field(hash=False)
    """JSON schema of the arguments object (``{"type": "object", "properties": ...}``)."""
    fn: Callable[..., Any] = field(hash=False, compare=False)
    """Called with the arguments as keywords; returns anything JSON can encode."""

    def spec(self) -> dict[str, Any]:
        """The OpenAI-style function spec that chat templates (and TRL's ``tools``) take."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


JSON_TYPES = ("string", "number", "integer", "boolean", "array", "object", "null")
"""The type names ``object_schema`` takes (JSON schema's; ``number`` accepts integers too)."""


@dataclass(frozen=True)
class OptionalArg:
    """An argument the model may leave out (see :func:`optional`)."""

    spec: str | list | dict


def optional(spec: str | list | dict) -> OptionalArg:
    """Mark an ``object_schema`` argument as optional: ``object_schema(city="string",
    unit=optional(["C", "F"]))``; the tool's function then needs a default for it."""
    return OptionalArg(spec)


def object_schema(**properties: str | list | dict | OptionalArg) -> dict[str, Any]:
    """A JSON schema for keyword arguments: per argument a JSON type name (one of JSON_TYPES), a
    list of allowed strings, or a full property schema (a dict, taken as it is); required unless
    wrapped in :func:`optional`. No other argument is accepted."""

    def prop(k: str, v: str | list | dict) -> dict[str, Any]:
        if isinstance(v, str):
            if v not in JSON_TYPES:
                raise ValueError(
                    f"object_schema: argument '{k}' has type '{v}'; use one of "
                    f"{', '.join(JSON_TYPES)}, a list of allowed strings, or a property schema"
                )
            return {"type": v}
        if isinstance(v, list):
            return {"type": "string", "enum": v}
        return dict(v)

    return {
        "type": "object",
        "properties": {
            k: prop(k, v.spec if isinstance(v, OptionalArg) else v) for k, v in properties.items()
        },
        "required": [k for k, v in properties.items() if not isinstance(v, OptionalArg)],
        "additionalProperties": False,
    }


@dataclass(frozen=True)
class EnvReply:
    """What a step hook says after a turn."""

    content: str = ""
    """Appended as a user message when not empty (the trajectory then goes on)."""
    done: bool = False
    """End the trajectory now."""


@runtime_checkable
class MultiTurnEnvironment(Protocol):
    """A task family with tools; ``verify`` judges a whole trajectory."""

    name: str

    def tasks(self, split: str, n: int, seed: int) -> list[Task]: ...

    def tools(self, task: Task) -> Sequence[Tool]: ...

    def verify(self, task: Task, messages: Sequence[Message]) -> Verdict: ...


def is_multiturn(env: object) -> bool:
    """Whether ``env`` gives tools (and so verifies trajectories instead of one response)."""
    return callable(getattr(env, "tools", None))


@dataclass
class TurnRecord:
    """One assistant turn of a trajectory."""

    index: int
    """Position of the assistant message in ``Trajectory.messages``."""
    calls: list[dict[str, Any]] = field(default_factory=list)
    """The calls that ran (name and arguments)."""
    errors: list[str] = field(default_factory=list)
    """Why a call failed, per failed call; non-empty = a failed turn."""
    final: bool = False
    """The turn made no tool call (an answer)."""
    tokens: int = 0
    """Tokens the model generated for this turn (0 when not generated: a rewritten turn)."""


@dataclass
class Trajectory:
    """A conversation between the actor and a multi-turn environment."""

    task: Task
    key: str
    """Names this branch (task, sample, replays): request ids and sampling seeds derive from it."""
    messages: list[Message] = field(default_factory=list)
    turns: list[TurnRecord] = field(default_factory=list)
    ended: str = ""
    """'' while live; else 'answer', 'env' (the step hook ended it), 'max_turns', 'repeated' (a
    failed turn written again word for word failed the same way) or 'context' (the next prompt
    would not fit the context window)."""

    @classmethod
    def start(cls, task: Task, key: str) -> Trajectory:
        return cls(task=task, key=key, messages=[dict(m) for m in task.messages])

    @property
    def done(self) -> bool:
        return bool(self.ended)

    def prefix(self, turn: int) -> list[Message]:
        """The messages before assistant turn ``turn`` (what the actor saw when writing it)."""
        return [dict(m) for m in self.messages[: self.turns[turn].index]]

    def continuation(self, turn: int) -> list[Message]:
        """Assistant turn ``turn`` and everything after it."""
        return [dict(m) for m in self.messages[self.turns[turn].index :]]

    def branch(self, turn: int, key: str) -> Trajectory:
        """A live copy cut just before assistant turn ``turn``, to be continued differently."""
        if not 0 <= turn < len(self.turns):
            raise EvoforgeError(
                f"trajectory '{self.key}' has {len(self.turns)} turns; cannot branch at turn {turn}"
            )
        return Trajectory(
            task=self.task,
            key=key,
            messages=self.prefix(turn),
            turns=[
                TurnRecord(r.index, list(r.calls), list(r.errors), r.final, r.tokens)
                for r in self.turns[:turn]
            ],
        )

    def turn_text(self, turn: int) -> str:
        """What the assistant wrote at turn ``turn``."""
        return self.messages[self.turns[turn].index].get("content", "")

    @property
    def tokens(self) -> int:
        """Tokens the model generated over the whole trajectory."""
        return sum(r.tokens for r in self.turns)

    def to_json(self, with_task: bool = True) -> dict[str, Any]:
        """JSON of the trajectory; ``with_task=False`` leaves the task out (the round's files
        hold each task once and give it back to ``from_json``)."""
        d: dict[str, Any] = {"task": self.task.to_json()} if with_task else {}
        return d | {
            "key": self.key,
            "messages": self.messages,
            "turns": [asdict(r) for r in self.turns],
            "ended": self.ended,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any], task: Task | None = None) -> Trajectory:
        return cls(
            task=task if task is not None else Task.from_json(d["task"]),
            key=d["key"],
            messages=[dict(m) for m in d["messages"]],
            turns=[TurnRecord(**r) for r in d["turns"]],
            ended=d["ended"],
        )


def tool_map(env: object, task: Task) -> dict[str, Tool]:
    """The task's tools by name; a one-line error when the environment gives something else."""
    tools = env.tools(task)  # type: ignore[attr-defined]
    out: dict[str, Tool] = {}
    for t in tools:
        if not isinstance(t, Tool):
            raise EvoforgeError(
                f"environment '{getattr(env, 'name', env)}': tools() must return Tool objects "
                f"(evoforge.envs.multiturn.Tool), got {type(t).__name__}"
            )
        out[t.name] = t
    return out


def run_call(env: object, task: Task, tool: Tool, call: ToolCall) -> tuple[str, str]:
    """Run one call: (content of the tool message, error feedback or ''). A call past the time
    limit is a failed turn (the model's arguments may be what made it slow, as with a bad call);
    one past the limit while MAX_STUCK earlier calls are still stuck stops the run."""
    limit = tool_time_limit(env)
    try:
        result = call_with_limit(tool.fn, call.arguments, limit, call.name)
    except ToolError as e:
        return f"error: {e}", f"{call.name}: {e}"
    except TooManyStuck:
        raise EvoforgeError(
            f"environment '{getattr(env, 'name', env)}': tool '{call.name}' did not return "
            f"within {limit:g} s on task '{task.id}', and {MAX_STUCK} earlier calls are still "
            "stuck; fix the tool (it must return or raise ToolError), or raise "
            "generation.tool_timeout_s if it is just slow"
        ) from None
    except CallTimeout:
        why = f"{TIMEOUT}the tool did not return within {limit:g} s; try other arguments"
        return f"error: {why}", f"{call.name}: {why}"
    except Exception as e:
        raise EvoforgeError(
            f"environment '{getattr(env, 'name', env)}': tool '{call.name}' raised "
            f"{type(e).__name__}: {e} on task '{task.id}'; a tool reports a bad call by raising "
            "ToolError"
        ) from e
    try:
        return (result if isinstance(result, str) else json.dumps(result)), ""
    except (TypeError, ValueError) as e:
        raise EvoforgeError(
            f"environment '{getattr(env, 'name', env)}': tool '{call.name}' returned "
            f"{type(result).__name__}, which JSON cannot encode ({e})"
        ) from e


def _step_reply(env: object, task: Task, messages: list[Message]) -> EnvReply | None:
    hook = getattr(env, "step", None)
    if hook is None:
        return None
    reply = hook(task, messages)
    if reply is not None and not isinstance(reply, EnvReply):
        raise EvoforgeError(
            f"environment '{getattr(env, 'name', env)}': step() must return an EnvReply or "
            f"None, got {type(reply).__name__}"
        )
    return reply


def apply_turn(
    env: object, traj: Trajectory, text: str, max_turns: int, tools: Mapping[str, Tool]
) -> TurnRecord:
    """Add one assistant turn to a live trajectory: run its calls, let the step hook speak, and
    end the trajectory on an answer, on the hook's ``done``, on a failed turn repeated word for
    word with the same errors, or at ``max_turns``."""
    if traj.done:
        raise EvoforgeError(f"trajectory '{traj.key}' has ended ({traj.ended}); branch it first")
    last = traj.turns[-1] if traj.turns else None
    traj.messages.append({"role": "assistant", "content": text})
    parsed = parse_turn(text, tools)
    record = TurnRecord(index=len(traj.messages) - 1, final=not parsed.attempted)
    for item in parsed.items:
        if isinstance(item, CallError):
            content, error = f"error: {item.feedback}", item.feedback
        else:
            content, error = run_call(env, traj.task, tools[item.name], item)
            if not error:
                record.calls.append(item.to_json())
        traj.messages.append({"role": "tool", "name": item.name, "content": content})
        if error:
            record.errors.append(error)
    traj.turns.append(record)
    reply = _step_reply(env, traj.task, traj.messages)
    if reply is not None and reply.content:
        traj.messages.append({"role": "user", "content": reply.content})
    if reply is not None and reply.done:
        traj.ended = "env"
    elif record.final and not (reply is not None and reply.content):
        traj.ended = "answer"
    elif (
        last is not None
        and record.errors
        and record.errors == last.errors
        and traj.messages[last.index]["content"] == text
    ):
        # A loop, not a try: the same failed turn again got the same errors (the trained 135M
        # model on `tools` did this until max_turns, which held-out evaluation paid for).
        traj.ended = "repeated"
        record.errors.append(f"{REPEATED} and it failed the same way; read the error and change it")
    elif len(traj.turns) >= max_turns:
        traj.ended = "max_turns"
        record.errors.append(
            f"too many turns: {max_turns} turns without a final answer; answer without a tool "
            "call once the results are in"
        )
    return record


def as_messages(task: Task, response: str | Sequence[Message]) -> list[Message]:
    """A trajectory's messages; a single response string is read as a one-turn trajectory."""
    if isinstance(response, str):
        return [*task.messages, {"role": "assistant", "content": response}]
    return list(response)


def assistant_turns(messages: Sequence[Message]) -> list[int]:
    """Positions of the assistant messages."""
    return [i for i, m in enumerate(messages) if m.get("role") == "assistant"]


def first_failed_turn(traj: Trajectory, verdict: Verdict) -> int:
    """The assistant turn to rewrite: the one the verdict names in ``details["failed_turn"]``,
    else the first turn with a failed call, else the last turn."""
    if not traj.turns:
        raise EvoforgeError(f"trajectory '{traj.key}' has no assistant turn to rewrite")
    problem = failed_turn_problem(verdict.details, len(traj.turns))
    if problem:
        raise EvoforgeError(f"{problem} (task '{traj.task.id}')")
    named = verdict.details.get("failed_turn")
    if named is not None:
        return named
    return next((i for i, r in enumerate(traj.turns) if r.errors), len(traj.turns) - 1)


def failed_turn_problem(details: Mapping[str, Any], turns: int) -> str:
    """Why ``details["failed_turn"]`` is not a turn of a trajectory of ``turns`` assistant turns,
    in one line; '' when it is one, or absent (or None)."""
    named = details.get("failed_turn")
    if named is None:
        return ""
    if not isinstance(named, int) or isinstance(named, bool):
        return (
            f"verify() returned details['failed_turn']={named!r} ({type(named).__name__}); it "
            "must be an int, the 0-based assistant turn that went wrong, or absent"
        )
    if not 0 <= named < turns:
        return (
            f"verify() returned details['failed_turn']={named} for a trajectory of {turns} "
            f"assistant turn(s); it must be from 0 to {turns - 1} (0-based), or absent"
        )
    return ""
