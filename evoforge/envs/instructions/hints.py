"""Guidance for ``instructions`` tasks: a concrete hint per constraint type and a forced opening.

A hint says HOW to meet a constraint (an example, a first step), in other words than the
constraint's own phrasings; the opening is what a constraint on the start of the answer fixes
(a phrase, a first word, the repeated request, an opening quote or bracket). Guided exploration
(agents/guidance.py) uses both on tasks that plain sampling never passes.
"""

from __future__ import annotations

from typing import Any

HINTS: dict[str, str] = {
    "no_comma": "use full stops or 'and' instead of commas; never type the character ','",
    "lowercase": "type every letter in lowercase, even at the start of a sentence and in names",
    "uppercase": "TYPE EVERY LETTER AS A CAPITAL, LIKE THIS SENTENCE",
    "capital_words": "write at least {n} words in full capitals, e.g. VERY IMPORTANT NOTE",
    "words_at_least": "write several full paragraphs; {n} words is about {sentences} sentences",
    "words_at_most": "write one or two short sentences, well under {n} words, then stop",
    "sentences_at_most": "write {n} short sentences or fewer, then stop",
    "sentences_at_least": "write {n} separate sentences, each ending with a full stop",
    "paragraphs": "write {n} paragraphs with a line holding only *** between each two ({gaps} such lines)",
    "keywords": "use {keywords} in your first sentence",
    "forbidden_words": "do not write {words} anywhere, not even inside other phrases",
    "keyword_frequency": "write the word '{keyword}' in each of {n} different sentences",
    "letter_frequency": "choose many words containing the letter '{letter}' ({n} times in all)",
    "end_phrase": "make the very last line exactly: {phrase}",
    "start_phrase": "make your first words exactly: {phrase}",
    "quotation": 'type " as the very first character and " as the very last one',
    "json_format": 'reply only with a JSON object such as {{"answer": "..."}}, and nothing else',
    "bullet_points": "write exactly {n} lines starting with '* ' and no other list lines",
    "highlighted_sections": "wrap {n} phrases in single asterisks, like *this phrase*",
    "title": "put a title like <<A Short Title>> on the first line",
    "postscript": "end with a last line that starts with P.S.",
    "placeholders": "include {n} words in square brackets, like [name]",
    "repeat_request": "first copy this text exactly: {request} Then answer it",
    "two_responses": "write one answer, then a line holding only ******, then a different answer",
    "sections": "start each of {n} sections with its own line: SECTION 1, SECTION 2, and so on",
    "constrained_response": "reply with exactly one sentence: My answer is yes. (or no., or maybe.)",
    "first_word": "make '{word}' the first word, e.g. '{word} ...'",
}
"""A hint per constraint type, as ``str.format`` templates over the constraint's parameters."""


def _fields(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    f = dict(params)
    if kind in ("keywords", "forbidden_words"):
        key = "keywords" if kind == "keywords" else "words"
        f[key] = " and ".join(repr(w) for w in params[key])
    if kind == "words_at_least":
        f["sentences"] = max(1, params["n"] // 15)
    if kind == "paragraphs":
        f["gaps"] = params["n"] - 1
    return f


def hint(constraints: list[dict[str, Any]]) -> str:
    """One hint for a task's constraints ({type, params} each), joined into a sentence."""
    parts = [HINTS[c["type"]].format(**_fields(c["type"], c["params"])) for c in constraints]
    text = "; ".join(p for p in parts if p)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".") if text else ""


def response_prefix(constraints: list[dict[str, Any]]) -> str:
    """The opening a constraint on the start of the answer fixes ('' when none does). At most one
    such constraint is drawn per task (they share the ``start`` slot); a list or sections
    constraint gives its first marker when nothing else fixes the start."""
    by_type = {c["type"]: c["params"] for c in constraints}
    case = str.lower if "lowercase" in by_type else str.upper if "uppercase" in by_type else None
    for kind, opening in (
        ("start_phrase", lambda p: p["phrase"]),
        ("first_word", lambda p: p["word"]),
        ("repeat_request", lambda p: p["request"]),
    ):
        if kind in by_type:
            text = opening(by_type[kind])
            return case(text) if case else text  # these checks ignore case; the case ones do not
    fixed = {
        "quotation": '"',
        "title": "<<",
        "json_format": '{"',
        "constrained_response": "My answer is",
    }
    for kind, text in fixed.items():
        if kind in by_type:
            return text
    if "sections" in by_type and "lowercase" not in by_type:
        return "SECTION 1\n"
    if "bullet_points" in by_type:
        return "* "
    return ""
