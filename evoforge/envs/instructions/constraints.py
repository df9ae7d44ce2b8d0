"""Verifiable constraints in the manner of IFEval, each with a checker and actionable feedback.

Checkers follow IFEval's definitions where it has one (word and sentence counts use our own
regex tokenizers instead of nltk: no downloads at run time). Each constraint names the parts of a
response it controls (``slots``); two constraints whose slots meet are never drawn together.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Check = tuple[bool, str]  # (passed, feedback when failed)

KEYWORDS = [
    "river",
    "garden",
    "future",
    "signal",
    "balance",
    "memory",
    "window",
    "engine",
    "harvest",
    "journey",
    "silver",
    "network",
    "kitchen",
    "planet",
    "pattern",
    "anchor",
    "crystal",
    "ladder",
    "compass",
    "lantern",
    "orchard",
    "puzzle",
    "thunder",
    "velvet",
    "whisper",
]
FORBIDDEN = [
    "very",
    "really",
    "thing",
    "good",
    "bad",
    "nice",
    "just",
    "actually",
    "basically",
    "stuff",
    "great",
    "amazing",
    "however",
    "important",
    "many",
]
END_PHRASES = [
    "Is there anything else I can help with?",
    "Let me know if you have additional questions.",
    "That is all for now.",
    "Thank you for reading.",
    "Any other questions?",
]
START_PHRASES = ["Here is my answer:", "Well,", "To begin,", "In short,", "Dear reader,"]
LETTERS = list("aeiourstnl")


def words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+(?:['’][^\W_]+)*", text)


def sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+|\n+", text.strip())
    return [p for p in parts if words(p)]


def paragraphs_by_stars(text: str) -> list[str]:
    return re.split(r"\s?\*\*\*\s?", text)


def bullets(text: str) -> int:
    star = re.findall(r"^\s*\*[^\*].*$", text, flags=re.MULTILINE)
    dash = re.findall(r"^\s*-.*$", text, flags=re.MULTILINE)
    return len(star) + len(dash)


def highlights(text: str) -> int:
    single = [h for h in re.findall(r"\*[^\n\*]*\*", text) if h.strip("*").strip()]
    double = [
        h
        for h in re.findall(r"\*\*[^\n\*]*\*\*", text)
        if h.removeprefix("**").removesuffix("**").strip()
    ]
    return len(single) + len(double)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


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


def _no_comma(r: str, p: dict) -> Check:
    n = r.count(",")
    return n == 0, f"{plural(n, 'comma')} found; the instruction forbids commas"


def _lowercase(r: str, p: dict) -> Check:
    upper = [w for w in words(r) if any(c.isupper() for c in w)]
    ok = r == r.lower() and bool(r.strip())
    return ok, (
        f"{len(upper)} words contain capital letters (e.g. '{upper[0]}'); write everything in lowercase"
        if upper
        else "the response is empty; write a lowercase answer"
    )


def _uppercase(r: str, p: dict) -> Check:
    lower = [w for w in words(r) if any(c.islower() for c in w)]
    ok = r == r.upper() and bool(r.strip())
    return ok, (
        f"{len(lower)} words contain lowercase letters (e.g. '{lower[0]}'); write everything in capitals"
        if lower
        else "the response is empty; write an answer in capitals"
    )


def _capital_words(r: str, p: dict) -> Check:
    n = sum(1 for w in words(r) if w.isupper() and len(w) > 1)
    return n >= p[
        "n"
    ], f"{plural(n, 'all-capital word')} found; use at least {p['n']} words in ALL CAPITALS"


def _words_at_least(r: str, p: dict) -> Check:
    n = len(words(r))
    return n >= p["n"], f"the response has {plural(n, 'word')}; it needs at least {p['n']}"


def _words_at_most(r: str, p: dict) -> Check:
    n = len(words(r))
    return 0 < n <= p["n"], f"the response has {plural(n, 'word')}; it must have at most {p['n']}"


def _sentences_at_most(r: str, p: dict) -> Check:
    n = len(sentences(r))
    return 0 < n <= p[
        "n"
    ], f"the response has {plural(n, 'sentence')}; it must have at most {p['n']}"


def _sentences_at_least(r: str, p: dict) -> Check:
    n = len(sentences(r))
    return n >= p["n"], f"the response has {plural(n, 'sentence')}; it needs at least {p['n']}"


def _paragraphs(r: str, p: dict) -> Check:
    parts = paragraphs_by_stars(r)
    empty = sum(1 for i, x in enumerate(parts) if not x.strip() and 0 < i < len(parts) - 1)
    n = sum(1 for x in parts if x.strip())
    ok = n == p["n"] and empty == 0
    return ok, (
        f"found {plural(n, 'paragraph')} separated by ***; write exactly {p['n']}, "
        "with a line holding only *** between consecutive paragraphs"
    )


def _keywords(r: str, p: dict) -> Check:
    missing = [k for k in p["keywords"] if not re.search(re.escape(k), r, flags=re.IGNORECASE)]
    return not missing, f"missing keyword(s): {', '.join(missing)}; include each of them"


def _forbidden(r: str, p: dict) -> Check:
    found = [
        w for w in p["words"] if re.search(r"\b" + re.escape(w) + r"\b", r, flags=re.IGNORECASE)
    ]
    return not found, f"forbidden word(s) used: {', '.join(found)}; remove them"


def _keyword_freq(r: str, p: dict) -> Check:
    n = len(re.findall(re.escape(p["keyword"]), r, flags=re.IGNORECASE))
    return n >= p["n"], f"'{p['keyword']}' appears {n} times; use it at least {p['n']} times"


def _letter_freq(r: str, p: dict) -> Check:
    n = r.lower().count(p["letter"])
    return n >= p[
        "n"
    ], f"the letter '{p['letter']}' appears {n} times; it must appear at least {p['n']} times"


def _end_phrase(r: str, p: dict) -> Check:
    ok = r.strip().strip('"').lower().endswith(p["phrase"].strip().lower())
    return (
        ok,
        f'the response does not end with the exact phrase "{p["phrase"]}"; make it the last words',
    )


def _start_phrase(r: str, p: dict) -> Check:
    ok = r.strip().lower().startswith(p["phrase"].strip().lower())
    return ok, f'the response does not start with "{p["phrase"]}"; begin with exactly these words'


def _quotation(r: str, p: dict) -> Check:
    s = r.strip()
    ok = len(s) > 1 and s[0] == '"' and s[-1] == '"'
    return (
        ok,
        'the response is not wrapped in double quotation marks; put " at its very start and end',
    )


def _json(r: str, p: dict) -> Check:
    s = r.strip()
    s = re.sub(r"^```(?:json|Json|JSON)?\s*", "", s)
    s = re.sub(r"\s*```$", "", s).strip()
    try:
        json.loads(s)
        return True, ""
    except ValueError as e:
        return (
            False,
            f"the response is not valid JSON ({e.msg} at position {e.pos}); output only a JSON value",
        )


def _bullets(r: str, p: dict) -> Check:
    n = bullets(r)
    return n == p[
        "n"
    ], f"found {plural(n, 'bullet point')}; use exactly {p['n']} lines starting with '* '"


def _highlights(r: str, p: dict) -> Check:
    n = highlights(r)
    return n >= p[
        "n"
    ], f"found {plural(n, 'highlighted section')}; highlight at least {p['n']} with *stars*"


def _title(r: str, p: dict) -> Check:
    ok = any(t.strip() for t in re.findall(r"<<([^\n]+)>>", r))
    return ok, "no title in double angular brackets found; add one such as <<my title>>"


def _postscript(r: str, p: dict) -> Check:
    ok = re.search(r"\s*p\.\s?s\..*$", r.lower(), flags=re.MULTILINE) is not None
    return ok, "no postscript found; end with a line starting with P.S."


def _placeholders(r: str, p: dict) -> Check:
    n = len(re.findall(r"\[.*?\]", r))
    return n >= p[
        "n"
    ], f"found {plural(n, 'placeholder')} in square brackets; include at least {p['n']} like [name]"


def _repeat(r: str, p: dict) -> Check:
    ok = r.strip().lower().startswith(p["request"].strip().lower())
    return ok, "the response does not start by repeating the request word for word; repeat it first"


def _two_responses(r: str, p: dict) -> Check:
    parts = [x.strip() for x in r.split("******")]
    ok = len(parts) == 2 and all(parts) and parts[0] != parts[1]
    return ok, (
        f"found {plural(len([x for x in parts if x]), 'response')} separated by ******; "
        "give exactly two different responses separated by ******"
    )


def _sections(r: str, p: dict) -> Check:
    n = len(re.split(r"\s?SECTION\s?\d+\s?", r)) - 1
    return n >= p["n"], f"found {plural(n, 'section')} marked SECTION X; write at least {p['n']}"


def _constrained(r: str, p: dict) -> Check:
    opts = ("My answer is yes.", "My answer is no.", "My answer is maybe.")
    ok = any(o in r for o in opts)
    return (
        ok,
        "the answer does not contain one of the exact options; use 'My answer is yes.', 'My answer is no.' or 'My answer is maybe.'",
    )


def _first_word(r: str, p: dict) -> Check:
    w = words(r)
    ok = bool(w) and w[0].lower() == p["word"].lower()
    return (
        ok,
        f"the first word is '{w[0] if w else ''}'; start the response with the word '{p['word']}'",
    )


CONSTRAINTS: list[Constraint] = [
    _c(
        "no_comma",
        "commas",
        lambda g, q: {},
        lambda p: "Do not use any commas in your response.",
        _no_comma,
    ),
    _c(
        "lowercase",
        "case",
        lambda g, q: {},
        lambda p: (
            "Your entire response must be in lowercase letters; no capital letters are allowed."
        ),
        _lowercase,
    ),
    _c(
        "uppercase",
        "case",
        lambda g, q: {},
        lambda p: "Your entire response must be in English and in all capital letters.",
        _uppercase,
    ),
    _c(
        "capital_words",
        "case",
        lambda g, q: {"n": g.randint(2, 5)},
        lambda p: f"Include at least {p['n']} words written in ALL CAPITAL LETTERS.",
        _capital_words,
    ),
    _c(
        "words_at_least",
        "length",
        lambda g, q: {"n": g.choice([50, 80, 100, 150])},
        lambda p: f"Answer with at least {p['n']} words.",
        _words_at_least,
    ),
    _c(
        "words_at_most",
        "length",
        lambda g, q: {"n": g.choice([30, 50, 80])},
        lambda p: f"Answer with at most {p['n']} words.",
        _words_at_most,
    ),
    _c(
        "sentences_at_most",
        "length",
        lambda g, q: {"n": g.choice([2, 3, 4, 5])},
        lambda p: f"Your response should contain at most {p['n']} sentences.",
        _sentences_at_most,
    ),
    _c(
        "sentences_at_least",
        "length",
        lambda g, q: {"n": g.choice([4, 5, 6])},
        lambda p: f"Your response should contain at least {p['n']} sentences.",
        _sentences_at_least,
    ),
    _c(
        "paragraphs",
        "structure",
        lambda g, q: {"n": g.randint(2, 4)},
        lambda p: (
            f"There should be exactly {p['n']} paragraphs. Paragraphs are separated by the markdown divider ***."
        ),
        _paragraphs,
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
        _keywords,
    ),
    _c(
        "forbidden_words",
        "",
        lambda g, q: {"words": g.sample(FORBIDDEN, g.randint(1, 3))},
        lambda p: (
            f"Do not include the words {', '.join(repr(w) for w in p['words'])} in the response."
        ),
        _forbidden,
    ),
    _c(
        "keyword_frequency",
        "",
        lambda g, q: {"keyword": g.choice(KEYWORDS), "n": g.randint(2, 4)},
        lambda p: (
            f"In your response, the word '{p['keyword']}' should appear at least {p['n']} times."
        ),
        _keyword_freq,
    ),
    _c(
        "letter_frequency",
        "",
        lambda g, q: {"letter": g.choice(LETTERS), "n": g.choice([5, 8, 10, 15])},
        lambda p: (
            f"In your response, the letter '{p['letter']}' should appear at least {p['n']} times."
        ),
        _letter_freq,
    ),
    _c(
        "end_phrase",
        "end",
        lambda g, q: {"phrase": g.choice(END_PHRASES)},
        lambda p: (
            f'Finish your response with this exact phrase: "{p["phrase"]}". No other words should follow it.'
        ),
        _end_phrase,
    ),
    _c(
        "start_phrase",
        "start",
        lambda g, q: {"phrase": g.choice(START_PHRASES)},
        lambda p: f'Start your response with the exact words "{p["phrase"]}"',
        _start_phrase,
    ),
    _c(
        "quotation",
        "start end",
        lambda g, q: {},
        lambda p: "Wrap your entire response with double quotation marks.",
        _quotation,
    ),
    _c(
        "json_format",
        "start end structure commas case length",
        lambda g, q: {},
        lambda p: (
            "Your entire output should be wrapped in JSON format. You can use markdown ticks such as ```."
        ),
        _json,
    ),
    _c(
        "bullet_points",
        "structure",
        lambda g, q: {"n": g.randint(2, 5)},
        lambda p: (
            f"Your answer must contain exactly {p['n']} bullet points. Use markdown bullet points such as:\n* This is point 1."
        ),
        _bullets,
    ),
    _c(
        "highlighted_sections",
        "",
        lambda g, q: {"n": g.randint(1, 3)},
        lambda p: (
            f"Highlight at least {p['n']} sections in your answer with markdown, i.e. *highlighted section*."
        ),
        _highlights,
    ),
    _c(
        "title",
        "start",
        lambda g, q: {},
        lambda p: (
            "Your answer must contain a title, wrapped in double angular brackets, such as <<poem of joy>>."
        ),
        _title,
    ),
    _c(
        "postscript",
        "end",
        lambda g, q: {},
        lambda p: (
            "At the end of your response, please explicitly add a postscript starting with P.S."
        ),
        _postscript,
    ),
    _c(
        "placeholders",
        "",
        lambda g, q: {"n": g.randint(1, 3)},
        lambda p: (
            f"The response must contain at least {p['n']} placeholders represented by square brackets, such as [address]."
        ),
        _placeholders,
    ),
    _c(
        "repeat_request",
        "start",
        lambda g, q: {"request": q},
        lambda p: (
            "First repeat the request word for word without change, then give your answer (do not say "
            "anything before repeating the request; the request you need to repeat does not include this sentence)."
        ),
        _repeat,
    ),
    _c(
        "two_responses",
        "start end structure",
        lambda g, q: {},
        lambda p: (
            "Give two different responses. Responses and only responses should be separated by 6 asterisk symbols: ******."
        ),
        _two_responses,
    ),
    _c(
        "sections",
        "structure",
        lambda g, q: {"n": g.randint(2, 4)},
        lambda p: (
            f"Your response must have {p['n']} sections. Mark the beginning of each section with SECTION X, such as: SECTION 1."
        ),
        _sections,
    ),
    _c(
        "constrained_response",
        "start end structure length",
        lambda g, q: {},
        lambda p: (
            "Answer with one of the following options: 'My answer is yes.', 'My answer is no.', 'My answer is maybe.'"
        ),
        _constrained,
    ),
    _c(
        "first_word",
        "start",
        lambda g, q: {"word": g.choice(["Today", "Yes", "Imagine", "First", "Honestly"])},
        lambda p: f"The first word of your response should be the word '{p['word']}'.",
        _first_word,
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
