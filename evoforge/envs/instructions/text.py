"""Text of the instructions environment: word lists the constraints draw from, and the regex
tokenizers the checkers count with (IFEval uses nltk; these need no downloads at run time)."""

from __future__ import annotations

import re

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
