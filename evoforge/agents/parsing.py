"""Parsers for what the roles write. Robust to small models: never guess a verdict.

An unparseable critique is an abstention (``None``), recorded as such, and left out of the
node value instead of being read as "no".
"""

from __future__ import annotations

import re

_VERDICT = re.compile(r"verdict\W{0,4}\s*(?:is\s*)?[*_\"'`]*\s*(yes|no)\b", re.IGNORECASE)
_BARE = re.compile(r"^[\W_]*(yes|no)[\W_]*$", re.IGNORECASE)


def parse_verdict(text: str) -> str | None:
    """'yes', 'no', or None when the critique has no final verdict.

    Accepts "Verdict: yes", "**Final verdict:** No", "verdict is yes"; the last one wins. A
    critique whose last non-empty line is a bare yes/no also counts.
    """
    found = _VERDICT.findall(text or "")
    if found:
        return found[-1].lower()
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    if lines:
        m = _BARE.match(lines[-1].strip())
        if m:
            return m.group(1).lower()
    return None


def vote_value(votes: list[str | None]) -> float | None:
    """Share of yes among parsed votes; None when every vote abstained."""
    parsed = [v for v in votes if v is not None]
    return sum(v == "yes" for v in parsed) / len(parsed) if parsed else None


_OPEN = re.compile(r"<\s*response\s*>", re.IGNORECASE)
_CLOSE = re.compile(r"<\s*/\s*response\s*>", re.IGNORECASE)
_PREAMBLE = re.compile(
    r"^\s*(?:here(?:'s| is)[^\n]*?(?:response|version|answer)[^\n]*:|"
    r"(?:improved|refined|revised) (?:response|version|answer)\s*:)\s*\n?",
    re.IGNORECASE,
)


def parse_refinement(text: str) -> str:
    """The refined response: the text between <response> markers, robust to a missing marker.

    - both markers: the text between them (the last complete block);
    - only the opening one: everything after it;
    - only the closing one: everything before it;
    - none: the whole text minus a "Here is the improved response:" style preamble.
    """
    text = text or ""
    opens = list(_OPEN.finditer(text))
    closes = list(_CLOSE.finditer(text))
    if opens:
        start = opens[-1].end()
        end = next((c.start() for c in closes if c.start() >= start), len(text))
        if (
            end == len(text) and closes and len(opens) > 1
        ):  # last open unterminated: use a closed block
            prev = [o for o in opens if any(c.start() >= o.end() for c in closes)]
            if prev:
                start = prev[-1].end()
                end = next(c.start() for c in closes if c.start() >= start)
        return text[start:end].strip()
    if closes:
        return text[: closes[0].start()].strip()
    return _PREAMBLE.sub("", text, count=1).strip()


NO_CHANGE = "NO CHANGE"
"""What the refiner of a multi-turn trajectory writes (between the response markers, or alone)
when the turn it was shown needs no change: that branch of the search ends (ToolACE-R's adaptive
stop, where the model decides itself when to stop refining)."""

_NO_CHANGE = re.compile(r"^[\W_]*no[\s_-]*change[\W_]*$", re.IGNORECASE)


def keeps_turn(refinement: str, original: str) -> bool:
    """Whether a parsed refinement says to keep the turn: the NO CHANGE marker (any case, with or
    without punctuation), or the original turn written again unchanged."""
    text = refinement.strip()
    return bool(_NO_CHANGE.match(text)) or text == original.strip()
