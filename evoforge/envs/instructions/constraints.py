"""Verifiable constraints in the manner of IFEval, each with a checker and actionable feedback.

Checkers follow IFEval's definitions where it has one (word and sentence counts use our own
regex tokenizers instead of nltk: no downloads at run time). Each constraint names the parts of a
response it controls (``slots``); two constraints whose slots meet are never drawn together.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evoforge.envs.instructions import checks
from evoforge.envs.instructions.checks import Check
from evoforge.envs.instructions.text import (
    END_PHRASES,
    FORBIDDEN,
    KEYWORDS,
    LETTERS,
    START_PHRASES,
)


@dataclass(frozen=True)
class Constraint:
    """A constraint type: how to draw its parameters, describe it, and check a response."""

    id: str
    slots: frozenset[str]
    draw: Callable[[random.Random, str], dict[str, Any]]
    describe: Callable[[dict[str, Any]], str]
    check: Callable[[str, dict[str, Any]], Check]


def _c(id: str, slots: str, draw, describe, check) -> Constraint:
    return Constraint(id, frozenset(slots.split()), draw, describe, check)


CONSTRAINTS: list[Constraint] = [
    _c(
        "no_comma",
        "commas",
        lambda g, q: {},
        lambda p: "Do not use any commas in your response.",
        checks.no_comma,
    ),
    _c(
        "lowercase",
        "case",
        lambda g, q: {},
        lambda p: (
            "Your entire response must be in lowercase letters; no capital letters are allowed."
        ),
        checks.lowercase,
    ),
    _c(
        "uppercase",
        "case",
        lambda g, q: {},
        lambda p: "Your entire response must be in English and in all capital letters.",
        checks.uppercase,
    ),
    _c(
        "capital_words",
        "case",
        lambda g, q: {"n": g.randint(2, 5)},
        lambda p: f"Include at least {p['n']} words written in ALL CAPITAL LETTERS.",
        checks.capital_words,
    ),
    _c(
        "words_at_least",
        "length",
        lambda g, q: {"n": g.choice([50, 80, 100, 150])},
        lambda p: f"Answer with at least {p['n']} words.",
        checks.words_at_least,
    ),
    _c(
        "words_at_most",
        "length",
        lambda g, q: {"n": g.choice([30, 50, 80])},
        lambda p: f"Answer with at most {p['n']} words.",
        checks.words_at_most,
    ),
    _c(
        "sentences_at_most",
        "length",
        lambda g, q: {"n": g.choice([2, 3, 4, 5])},
        lambda p: f"Your response should contain at most {p['n']} sentences.",
        checks.sentences_at_most,
    ),
    _c(
        "sentences_at_least",
        "length",
        lambda g, q: {"n": g.choice([4, 5, 6])},
        lambda p: f"Your response should contain at least {p['n']} sentences.",
        checks.sentences_at_least,
    ),
    _c(
        "paragraphs",
        "structure",
        lambda g, q: {"n": g.randint(2, 4)},
        lambda p: (
            f"There should be exactly {p['n']} paragraphs. Paragraphs are separated by the markdown divider ***."
        ),
        checks.paragraphs,
    ),
    _c(
        "keywords",
        "",
        lambda g, q: {"keywords": g.sample(KEYWORDS, g.randint(1, 2))},
        lambda p: (
            "Include the keyword"
            + ("s " if len(p["keywords"]) > 1 else " ")
            + " and ".join(repr(k) for k in p["keywords"])
            + " in the response."
        ),
        checks.keywords,
    ),
    _c(
        "forbidden_words",
        "",
        lambda g, q: {"words": g.sample(FORBIDDEN, g.randint(1, 3))},
        lambda p: (
            f"Do not include the words {', '.join(repr(w) for w in p['words'])} in the response."
        ),
        checks.forbidden,
    ),
    _c(
        "keyword_frequency",
        "",
        lambda g, q: {"keyword": g.choice(KEYWORDS), "n": g.randint(2, 4)},
        lambda p: (
            f"In your response, the word '{p['keyword']}' should appear at least {p['n']} times."
        ),
        checks.keyword_freq,
    ),
    _c(
        "letter_frequency",
        "",
        lambda g, q: {"letter": g.choice(LETTERS), "n": g.choice([5, 8, 10, 15])},
        lambda p: (
            f"In your response, the letter '{p['letter']}' should appear at least {p['n']} times."
        ),
        checks.letter_freq,
    ),
    _c(
        "end_phrase",
        "end",
        lambda g, q: {"phrase": g.choice(END_PHRASES)},
        lambda p: (
            f'Finish your response with this exact phrase: "{p["phrase"]}". No other words should follow it.'
        ),
        checks.end_phrase,
    ),
    _c(
        "start_phrase",
        "start",
        lambda g, q: {"phrase": g.choice(START_PHRASES)},
        lambda p: f'Start your response with the exact words "{p["phrase"]}"',
        checks.start_phrase,
    ),
    _c(
        "quotation",
        "start end",
        lambda g, q: {},
        lambda p: "Wrap your entire response with double quotation marks.",
        checks.quotation,
    ),
    _c(
        "json_format",
        "start end structure commas case length",
        lambda g, q: {},
        lambda p: (
            "Your entire output should be wrapped in JSON format. You can use markdown ticks such as ```."
        ),
        checks.json_format,
    ),
    _c(
        "bullet_points",
        "structure",
        lambda g, q: {"n": g.randint(2, 5)},
        lambda p: (
            f"Your answer must contain exactly {p['n']} bullet points. Use markdown bullet points such as:\n* This is point 1."
        ),
        checks.bullets,
    ),
    _c(
        "highlighted_sections",
        "",
        lambda g, q: {"n": g.randint(1, 3)},
        lambda p: (
            f"Highlight at least {p['n']} sections in your answer with markdown, i.e. *highlighted section*."
        ),
        checks.highlights,
    ),
    _c(
        "title",
        "start",
        lambda g, q: {},
        lambda p: (
            "Your answer must contain a title, wrapped in double angular brackets, such as <<poem of joy>>."
        ),
        checks.title,
    ),
    _c(
        "postscript",
        "end",
        lambda g, q: {},
        lambda p: (
            "At the end of your response, please explicitly add a postscript starting with P.S."
        ),
        checks.postscript,
    ),
    _c(
        "placeholders",
        "",
        lambda g, q: {"n": g.randint(1, 3)},
        lambda p: (
            f"The response must contain at least {p['n']} placeholders represented by square brackets, such as [address]."
        ),
        checks.placeholders,
    ),
    _c(
        "repeat_request",
        "start",
        lambda g, q: {"request": q},
        lambda p: (
            "First repeat the request word for word without change, then give your answer (do not say "
            "anything before repeating the request; the request you need to repeat does not include this sentence)."
        ),
        checks.repeat,
    ),
    _c(
        "two_responses",
        "start end structure",
        lambda g, q: {},
        lambda p: (
            "Give two different responses. Responses and only responses should be separated by 6 asterisk symbols: ******."
        ),
        checks.two_responses,
    ),
    _c(
        "sections",
        "structure",
        lambda g, q: {"n": g.randint(2, 4)},
        lambda p: (
            f"Your response must have {p['n']} sections. Mark the beginning of each section with SECTION X, such as: SECTION 1."
        ),
        checks.sections,
    ),
    _c(
        "constrained_response",
        "start end structure length",
        lambda g, q: {},
        lambda p: (
            "Answer with one of the following options: 'My answer is yes.', 'My answer is no.', 'My answer is maybe.'"
        ),
        checks.constrained,
    ),
    _c(
        "first_word",
        "start",
        lambda g, q: {"word": g.choice(["Today", "Yes", "Imagine", "First", "Honestly"])},
        lambda p: f"The first word of your response should be the word '{p['word']}'.",
        checks.first_word,
    ),
]
BY_ID = {c.id: c for c in CONSTRAINTS}


def compatible(a: Constraint, b: Constraint) -> bool:
    """Two constraints may be drawn together when they control different parts of a response."""
    return a.id != b.id and not (a.slots & b.slots)


def loose_variants(response: str) -> list[str]:
    """IFEval's loose rule: also accept the response without markdown emphasis, or without its
    first or last line (where models put a preamble or a sign-off)."""
    lines = response.split("\n")
    no_first = "\n".join(lines[1:]).strip()
    no_last = "\n".join(lines[:-1]).strip()
    no_both = "\n".join(lines[1:-1]).strip()
    base = [response, no_first, no_last, no_both]
    return base + [v.replace("*", "") for v in base]


def check(constraint_id: str, params: dict[str, Any], response: str) -> tuple[bool, bool, str]:
    """(strict, loose, feedback) for one constraint."""
    c = BY_ID[constraint_id]
    strict, feedback = c.check(response, params)
    loose = strict or any(c.check(v, params)[0] for v in loose_variants(response) if v.strip())
    return strict, loose, "" if strict else feedback
