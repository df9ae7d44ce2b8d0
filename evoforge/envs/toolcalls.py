"""Tool calls in a model's text: the call format, the parser, and argument checks.

The format (Hermes/Qwen style, which most tool-aware chat templates also use): one block per call,

    <tool_call>{"name": "convert_units", "arguments": {"value": 3, "from_unit": "km", "to_unit": "mi"}}</tool_call>

A turn may hold several blocks; a turn with none is a final answer. Robust to small models, and
never guessing:

- accepted: a ```json fence inside the block, ``"parameters"`` for ``"arguments"``, arguments as a
  JSON string holding an object (OpenAI style), a JSON list of calls in one block, a block whose
  closing tag is missing when the JSON after it is complete, and a whole message that is exactly
  one JSON object with "name" and "arguments" (no tags);
- refused, each as a failed call with feedback in words: JSON that does not parse, a call without
  a name, an unknown tool, arguments that do not match the tool's JSON schema, more than
  ``MAX_CALLS_PER_TURN`` calls in one turn.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_CALLS_PER_TURN = 8
"""Calls beyond this many in one turn are refused (a small model can repeat a block forever)."""

CALL_FORMAT = '<tool_call>{"name": "<tool name>", "arguments": {<arguments as JSON>}}</tool_call>'

CALL_CLOSE = "</tool_call>"
"""The closing tag of a call block: the stop string of a turn that holds one call."""


def call_text(name: str, arguments: Mapping[str, Any]) -> str:
    """One call written in the call format."""
    return f"<tool_call>{json.dumps({'name': name, 'arguments': dict(arguments)})}</tool_call>"


def example_value(prop: Mapping[str, Any]) -> Any:
    """A value for one argument drawn from its schema: the first ``examples`` entry, else the
    first allowed (``enum``) value, else a value of its type."""
    if prop.get("examples"):
        return prop["examples"][0]
    if "enum" in prop:
        return prop["enum"][0]
    kind = prop.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    by_type = {
        "string": "a",
        "number": 1.5,
        "integer": 2,
        "boolean": True,
        "array": [],
        "object": {},
    }
    return by_type.get(kind, "a")


def example_arguments(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Arguments for every property of an object schema, each from :func:`example_value`."""
    return {k: example_value(p) for k, p in parameters.get("properties", {}).items()}


def example_call(spec: Mapping[str, Any]) -> str:
    """One complete call of the tool in ``spec`` (an OpenAI-style function spec) with example
    arguments. A small model copies what it is shown: shown ``{<arguments as JSON>}`` it writes
    exactly that (0 well-formed calls in 28 forced openings on the default model), so the prompt
    shows a call it could send."""
    fn = spec.get("function", spec)
    return call_text(fn["name"], example_arguments(fn.get("parameters", {})))


_OPEN = re.compile(r"<\s*tool_call\s*>", re.IGNORECASE)
_CLOSE = re.compile(r"<\s*/\s*tool_call\s*>", re.IGNORECASE)
_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


def first_call(text: str) -> str:
    """``text`` up to the end of its first call block, the closing tag written when a stop string
    cut it off; text without a block is returned as is.

    What a small model writes after a call is its guess of the result ("The result is 2.") and
    more calls built on that guess; the tool's real result is what it should see next."""
    opened = _OPEN.search(text)
    if opened is None:
        return text
    closed = _CLOSE.search(text, opened.end())
    return text[: closed.end()] if closed else text.rstrip() + CALL_CLOSE


def closes_call(text: str) -> bool:
    """Whether ``text`` holds a whole call block (a forced opening that is the complete call)."""
    opened = _OPEN.search(text)
    return opened is not None and _CLOSE.search(text, opened.end()) is not None


@dataclass(frozen=True)
class ToolCall:
    """A well-formed call of a known tool with arguments that match its schema."""

    name: str
    arguments: dict[str, Any] = field(hash=False)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class CallError:
    """A call that cannot run, and why, in words the model (and a refiner) can act on."""

    feedback: str
    name: str = ""
    """The tool the call named, when it named one."""


@dataclass(frozen=True)
class ParsedTurn:
    """One assistant turn read for tool calls, in the order they were written."""

    items: tuple[ToolCall | CallError, ...]
    attempted: bool
    """The turn tried to call a tool (well-formed or not); a turn that did not is an answer."""

    @property
    def calls(self) -> list[ToolCall]:
        return [c for c in self.items if isinstance(c, ToolCall)]

    @property
    def errors(self) -> list[str]:
        return [c.feedback for c in self.items if isinstance(c, CallError)]


def _blocks(text: str) -> list[str]:
    """The text of every <tool_call> block; an unterminated block runs to the next one or the end."""
    opens = list(_OPEN.finditer(text))
    out = []
    for i, m in enumerate(opens):
        end = opens[i + 1].start() if i + 1 < len(opens) else len(text)
        close = _CLOSE.search(text, m.end(), end)
        out.append(text[m.end() : close.start() if close else end])
    return out


def _decode(body: str) -> list[Any] | CallError:
    body = _FENCE.sub("", body.strip()).strip()
    if not body:
        return CallError(f"empty tool call; write {CALL_FORMAT}")
    try:
        value = json.loads(body)
    except json.JSONDecodeError as e:
        return CallError(
            f"the tool call is not valid JSON ({e.msg} at character {e.pos}: "
            f"{body[max(0, e.pos - 20) : e.pos + 20]!r}); write {CALL_FORMAT}"
        )
    return value if isinstance(value, list) else [value]


def _call(value: Any, tools: Mapping[str, Any]) -> ToolCall | CallError:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return CallError(f'a tool call needs a JSON object with a "name"; write {CALL_FORMAT}')
    name = value["name"]
    if name not in tools:
        known = ", ".join(sorted(tools)) or "none"
        return CallError(f"unknown tool '{name}'; the tools are: {known}", name)
    args = value.get("arguments", value.get("parameters", {}))
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            return CallError(f"{name}: the arguments are a string that is not a JSON object", name)
    if not isinstance(args, dict):
        return CallError(
            f"{name}: the arguments must be a JSON object, got {type(args).__name__}", name
        )
    problem = schema_problem(tools[name].parameters, args)
    if problem:
        return CallError(f"{name}: {problem}", name)
    return ToolCall(name, args)


def _whole_message_call(text: str) -> dict[str, Any] | None:
    stripped = _FENCE.sub("", text.strip()).strip()
    if not stripped.startswith("{"):
        return None
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError:
        return None
    keys = {"arguments", "parameters"}
    return value if isinstance(value, dict) and "name" in value and keys & set(value) else None


def parse_turn(text: str, tools: Mapping[str, Any]) -> ParsedTurn:
    """Read the tool calls of one assistant turn; ``tools`` maps each name to its Tool."""
    text = text or ""
    bodies = _blocks(text)
    values: list[Any | CallError] = []
    for body in bodies:
        decoded = _decode(body)
        values.extend([decoded] if isinstance(decoded, CallError) else decoded)
    if not bodies:
        whole = _whole_message_call(text)
        if whole is None:
            return ParsedTurn(items=(), attempted=False)
        values = [whole]
    items: list[ToolCall | CallError] = [
        v if isinstance(v, CallError) else _call(v, tools) for v in values
    ]
    if len(items) > MAX_CALLS_PER_TURN:
        dropped = len(items) - MAX_CALLS_PER_TURN
        items = items[:MAX_CALLS_PER_TURN] + [
            CallError(f"{dropped} calls beyond {MAX_CALLS_PER_TURN} in one turn were not run")
        ]
    return ParsedTurn(items=tuple(items), attempted=True)


ERROR_PREFIX = "error: "
"""How the tool message of a failed call starts (the feedback the model reads follows it)."""


@dataclass(frozen=True)
class TurnCalls:
    """One assistant turn of a trajectory, read for its calls (see :func:`trajectory_calls`)."""

    turn: int
    """0-based assistant turn: the numbering of ``details["failed_turn"]`` and TurnRecord."""
    index: int
    """Position of the assistant message in the messages."""
    parsed: ParsedTurn
    """The calls as the run parsed them (well-formed calls and refused ones, in order)."""
    results: tuple[dict[str, str], ...]
    """The ``tool`` messages right after the turn: one per item of ``parsed``, in order."""

    @property
    def calls(self) -> list[ToolCall]:
        """The calls that ran and succeeded (their tool message is not an error)."""
        return [
            c
            for c, r in zip(self.parsed.items, self.results, strict=False)
            if isinstance(c, ToolCall) and not r.get("content", "").startswith(ERROR_PREFIX)
        ]

    @property
    def errors(self) -> list[str]:
        """Why each failed call failed: refused by the parser, or the tool's ToolError."""
        out = list(self.parsed.errors)
        out += [
            r.get("content", "")[len(ERROR_PREFIX) :]
            for c, r in zip(self.parsed.items, self.results, strict=False)
            if isinstance(c, ToolCall) and r.get("content", "").startswith(ERROR_PREFIX)
        ]
        return out

    @property
    def final(self) -> bool:
        """The turn made no call: an answer."""
        return not self.parsed.attempted


def trajectory_calls(
    task: Any, messages: Sequence[Mapping[str, Any]], tools: Mapping[str, Any] | Sequence[Any]
) -> list[TurnCalls]:
    """The turns the model wrote in ``messages`` (what ``verify(task, messages)`` receives: the
    task's own messages, then the trajectory), each read for its tool calls exactly as the run
    parsed them, with the tool messages that answered it. ``tools``: the task's tools
    (``env.tools(task)``) or a map of them by name. Turn numbers are those of
    ``details["failed_turn"]``; assistant messages of the task's own prompt are not turns."""
    by_name = tools if isinstance(tools, Mapping) else {t.name: t for t in tools}
    own = list(getattr(task, "messages", ()))
    start = len(own) if [dict(m) for m in messages[: len(own)]] == [dict(m) for m in own] else 0
    out: list[TurnCalls] = []
    for i in range(start, len(messages)):
        if messages[i].get("role") != "assistant":
            continue
        j = i + 1
        while j < len(messages) and messages[j].get("role") == "tool":
            j += 1
        results = tuple(dict(r) for r in messages[i + 1 : j])
        parsed = parse_turn(messages[i].get("content") or "", by_name)
        out.append(TurnCalls(len(out), i, parsed, results))
    return out


def schema_problem(schema: Mapping[str, Any], arguments: Mapping[str, Any]) -> str:
    """The first way ``arguments`` breaks the JSON schema, in words; '' when they match."""
    from jsonschema import Draft202012Validator

    errors = sorted(
        Draft202012Validator(schema).iter_errors(arguments),
        key=lambda e: (list(e.absolute_path), e.message),
    )
    if not errors:
        return ""
    e = errors[0]
    where = f"argument '{'.'.join(map(str, e.absolute_path))}'" if e.absolute_path else "arguments"
    return f"{where}: {e.message}"


def schema_error(schema: Any) -> str:
    """Why ``schema`` is not a usable arguments schema (an object schema); '' when it is."""
    from jsonschema import Draft202012Validator, SchemaError

    if not isinstance(schema, dict) or schema.get("type") != "object":
        return 'the parameters schema must be a JSON schema with "type": "object"'
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as e:
        return f"the parameters schema is not valid JSON schema: {e.message}"
    return ""
