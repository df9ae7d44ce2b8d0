"""Prompt templates of the roles, in one place, as plain text with ``{placeholders}``.

Override any of them from config with ``prompts.critic=PATH`` / ``prompts.refiner=PATH`` (a text
file with the same placeholders).
"""

from __future__ import annotations

from pathlib import Path

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

FEEDBACK_LINE = "\nProblems found by the checker: {feedback}\n"
NO_CRITIQUE = "(no critique: go by the problems the checker found)"
"""What the refiner reads in place of a critique when the judge is benched for the round."""

TEMPLATES = {"critic": CRITIC, "refiner": REFINER}
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


def load_template(role: str, override: str = "") -> str:
    """The template of ``role``, or the text file ``override`` after checking its placeholders."""
    if not override:
        return TEMPLATES[role]
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
