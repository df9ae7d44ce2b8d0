"""Verification of a ``tools`` trajectory: the calls made against the expected ones, and the answer.

Calls are compared parsed, never as strings: same tool, arguments equal with numbers within a
relative 1e-3, strings without case or surrounding space, and a calculator expression by its
value. The final answer (the last assistant turn, when it makes no call) is read by kind: a
number (within 0.5 %), a date, a weekday, or a name. Partial credit: the share of expected calls
made plus the answer, over their count.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from evoforge.envs.arithmetic import extract_answer
from evoforge.envs.base import Task, Verdict
from evoforge.envs.multiturn import Message, ToolError, assistant_turns
from evoforge.envs.toolcalls import ToolCall, parse_turn
from evoforge.envs.tools.catalogue import TOOLS, cities, evaluate

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def same_value(got: Any, want: Any, rel: float = 1e-3) -> bool:
    """Numbers within ``rel`` (bools are not numbers), strings up to case and outer space."""
    num = (int, float)
    if isinstance(want, num) and not isinstance(want, bool):
        return (
            isinstance(got, num)
            and not isinstance(got, bool)
            and math.isclose(got, want, rel_tol=rel, abs_tol=1e-6)
        )
    if isinstance(want, str):
        return isinstance(got, str) and got.strip().casefold() == want.strip().casefold()
    return got == want


def _expression_value(expr: Any) -> float | None:
    try:
        return evaluate(expr) if isinstance(expr, str) else None
    except ToolError:
        return None


def differences(call: ToolCall, want: dict[str, Any]) -> list[str]:
    """How ``call`` differs from the expected call ``want`` (same tool), in words."""
    args = want["arguments"]
    if call.name == "calculate":
        got, need = (
            _expression_value(call.arguments.get("expression")),
            evaluate(args["expression"]),
        )
        if got is not None and same_value(got, need):
            return []
        return [
            f"called calculate with expression={call.arguments.get('expression')!r} but the task "
            f"needs {args['expression']!r}"
        ]
    return [
        f"called {call.name} with {k}={call.arguments.get(k)!r} but the task needs {v!r}"
        for k, v in args.items()
        if not same_value(call.arguments.get(k), v)
    ]


def read_answer(text: str, kind: str) -> Any:
    """The final answer of ``kind`` in ``text``, or None when there is none."""
    if kind == "number":
        got = extract_answer(text)
        try:
            return float(got) if got is not None else None
        except ValueError:
            return None
    if kind == "date":
        found = re.findall(r"\b\d{4}-\d{2}-\d{2}\b", text)
        return found[-1] if found else None
    if kind == "weekday":
        found = re.findall(r"\b(" + "|".join(WEEKDAYS) + r")\b", text, re.IGNORECASE)
        return found[-1].capitalize() if found else None
    countries = {str(c["country"]) for c in cities().values()}
    named = [c for c in countries if re.search(rf"\b{re.escape(c)}\b", text, re.IGNORECASE)]
    return named[0] if len(named) == 1 else ("several" if named else None)


def _answer_feedback(final: str | None, kind: str, want: Any) -> tuple[bool, Any, str]:
    if final is None:
        return (
            False,
            None,
            (
                "no final answer: the last turn still calls tools; answer without a tool call "
                "once the results are in"
            ),
        )
    got = read_answer(final, kind)
    if got is None:
        return False, None, f"the final answer has no {kind}; end with 'The answer is X.'"
    if got == "several":
        return False, got, "the final answer names several countries; name one"
    ok = (
        math.isclose(got, want, rel_tol=5e-3, abs_tol=0.01)
        if kind == "number"
        else same_value(got, want)
    )
    return ok, got, "" if ok else f"the final answer {got} does not match the tool results"


def grade(task: Task, messages: Sequence[Message]) -> Verdict:
    """The verdict of one trajectory of a ``tools`` task."""
    meta = task.metadata
    expected: list[dict[str, Any]] = meta["calls"]
    used = [False] * len(expected)
    problems: list[str] = []
    bad_turns: list[int] = []
    unmatched: list[ToolCall] = []
    turns = assistant_turns(messages)
    final = None
    for k, i in enumerate(turns):
        parsed = parse_turn(messages[i].get("content", ""), TOOLS)
        final = None if parsed.attempted else messages[i].get("content", "")
        if parsed.errors:
            bad_turns.append(k)
            problems.append(f"turn {k + 1}: {parsed.errors[0]}")
        for call in parsed.calls:
            j = next(
                (
                    j
                    for j, w in enumerate(expected)
                    if not used[j] and w["name"] == call.name and not differences(call, w)
                ),
                None,
            )
            if j is None:
                unmatched.append(call)
                bad_turns.append(k)
            else:
                used[j] = True
    for j, w in enumerate(expected):
        if used[j]:
            continue
        tried = [c for c in unmatched if c.name == w["name"]]
        problems.extend(
            differences(tried[0], w) if tried else [f"did not call {w['name']} to {w['why']}"]
        )
    answer_ok, got, answer_problem = _answer_feedback(final, meta["kind"], meta["answer"])
    if answer_problem:
        problems.append(answer_problem)
    matched = sum(used)
    passed = matched == len(expected) and answer_ok
    details: dict[str, Any] = {
        "loose": passed,
        "by_type": {tag: passed for tag in task.tags},
        "calls_expected": len(expected),
        "calls_matched": matched,
        "answer_correct": answer_ok,
        "extracted": got,
    }
    if not passed and turns:
        final_turn = len(turns) - 1
        details["failed_turn"] = min(bad_turns + [final_turn])
    return Verdict(
        score=(matched + answer_ok) / (len(expected) + 1),
        passed=passed,
        details=details,
        feedback="" if passed else "; ".join(dict.fromkeys(problems)),
    )
