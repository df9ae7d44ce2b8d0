"""Prompt templates of the roles, in one place, as plain text with ``{placeholders}``.

Override any of them from config with ``prompts.critic=PATH`` / ``prompts.refiner=PATH`` (a text
file with the same placeholders). A multi-turn environment's trajectories have their own built-in
templates with the same placeholders (the instruction then lists the tools, and the response is
the conversation as :func:`transcript` writes it), so one override file serves both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evoforge.errors import ConfigError

# SPaR's judge: list the requirements, check each, end with a parseable verdict.
CRITIC = """You are a strict judge. Decide whether the response follows every requirement of the instruction.

Instruction:
{instruction}

Response:
{response}

List each requirement of the instruction on its own line and say whether the response meets it. \
Then write the final line exactly as "Verdict: yes" if every requirement is met, or "Verdict: no" otherwise."""

REFINER = """Improve the response so that it follows every requirement of the instruction. \
Keep what is already right; change only what is needed.

Instruction:
{instruction}

Response:
{response}

Critique:
{critique}
{feedback}
Write only the improved response, between <response> and </response>."""

# The judge of a whole trajectory (a conversation with tools).
CRITIC_TRAJECTORY = """You are a strict judge. An assistant solved a task by calling tools. Decide whether it made the right calls with the right arguments and gave the correct final answer.

Task:
{instruction}

Conversation:
{response}

Check each tool call and the final answer on its own line. \
Then write the final line exactly as "Verdict: yes" if the task was solved correctly, or "Verdict: no" otherwise."""

# The refiner of one turn of a trajectory; it may keep the turn (the adaptive stop).
REFINER_TURN = """An assistant is solving a task with tools. Rewrite the turn marked >>> so that the task gets solved; keep what is already right.

Task:
{instruction}

Conversation:
{response}

Critique:
{critique}
{feedback}
Write only the new turn between <response> and </response>: a tool call written as \
<tool_call>{{"name": "<tool name>", "arguments": {{...}}}}</tool_call>, or the final answer. \
If the turn needs no change, write <response>NO CHANGE</response>."""

FEEDBACK_LINE = "\nProblems found by the checker: {feedback}\n"
NO_CRITIQUE = "(no critique: go by the problems the checker found)"
"""What the refiner reads in place of a critique when the judge is benched for the round."""

TEMPLATES = {"critic": CRITIC, "refiner": REFINER}
TRAJECTORY_TEMPLATES = {"critic": CRITIC_TRAJECTORY, "refiner": REFINER_TURN}
PLACEHOLDERS = {
    "critic": ("instruction", "response"),
    "refiner": ("instruction", "response", "critique", "feedback"),
}


def check_template(role: str, text: str, where: str) -> str:
    """``text`` if it formats with exactly the role's placeholders; else a ConfigError.

    Literal braces must be doubled ({{ and }}), as in Python's str.format, which fills the
    template; a placeholder must be a bare name (no attribute, index, conversion or format)."""
    import string

    allowed = PLACEHOLDERS[role]
    try:
        fields = [f for _, f, spec, conv in string.Formatter().parse(text) if f is not None] + [
            f"{f}!{conv}" if conv else f"{f}:{spec}"
            for _, f, spec, conv in string.Formatter().parse(text)
            if f is not None and (spec or conv)
        ]
    except ValueError as e:
        raise ConfigError(
            f"prompts.{role}: template {where} has unbalanced braces ({e}); write a literal "
            "brace as {{ or }}"
        ) from None
    unknown = sorted({f for f in fields if f not in allowed})
    if unknown:
        raise ConfigError(
            f"prompts.{role}: template {where} has {{{unknown[0]}}}, which is not one of its "
            f"placeholders ({', '.join('{' + k + '}' for k in allowed)}); write a literal brace "
            "as {{ or }}"
        )
    missing = [k for k in allowed if k not in fields]
    if missing:
        raise ConfigError(
            f"prompts.{role}: template {where} lacks placeholder(s) "
            + ", ".join("{" + k + "}" for k in missing)
        )
    return text


def load_template(role: str, override: str = "", trajectories: bool = False) -> str:
    """The template of ``role`` (the one for multi-turn trajectories with ``trajectories``), or
    the text file ``override`` after checking its placeholders."""
    if not override:
        return (TRAJECTORY_TEMPLATES if trajectories else TEMPLATES)[role]
    p = Path(override).expanduser()
    if not p.is_file():
        raise ConfigError(f"prompts.{role}: template file '{override}' not found")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"prompts.{role}: template file '{override}' is not UTF-8 text") from None
    except OSError as e:
        raise ConfigError(
            f"prompts.{role}: template file '{override}' cannot be read ({e.strerror})"
        ) from None
    return check_template(role, text, f"'{override}'")


def tools_text(specs: Sequence[Mapping[str, Any]]) -> str:
    """The tools in one line each: name, argument schema, description."""
    lines = []
    for spec in specs:
        f = spec.get("function", spec)
        params = json.dumps(f.get("parameters", {}).get("properties", {}))
        lines.append(f"- {f.get('name', '')}({params}): {f.get('description', '')}")
    return "\n".join(lines)


def task_with_tools(instruction: str, specs: Sequence[Mapping[str, Any]]) -> str:
    """What a role reads as the task of a multi-turn trajectory: the instruction and the tools."""
    return f"{instruction}\n\nTools:\n{tools_text(specs)}" if specs else instruction


def transcript(messages: Sequence[Mapping[str, str]], start: int, mark: int | None = None) -> str:
    """The conversation from message ``start`` on, one message a paragraph: ``assistant:``,
    ``tool <name>:``, ``user:``; the message at index ``mark`` is prefixed with ``>>> ``."""
    parts = []
    for i, m in enumerate(messages):
        if i < start:
            continue
        role = m.get("role", "")
        who = f"tool {m.get('name', '')}".rstrip() if role == "tool" else role
        parts.append(f"{'>>> ' if i == mark else ''}{who}: {m.get('content', '')}")
    return "\n\n".join(parts)
