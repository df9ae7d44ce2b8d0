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
    """A constraint type: how to draw its parameters, the ways it is phrased, and its check.

    ``phrasings`` are ``str.format`` templates over ``fields(params)``. The first
    ``len(phrasings) - UNSEEN`` are used in every split; the last ``UNSEEN`` appear only in heldout
    tasks, so a held-out pass on them means the instruction was followed, not its wording learned.
    """

    id: str
    slots: frozenset[str]
    draw: Callable[[random.Random, str], dict[str, Any]]
    phrasings: tuple[str, ...]
    check: Callable[[str, dict[str, Any]], Check]
    fields: Callable[[dict[str, Any]], dict[str, Any]] = lambda p: p

    def seen(self) -> tuple[str, ...]:
        """Phrasings of train (and of seen-phrasing heldout) tasks."""
        return self.phrasings[:-UNSEEN]

    def unseen(self) -> tuple[str, ...]:
        """Phrasings that only heldout tasks use."""
        return self.phrasings[-UNSEEN:]

    def describe(self, params: dict[str, Any], phrasing: int = 0) -> str:
        """The instruction text of this constraint, in phrasing number ``phrasing``."""
        return self.phrasings[phrasing].format(**self.fields(params))


UNSEEN = 2
"""Phrasings per constraint type held back for heldout tasks."""


def _c(id: str, slots: str, draw, phrasings: tuple[str, ...], check, fields=None) -> Constraint:
    return Constraint(id, frozenset(slots.split()), draw, phrasings, check, fields or (lambda p: p))


def _quoted_list(key: str):
    def fields(p: dict[str, Any]) -> dict[str, Any]:
        return {key: " and ".join(repr(k) for k in p[key]), "s": "s" if len(p[key]) > 1 else ""}

    return fields


CONSTRAINTS: list[Constraint] = [
    _c(
        "no_comma",
        "commas",
        lambda g, q: {},
        (
            "Do not use any commas in your response.",
            "Your answer must not contain a single comma.",
            "Write the response without using commas.",
            "Avoid the comma character entirely in what you write.",
            "No commas are allowed anywhere in your reply.",
        ),
        checks.no_comma,
    ),
    _c(
        "lowercase",
        "case",
        lambda g, q: {},
        (
            "Your entire response must be in lowercase letters; no capital letters are allowed.",
            "Write everything in lowercase, with no capital letters at all.",
            "Use only lowercase letters in your answer.",
            "Do not use any uppercase letters anywhere in the reply.",
            "Every letter you write has to be a small (lowercase) letter.",
        ),
        checks.lowercase,
    ),
    _c(
        "uppercase",
        "case",
        lambda g, q: {},
        (
            "Your entire response must be in English and in all capital letters.",
            "Write your whole answer in capital letters only.",
            "Respond using only UPPERCASE letters.",
            "Every letter of your reply must be a capital letter.",
            "Do not use any lowercase letters: the entire text should be in caps.",
        ),
        checks.uppercase,
    ),
    _c(
        "capital_words",
        "case",
        lambda g, q: {"n": g.randint(2, 5)},
        (
            "Include at least {n} words written in ALL CAPITAL LETTERS.",
            "Use at least {n} words that are fully capitalized, LIKE THIS.",
            "Your answer needs {n} or more words in all caps.",
            "Write no fewer than {n} words entirely in uppercase.",
            "At least {n} of your words must be spelled in capital letters only.",
        ),
        checks.capital_words,
    ),
    _c(
        "words_at_least",
        "length",
        lambda g, q: {"n": g.choice([50, 80, 100, 150])},
        (
            "Answer with at least {n} words.",
            "Your response should be {n} words long or longer.",
            "Write a minimum of {n} words.",
            "Make sure the reply contains no fewer than {n} words.",
            "The answer must run to {n} words or more.",
        ),
        checks.words_at_least,
    ),
    _c(
        "words_at_most",
        "length",
        lambda g, q: {"n": g.choice([30, 50, 80])},
        (
            "Answer with at most {n} words.",
            "Keep your response to {n} words or fewer.",
            "Use no more than {n} words.",
            "Your reply must not exceed {n} words.",
            "Limit the answer to a maximum of {n} words.",
        ),
        checks.words_at_most,
    ),
    _c(
        "sentences_at_most",
        "length",
        lambda g, q: {"n": g.choice([2, 3, 4, 5])},
        (
            "Your response should contain at most {n} sentences.",
            "Use no more than {n} sentences.",
            "Answer in {n} sentences or fewer.",
            "Keep the reply short: a maximum of {n} sentences.",
            "Do not write more than {n} sentences.",
        ),
        checks.sentences_at_most,
    ),
    _c(
        "sentences_at_least",
        "length",
        lambda g, q: {"n": g.choice([4, 5, 6])},
        (
            "Your response should contain at least {n} sentences.",
            "Write {n} sentences or more.",
            "Use a minimum of {n} sentences.",
            "The reply needs no fewer than {n} sentences.",
            "Make your answer at least {n} sentences long.",
        ),
        checks.sentences_at_least,
    ),
    _c(
        "paragraphs",
        "structure",
        lambda g, q: {"n": g.randint(2, 4)},
        (
            "There should be exactly {n} paragraphs. Paragraphs are separated by the markdown divider ***.",
            "Write exactly {n} paragraphs, with a line containing only *** between paragraphs.",
            "Your answer must have {n} paragraphs, separated from each other by ***.",
            "Split the response into exactly {n} paragraphs and put the divider *** between them.",
            "Use {n} paragraphs in total; separate consecutive paragraphs with ***.",
        ),
        checks.paragraphs,
    ),
    _c(
        "keywords",
        "",
        lambda g, q: {"keywords": g.sample(KEYWORDS, g.randint(1, 2))},
        (
            "Include the keyword{s} {keywords} in the response.",
            "Make sure your answer mentions the word{s} {keywords}.",
            "Use the keyword{s} {keywords} somewhere in your reply.",
            "Your text has to contain the word{s} {keywords}.",
            "Work the word{s} {keywords} into your answer.",
        ),
        checks.keywords,
        _quoted_list("keywords"),
    ),
    _c(
        "forbidden_words",
        "",
        lambda g, q: {"words": g.sample(FORBIDDEN, g.randint(1, 3))},
        (
            "Do not include the word{s} {words} in the response.",
            "Avoid using the word{s} {words}.",
            "Your answer must not contain the word{s} {words}.",
            "Never write the word{s} {words} in your reply.",
            "Leave out the word{s} {words} entirely.",
        ),
        checks.forbidden,
        _quoted_list("words"),
    ),
    _c(
        "keyword_frequency",
        "",
        lambda g, q: {"keyword": g.choice(KEYWORDS), "n": g.randint(2, 4)},
        (
            "In your response, the word '{keyword}' should appear at least {n} times.",
            "Use the word '{keyword}' {n} times or more.",
            "Mention '{keyword}' at least {n} times in your answer.",
            "The word '{keyword}' must occur no fewer than {n} times.",
            "Repeat the word '{keyword}' at least {n} times in the reply.",
        ),
        checks.keyword_freq,
    ),
    _c(
        "letter_frequency",
        "",
        lambda g, q: {"letter": g.choice(LETTERS), "n": g.choice([5, 8, 10, 15])},
        (
            "In your response, the letter '{letter}' should appear at least {n} times.",
            "Use the letter '{letter}' at least {n} times.",
            "The letter '{letter}' must occur {n} times or more in your answer.",
            "Make sure the letter '{letter}' shows up no fewer than {n} times.",
            "Your reply should contain the letter '{letter}' at least {n} times.",
        ),
        checks.letter_freq,
    ),
    _c(
        "end_phrase",
        "end",
        lambda g, q: {"phrase": g.choice(END_PHRASES)},
        (
            'Finish your response with this exact phrase: "{phrase}". No other words should follow it.',
            'End your answer with the exact words "{phrase}" and write nothing after them.',
            'The last words of your reply must be exactly "{phrase}".',
            'Conclude with the phrase "{phrase}", with nothing following it.',
            'Your response has to close with "{phrase}" as its final words.',
        ),
        checks.end_phrase,
    ),
    _c(
        "start_phrase",
        "start",
        lambda g, q: {"phrase": g.choice(START_PHRASES)},
        (
            'Start your response with the exact words "{phrase}"',
            'Begin your answer with "{phrase}"',
            'The very first words of your reply must be "{phrase}"',
            'Open the response with the exact phrase "{phrase}"',
            'Your answer has to start with "{phrase}"',
        ),
        checks.start_phrase,
    ),
    _c(
        "quotation",
        "start end",
        lambda g, q: {},
        (
            "Wrap your entire response with double quotation marks.",
            'Put the whole answer inside double quotes, starting and ending with ".',
            "Enclose your entire reply in double quotation marks.",
            'Your response must begin and end with a double quote character (").',
            "Place the complete answer between a pair of double quotation marks.",
        ),
        checks.quotation,
    ),
    _c(
        "json_format",
        "start end structure commas case length",
        lambda g, q: {},
        (
            "Your entire output should be wrapped in JSON format. You can use markdown ticks such as ```.",
            "Give your whole answer as valid JSON.",
            "Format the complete response as a JSON object.",
            "Reply only with JSON; the entire output must parse as JSON.",
            "Write the answer as a JSON document and nothing else.",
        ),
        checks.json_format,
    ),
    _c(
        "bullet_points",
        "structure",
        lambda g, q: {"n": g.randint(2, 5)},
        (
            "Your answer must contain exactly {n} bullet points. Use markdown bullet points such as:\n* This is point 1.",
            "Use exactly {n} markdown bullet points (lines starting with * ).",
            "Write your answer as exactly {n} bullet points, each starting with *.",
            "Give precisely {n} bullet points, using * at the start of each.",
            "Structure the reply as {n} bullet points exactly; start each one with *.",
        ),
        checks.bullets,
    ),
    _c(
        "highlighted_sections",
        "",
        lambda g, q: {"n": g.randint(1, 3)},
        (
            "Highlight at least {n} sections in your answer with markdown, i.e. *highlighted section*.",
            "Use markdown to highlight {n} or more parts of the answer, like *this part*.",
            "Mark at least {n} sections as highlighted by wrapping them in single asterisks.",
            "Emphasize at least {n} passages with markdown asterisks, e.g. *key idea*.",
            "Include {n} or more highlighted sections written as *text between asterisks*.",
        ),
        checks.highlights,
    ),
    _c(
        "title",
        "start",
        lambda g, q: {},
        (
            "Your answer must contain a title, wrapped in double angular brackets, such as <<poem of joy>>.",
            "Give your response a title inside double angle brackets, like <<my title>>.",
            "Include a title written between << and >>.",
            "Add a title to the answer, wrapped as <<title here>>.",
            "Put a title in double angular brackets (for example <<a day out>>) in your reply.",
        ),
        checks.title,
    ),
    _c(
        "postscript",
        "end",
        lambda g, q: {},
        (
            "At the end of your response, please explicitly add a postscript starting with P.S.",
            "End with a postscript that begins with P.S.",
            "Add a P.S. note at the end of your answer.",
            "Finish the reply with a postscript line starting with P.S.",
            "Close your response with a postscript introduced by P.S.",
        ),
        checks.postscript,
    ),
    _c(
        "placeholders",
        "",
        lambda g, q: {"n": g.randint(1, 3)},
        (
            "The response must contain at least {n} placeholders represented by square brackets, such as [address].",
            "Include at least {n} placeholders in square brackets, like [name].",
            "Use {n} or more placeholders written in square brackets, for example [date].",
            "Your answer needs no fewer than {n} bracketed placeholders such as [city].",
            "Put at least {n} placeholders in your reply, each inside square brackets like [item].",
        ),
        checks.placeholders,
    ),
    _c(
        "repeat_request",
        "start",
        lambda g, q: {"request": q},
        (
            "First repeat the request word for word without change, then give your answer (do not say "
            "anything before repeating the request; the request you need to repeat does not include this sentence).",
            "Begin by copying the request exactly as written (not this sentence), then answer it.",
            "Start your reply with the request repeated word for word, excluding this instruction, and then respond.",
            "Before answering, restate the request verbatim as your first words (leave out this sentence).",
            "Your response must open with an exact copy of the request (without this sentence), followed by your answer.",
        ),
        checks.repeat,
    ),
    _c(
        "two_responses",
        "start end structure",
        lambda g, q: {},
        (
            "Give two different responses. Responses and only responses should be separated by 6 asterisk symbols: ******.",
            "Write two different answers separated by a line of six asterisks (******).",
            "Provide two distinct responses, with ****** between them and nowhere else.",
            "Answer twice, differently each time; separate the two answers with ******.",
            "Produce two separate, different replies divided by six asterisks: ******.",
        ),
        checks.two_responses,
    ),
    _c(
        "sections",
        "structure",
        lambda g, q: {"n": g.randint(2, 4)},
        (
            "Your response must have {n} sections. Mark the beginning of each section with SECTION X, such as: SECTION 1.",
            "Divide the answer into {n} sections, each starting with SECTION followed by its number (SECTION 1, SECTION 2, ...).",
            "Organize your reply into {n} parts labelled SECTION 1, SECTION 2 and so on.",
            "Write {n} sections; begin each one with the marker SECTION X where X is its number.",
            "Split the response into {n} numbered sections headed SECTION 1, SECTION 2, etc.",
        ),
        checks.sections,
    ),
    _c(
        "constrained_response",
        "start end structure length",
        lambda g, q: {},
        (
            "Answer with one of the following options: 'My answer is yes.', 'My answer is no.', 'My answer is maybe.'",
            "Reply using exactly one of these: 'My answer is yes.', 'My answer is no.' or 'My answer is maybe.'",
            "Your answer must be one of the options 'My answer is yes.', 'My answer is no.', 'My answer is maybe.'",
            "Choose one response from: 'My answer is yes.', 'My answer is no.', 'My answer is maybe.'",
            "Respond only with one of 'My answer is yes.', 'My answer is no.' and 'My answer is maybe.'",
        ),
        checks.constrained,
    ),
    _c(
        "first_word",
        "start",
        lambda g, q: {"word": g.choice(["Today", "Yes", "Imagine", "First", "Honestly"])},
        (
            "The first word of your response should be the word '{word}'.",
            "Start your answer with the word '{word}'.",
            "Make '{word}' the very first word of the reply.",
            "Your response must begin with the word '{word}'.",
            "Open your answer with the single word '{word}'.",
        ),
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
