"""How a conversation with tools is shown to a model whose chat template does not render tools:
the tools as one line each in the system prompt, the call format with an example call, and tool
results as <tool_response> blocks in user messages."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from evoforge.envs.multiturn import Message
from evoforge.envs.toolcalls import CALL_FORMAT, example_call


def _type_text(prop: Mapping[str, Any]) -> str:
    """An argument's schema in a few words: its allowed values, else its type."""
    if "enum" in prop:
        return "|".join(str(v) for v in prop["enum"])
    kind = prop.get("type", "any")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array" and isinstance(prop.get("items"), Mapping):
        return f"list of {_type_text(prop['items'])}"
    if kind == "object" and prop.get("properties"):
        return json.dumps(prop)
    return str(kind)


def tool_signature(spec: Mapping[str, Any]) -> str:
    """One line for a tool (an OpenAI-style function spec): ``name(arg: type, opt?: type): what
    it does``, an argument's own description in parentheses."""
    fn = spec.get("function", spec)
    params = fn.get("parameters", {})
    required = set(params.get("required", []))
    args = []
    for name, prop in params.get("properties", {}).items():
        about = f" ({prop['description']})" if prop.get("description") else ""
        args.append(f"{name}{'' if name in required else '?'}: {_type_text(prop)}{about}")
    about = f": {fn['description']}" if fn.get("description") else ""
    return f"{fn['name']}({', '.join(args)}){about}"


def tool_prompt(specs: Sequence[Mapping[str, Any]]) -> str:
    """The system-prompt text that describes the tools, a line each, and the call format, with
    one example call of the first tool.

    A line per tool, not its JSON schema: with the schemas a ``tools`` prompt was 808 tokens of
    the default model, most of every prompt and of every training row; with the lines it is
    about half, saying the same (names, types, allowed values, which arguments are optional)."""
    lines = "\n".join(f"- {tool_signature(s)}" for s in specs)
    how = (
        "To call a tool, write its name and arguments as JSON inside <tool_call> tags, for "
        f"example:\n{example_call(specs[0])}\n"
        if specs
        else f"To call a tool, write {CALL_FORMAT}\n"
    )
    return (
        f"You can call these tools:\n{lines}\n"
        f"{how}"
        "Each result comes back in <tool_response> tags. When you have what you need, "
        "answer without a tool call."
    )


def text_chat(messages: Sequence[Message], specs: Sequence[Mapping[str, Any]]) -> list[Message]:
    """The conversation for a template without tool support: the tools in the system prompt,
    tool results (and what the environment says right after them) merged into one user message
    in <tool_response> tags, so that roles alternate as every template expects."""
    out: list[Message] = []
    for m in messages:
        role, content = m.get("role", ""), m.get("content", "")
        if role == "tool":
            body = json.dumps({"name": m.get("name", ""), "content": content})
            content, role = f"<tool_response>\n{body}\n</tool_response>", "user"
        if role == "user" and out and out[-1]["role"] == "user":
            out[-1] = {"role": "user", "content": out[-1]["content"] + "\n" + content}
        else:
            out.append({"role": role, "content": content})
    if specs:
        text = tool_prompt(specs)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": out[0]["content"] + "\n\n" + text}
        else:
            out.insert(0, {"role": "system", "content": text})
    return out
