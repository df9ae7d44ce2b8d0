import pytest

from evoforge.agents.parsing import parse_refinement, parse_verdict, vote_value


@pytest.mark.parametrize(
    "text,want",
    [
        ("1. lowercase: met\nVerdict: yes", "yes"),
        ("requirements...\n**Final verdict:** No", "no"),
        ("The verdict is yes.", "yes"),
        ("Verdict: no\n...on reflection\nVerdict: yes", "yes"),
        ("everything checks out\n\nYes", "yes"),
        ("VERDICT - NO", "no"),
        ("I think it is fine.", None),
        ("", None),
        ("Verdict: maybe", None),
        ("yesterday was fine", None),
    ],
)
def test_parse_verdict(text, want):
    assert parse_verdict(text) == want


def test_vote_value_excludes_abstentions():
    assert vote_value(["yes", "no", None, "yes"]) == pytest.approx(2 / 3)
    assert vote_value([None, None]) is None
    assert vote_value([]) is None


@pytest.mark.parametrize(
    "text,want",
    [
        ("<response>fixed answer</response>", "fixed answer"),
        ("Sure!\n<response>\nfixed answer\n</response>\nHope this helps", "fixed answer"),
        ("<response>fixed answer with no end", "fixed answer with no end"),
        ("fixed answer</response> trailing", "fixed answer"),
        ("Here is the improved response:\nfixed answer", "fixed answer"),
        ("just the answer", "just the answer"),
        ("<RESPONSE>upper</RESPONSE>", "upper"),
        ("<response>first</response> <response>second</response>", "second"),
        ("", ""),
    ],
)
def test_parse_refinement(text, want):
    assert parse_refinement(text) == want
