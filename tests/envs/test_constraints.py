"""Every constraint checker on passing, failing and edge cases (empty, unicode, markdown)."""

from __future__ import annotations

import pytest

from evoforge.envs.instructions.constraints import BY_ID, CONSTRAINTS, check, compatible

CASES = {
    # id: (params, passing, failing)
    "no_comma": ({}, "no commas here at all.", "one, two"),
    "lowercase": ({}, "all lower case, ünïcode too", "Not lower"),
    "uppercase": ({}, "ALL CAPS HERE, ÜBER", "ALL CAPS but one"),
    "capital_words": ({"n": 2}, "THIS is VERY loud", "only ONE here"),
    "words_at_least": ({"n": 5}, "one two three four five", "one two three four"),
    "words_at_most": ({"n": 3}, "one two three", "one two three four"),
    "sentences_at_most": ({"n": 2}, "One. Two!", "One. Two. Three."),
    "sentences_at_least": ({"n": 3}, "One. Two? Three!", "One. Two."),
    "paragraphs": ({"n": 2}, "first part\n***\nsecond part", "only one paragraph"),
    "keywords": ({"keywords": ["river", "garden"]}, "A River by the garden.", "a river only"),
    "forbidden_words": ({"words": ["very"]}, "everybody is fine", "it is very fine"),
    "keyword_frequency": ({"keyword": "river", "n": 2}, "river, river", "one river"),
    "letter_frequency": ({"letter": "a", "n": 3}, "banana", "bread"),
    "end_phrase": (
        {"phrase": "Any other questions?"},
        "Done. Any other questions?",
        "Any other questions? Bye.",
    ),
    "start_phrase": ({"phrase": "Well,"}, "Well, here it is.", "So well, here."),
    "quotation": ({}, '"all quoted"', 'not "quoted"'),
    "json_format": ({}, '```json\n{"a": 1}\n```', "{'a': 1}"),
    "bullet_points": ({"n": 2}, "* one\n* two", "* one\n* two\n* three"),
    "highlighted_sections": ({"n": 2}, "*one* and **two**", "*one* only"),
    "title": ({}, "<<My Title>>\ntext", "<<>> no title"),
    "postscript": ({}, "text\nP.S. more", "text only"),
    "placeholders": ({"n": 2}, "at [name] and [place]", "at [name]"),
    "repeat_request": (
        {"request": "Write a poem."},
        "Write a poem. Roses are red.",
        "Roses. Write a poem.",
    ),
    "two_responses": ({}, "first\n******\nsecond", "same\n******\nsame"),
    "sections": ({"n": 2}, "SECTION 1 a\nSECTION 2 b", "SECTION 1 only"),
    "constrained_response": ({}, "My answer is yes.", "yes"),
    "first_word": ({"word": "Today"}, "Today, we go.", "We go today."),
}


def test_every_constraint_has_cases_and_at_least_20_types():
    assert len(CONSTRAINTS) >= 20
    assert set(CASES) == set(BY_ID)


@pytest.mark.parametrize("cid", sorted(CASES))
def test_pass_fail_and_feedback(cid):
    params, good, bad = CASES[cid]
    assert check(cid, params, good)[0], f"{cid} should pass: {good!r}"
    strict, _, feedback = check(cid, params, bad)
    assert not strict, f"{cid} should fail: {bad!r}"
    assert feedback and len(feedback) > 15


@pytest.mark.parametrize("cid", sorted(CASES))
def test_empty_response_never_crashes(cid):
    params = CASES[cid][0]
    strict, loose, feedback = check(cid, params, "")
    if cid in ("no_comma", "forbidden_words"):
        assert strict  # nothing forbidden in nothing
    else:
        assert not strict and feedback


def test_feedback_is_actionable():
    assert (
        check("no_comma", {}, "a, b, c, d")[2] == "3 commas found; the instruction forbids commas"
    )
    assert "at least 5" in check("words_at_least", {"n": 5}, "two words")[2]


def test_loose_accepts_markdown_emphasis_and_first_or_last_line():
    # strict fails, loose passes once markdown * are removed
    assert check("start_phrase", {"phrase": "Well,"}, "**Well,** here") == (
        False,
        True,
        check("start_phrase", {"phrase": "Well,"}, "**Well,** here")[2],
    )
    # a preamble first line
    s, lo, _ = check("lowercase", {}, "Sure! Here it is:\nall lower now")
    assert not s and lo
    # a sign-off last line
    s, lo, _ = check(
        "end_phrase",
        {"phrase": "Thank you for reading."},
        "Body. Thank you for reading.\nBest, Bot",
    )
    assert not s and lo
    # loose still fails when no variant passes
    assert check("no_comma", {}, "a, b\nc, d\ne, f") == (
        False,
        False,
        "3 commas found; the instruction forbids commas",
    )


def test_incompatible_pairs_declared():
    assert not compatible(BY_ID["lowercase"], BY_ID["uppercase"])
    assert not compatible(BY_ID["json_format"], BY_ID["no_comma"])
    assert not compatible(BY_ID["end_phrase"], BY_ID["postscript"])
    assert not compatible(BY_ID["repeat_request"], BY_ID["start_phrase"])
    assert compatible(BY_ID["no_comma"], BY_ID["keywords"])
