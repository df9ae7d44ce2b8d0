"""Guided exploration: sample a task that plain sampling never passes again, with guidance.

Three kinds of guidance (STaR's rationalization, context distillation):

- ``feedback``: the verifier's feedback on the closest failed sample, added to the prompt;
- ``hint``: the environment's optional ``hint(task)`` (envs/base.py), added to the prompt;
- ``prefix``: a forced opening of the answer: the environment's ``response_prefix(task)``, else
  for a multi-turn (tool) environment the opening of a tool call. Single-turn environments get no
  generic prefix: there is no opening that fits every task. A multi-turn environment may force
  later turns too (``followup_prefixes``: a chain's later calls); the model writes the rest.

``hint+prefix`` gives both at once. The guarantee callers rely on: the model SEES
:func:`guided_messages` (the task with the guidance line), but what is STORED and trained on is
the plain task (``task.messages``) and the answer with the prefix kept (:func:`answer`), so a
verified guided sample teaches the plain prompt to answer that way.
"""

from __future__ import annotations

from dataclasses import dataclass

from evoforge.envs.base import Task, env_followups, env_guidance
from evoforge.envs.multiturn import Message, is_multiturn

KINDS = ("feedback", "hint", "prefix", "hint+prefix")
"""The kinds of guidance, in the order :func:`guidance_for` lists them."""

TOOL_CALL_OPENING = '<tool_call>{"name": "'
"""The generic forced opening for a multi-turn environment that proposes none: the start of a
tool call in the format the parser reads (envs/toolcalls.py), the tool's name left to the model."""

FEEDBACK_TEXT = "A previous answer failed: {feedback}. Fix this."
HINT_TEXT = "Hint: {hint}"


@dataclass(frozen=True)
class Guidance:
    """One way to guide a sample of a task."""

    kind: str
    """One of :data:`KINDS`; pairs record it as the guidance kind."""
    text: str = ""
    """The line added to the last user message of the prompt ('' for a pure prefix)."""
    prefix: str = ""
    """The forced opening of the answer ('' for none); it stays part of the stored answer."""
    followups: tuple[str, ...] = ()
    """Multi-turn: the openings forced on the assistant turns after the first, in order (the
    environment's ``followup_prefixes``); they stay part of the stored trajectory too."""

    def forced(self, turn: int) -> str:
        """The opening forced on assistant turn ``turn`` ('' where the model writes alone)."""
        if turn == 0:
            return self.prefix
        return self.followups[turn - 1] if turn - 1 < len(self.followups) else ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown guidance kind '{self.kind}'; use one of {', '.join(KINDS)}")


def feedback_guidance(feedback: str) -> Guidance:
    """The verifier's feedback on a failed answer, as a line of the prompt."""
    return Guidance("feedback", FEEDBACK_TEXT.format(feedback=feedback.strip().rstrip(".")))


def default_prefix(env: object, task: Task) -> str:
    """The opening to force: the environment's own ``response_prefix(task)``, else the start of a
    tool call for a multi-turn environment, else '' (no generic prefix for single-turn tasks)."""
    own = env_guidance(env, "response_prefix", task)
    if own:
        return own
    return TOOL_CALL_OPENING if is_multiturn(env) else ""


def guidance_for(
    env: object, task: Task, feedback: str = "", combine: bool = False
) -> list[Guidance]:
    """The guidance that applies to ``task``, in :data:`KINDS` order: ``feedback`` when there is
    feedback on its closest failed sample, ``hint`` when the environment gives one, ``prefix``
    when an opening applies (:func:`default_prefix`), and with ``combine`` also ``hint+prefix``
    when both do."""
    out = []
    if feedback.strip():
        out.append(feedback_guidance(feedback))
    hint = env_guidance(env, "hint", task).strip()
    if hint:
        out.append(Guidance("hint", HINT_TEXT.format(hint=hint)))
    prefix = default_prefix(env, task)
    later = env_followups(env, task) if prefix else ()
    if prefix:
        out.append(Guidance("prefix", prefix=prefix, followups=later))
    if combine and hint and prefix:
        out.append(Guidance("hint+prefix", HINT_TEXT.format(hint=hint), prefix, later))
    return out


def guided_messages(task: Task, g: Guidance) -> list[Message]:
    """The messages the model sees: the task's, with ``g.text`` appended to the last user
    message (a new user message when there is none). ``task.messages`` is left as it is."""
    messages = [dict(m) for m in task.messages]
    if not g.text:
        return messages
    last = next(
        (i for i in range(len(messages) - 1, -1, -1) if messages[i].get("role") == "user"), None
    )
    if last is None:
        messages.append({"role": "user", "content": g.text})
    else:
        messages[last]["content"] = f"{messages[last].get('content', '')}\n\n{g.text}"
    return messages


def answer(g: Guidance, continuation: str) -> str:
    """The answer to store: the forced prefix and what the model wrote after it."""
    return g.prefix + continuation
