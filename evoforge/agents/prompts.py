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


def load_template(role: str, override: str = "") -> str:
    """The template of ``role``, or the text file ``override`` after checking its placeholders."""
    if not override:
        return TEMPLATES[role]
    p = Path(override).expanduser()
    if not p.is_file():
        raise ConfigError(f"prompts.{role}: template file '{override}' not found")
    text = p.read_text(encoding="utf-8")
    missing = [k for k in PLACEHOLDERS[role] if "{" + k + "}" not in text]
    if missing:
        raise ConfigError(
            f"prompts.{role}: template '{override}' lacks placeholder(s) "
            + ", ".join("{" + k + "}" for k in missing)
        )
    return text
