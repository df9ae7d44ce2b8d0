"""The checkers: ``check(response, params) -> (passed, feedback)`` for each constraint type.

They follow IFEval's definitions where it has one; the feedback says what is wrong in words a
refiner can act on.
"""

from __future__ import annotations

import json
import re

from evoforge.envs.instructions.text import (
    bullets as count_bullets,
)
from evoforge.envs.instructions.text import (
    highlights as count_highlights,
)
from evoforge.envs.instructions.text import (
    paragraphs_by_stars,
    plural,
    sentences,
    words,
)

Check = tuple[bool, str]  # (passed, feedback when failed)


def no_comma(r: str, p: dict) -> Check:
    n = r.count(",")
    return n == 0, f"{plural(n, 'comma')} found; the instruction forbids commas"


def lowercase(r: str, p: dict) -> Check:
    upper = [w for w in words(r) if any(c.isupper() for c in w)]
    ok = r == r.lower() and bool(r.strip())
    return ok, (
        f"{len(upper)} words contain capital letters (e.g. '{upper[0]}'); write everything in lowercase"
        if upper
        else "the response is empty; write a lowercase answer"
    )


def uppercase(r: str, p: dict) -> Check:
    lower = [w for w in words(r) if any(c.islower() for c in w)]
    ok = r == r.upper() and bool(r.strip())
    return ok, (
        f"{len(lower)} words contain lowercase letters (e.g. '{lower[0]}'); write everything in capitals"
        if lower
        else "the response is empty; write an answer in capitals"
    )


def capital_words(r: str, p: dict) -> Check:
    n = sum(1 for w in words(r) if w.isupper() and len(w) > 1)
    return n >= p[
        "n"
    ], f"{plural(n, 'all-capital word')} found; use at least {p['n']} words in ALL CAPITALS"


def words_at_least(r: str, p: dict) -> Check:
    n = len(words(r))
    return n >= p["n"], f"the response has {plural(n, 'word')}; it needs at least {p['n']}"


def words_at_most(r: str, p: dict) -> Check:
    n = len(words(r))
    return 0 < n <= p["n"], f"the response has {plural(n, 'word')}; it must have at most {p['n']}"


def sentences_at_most(r: str, p: dict) -> Check:
    n = len(sentences(r))
    return 0 < n <= p[
        "n"
    ], f"the response has {plural(n, 'sentence')}; it must have at most {p['n']}"


def sentences_at_least(r: str, p: dict) -> Check:
    n = len(sentences(r))
    return n >= p["n"], f"the response has {plural(n, 'sentence')}; it needs at least {p['n']}"


def paragraphs(r: str, p: dict) -> Check:
    parts = paragraphs_by_stars(r)
    empty = sum(1 for i, x in enumerate(parts) if not x.strip() and 0 < i < len(parts) - 1)
    n = sum(1 for x in parts if x.strip())
    ok = n == p["n"] and empty == 0
    return ok, (
        f"found {plural(n, 'paragraph')} separated by ***; write exactly {p['n']}, "
        "with a line holding only *** between consecutive paragraphs"
    )


def keywords(r: str, p: dict) -> Check:
    missing = [k for k in p["keywords"] if not re.search(re.escape(k), r, flags=re.IGNORECASE)]
    return not missing, f"missing keyword(s): {', '.join(missing)}; include each of them"


def forbidden(r: str, p: dict) -> Check:
    found = [
        w for w in p["words"] if re.search(r"\b" + re.escape(w) + r"\b", r, flags=re.IGNORECASE)
    ]
    return not found, f"forbidden word(s) used: {', '.join(found)}; remove them"


def keyword_freq(r: str, p: dict) -> Check:
    n = len(re.findall(re.escape(p["keyword"]), r, flags=re.IGNORECASE))
    return n >= p["n"], f"'{p['keyword']}' appears {n} times; use it at least {p['n']} times"


def letter_freq(r: str, p: dict) -> Check:
    n = r.lower().count(p["letter"])
    return n >= p[
        "n"
    ], f"the letter '{p['letter']}' appears {n} times; it must appear at least {p['n']} times"


def end_phrase(r: str, p: dict) -> Check:
    ok = r.strip().strip('"').lower().endswith(p["phrase"].strip().lower())
    return (
        ok,
        f'the response does not end with the exact phrase "{p["phrase"]}"; make it the last words',
    )


def start_phrase(r: str, p: dict) -> Check:
    ok = r.strip().lower().startswith(p["phrase"].strip().lower())
    return ok, f'the response does not start with "{p["phrase"]}"; begin with exactly these words'


def quotation(r: str, p: dict) -> Check:
    s = r.strip()
    ok = len(s) > 1 and s[0] == '"' and s[-1] == '"'
    return (
        ok,
        'the response is not wrapped in double quotation marks; put " at its very start and end',
    )


def json_format(r: str, p: dict) -> Check:
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


def bullets(r: str, p: dict) -> Check:
    n = count_bullets(r)
    return n == p[
        "n"
    ], f"found {plural(n, 'bullet point')}; use exactly {p['n']} lines starting with '* '"


def highlights(r: str, p: dict) -> Check:
    n = count_highlights(r)
    return n >= p[
        "n"
    ], f"found {plural(n, 'highlighted section')}; highlight at least {p['n']} with *stars*"


def title(r: str, p: dict) -> Check:
    ok = any(t.strip() for t in re.findall(r"<<([^\n]+)>>", r))
    return ok, "no title in double angular brackets found; add one such as <<my title>>"


def postscript(r: str, p: dict) -> Check:
    ok = re.search(r"\s*p\.\s?s\..*$", r.lower(), flags=re.MULTILINE) is not None
    return ok, "no postscript found; end with a line starting with P.S."


def placeholders(r: str, p: dict) -> Check:
    n = len(re.findall(r"\[.*?\]", r))
    return n >= p[
        "n"
    ], f"found {plural(n, 'placeholder')} in square brackets; include at least {p['n']} like [name]"


def repeat(r: str, p: dict) -> Check:
    ok = r.strip().lower().startswith(p["request"].strip().lower())
    return ok, "the response does not start by repeating the request word for word; repeat it first"


def two_responses(r: str, p: dict) -> Check:
    parts = [x.strip() for x in r.split("******")]
    ok = len(parts) == 2 and all(parts) and parts[0] != parts[1]
    return ok, (
        f"found {plural(len([x for x in parts if x]), 'response')} separated by ******; "
        "give exactly two different responses separated by ******"
    )


def sections(r: str, p: dict) -> Check:
    n = len(re.split(r"\s?SECTION\s?\d+\s?", r)) - 1
    return n >= p["n"], f"found {plural(n, 'section')} marked SECTION X; write at least {p['n']}"


def constrained(r: str, p: dict) -> Check:
    opts = ("My answer is yes.", "My answer is no.", "My answer is maybe.")
    ok = any(o in r for o in opts)
    return (
        ok,
        "the answer does not contain one of the exact options; use 'My answer is yes.', 'My answer is no.' or 'My answer is maybe.'",
    )


def first_word(r: str, p: dict) -> Check:
    w = words(r)
    ok = bool(w) and w[0].lower() == p["word"].lower()
    return (
        ok,
        f"the first word is '{w[0] if w else ''}'; start the response with the word '{p['word']}'",
    )
