"""Hostile text from the sandbox (NUL bytes, terminal escapes, bidi overrides, lone surrogates,
invalid UTF-8, huge messages) reaches feedback, verdicts and run files only cleaned and cut."""

from __future__ import annotations

import json

from evoforge.envs import get_env
from evoforge.sandbox import clean, run_code
from tests.helpers.sandbox import LIMITS

NASTY = "'\\x00\\x1b[2J\\x1b]0;owned\\x07\\u202e\\ud800\\udfff' + 'z' * 100000"
FORBIDDEN = ("\x00", "\x1b", "\x07", "\u202e")


def storable(text: str) -> None:
    assert not any(c in text for c in FORBIDDEN), repr(text[:200])
    text.encode("utf-8")  # no lone surrogate
    assert len(text) < 2000


def test_hostile_returns_errors_and_prints_are_cleaned():
    for code in (
        f"def f(x):\n    return {NASTY}",
        f"def f(x):\n    raise ValueError({NASTY})",
        f"raise ValueError({NASTY})",
        f"class E(Exception):\n    def __str__(self):\n        return {NASTY}\ndef f(x):\n    raise E()",
        "import os\nos.write(1, b'\\xff\\xfe\\x00\\x1b[31m')\nos.write(2, b'\\x80' * 100)\n"
        "def f(x):\n    os._exit(3)",
    ):
        result = run_code(code, "f", [[1]], LIMITS)
        feedback = result.feedback(["2"])
        assert feedback
        storable(feedback)
        assert not any(c in result.printed for c in FORBIDDEN)
        result.printed.encode("utf-8")


def test_a_verdict_with_hostile_text_is_stored_as_json():
    env = get_env("code")
    task = env.tasks("train", 1, seed=0)[0]
    for body in (f"return {NASTY}", f"raise RuntimeError({NASTY})", "import os; os._exit(0)"):
        name = task.metadata["function"]
        verdict = env.verify(task, f"```python\ndef {name}(xs):\n    {body}\n```")
        assert not verdict.passed
        storable(verdict.feedback)
        line = json.dumps({"feedback": verdict.feedback, "details": verdict.details})
        line.encode("utf-8")


def test_clean():
    assert clean("a\tb\nc") == "a\tb\nc"
    assert clean("\x00\x1b[1m\u202eé") == "\\x{0}\\x{1b}[1m\\x{202e}é"
    assert clean("\ud800") == "?"
    assert clean("x" * 50, 10) == "x" * 10 + "... [40 more characters]"
