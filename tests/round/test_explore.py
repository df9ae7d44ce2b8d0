"""Guided exploration's data: which tasks are explored, guided pairs and RFT rows, without Ray."""

from evoforge.agents.search import SearchState
from evoforge.envs.base import Task
from evoforge.round.stages.answer_pairs import AnswerPairs
from evoforge.round.stages.critique import search_roots
from evoforge.round.stages.explore import targets
from evoforge.round.stages.pairs import guided_pairs, guided_passes
from evoforge.storage.records import SampleVerdict
from evoforge.storage.store import GuidedSamples

PLAIN = ({"role": "user", "content": "Write in capitals."},)


def task(tid="t"):
    return Task(id=tid, messages=PLAIN, tags=("upper",))


def v(passed, score=None, feedback=""):
    s = score if score is not None else float(passed)
    return SampleVerdict(score=s, passed=passed, loose=passed, feedback=feedback)


def test_targets_are_the_all_failing_tasks_closest_to_passing_first():
    verdicts = {
        "a": [v(False, 0.2), v(False, 0.5)],
        "b": [v(True), v(False)],  # mixed: sampled pairs, not explored
        "c": [v(False, 0.9), v(False, 0.1)],
        "d": [],  # no samples: nothing to start from
    }
    assert targets(verdicts, 10) == [("c", 0), ("a", 1)]
    assert targets(verdicts, 1) == [("c", 0)]
    assert targets(verdicts, 0) == []


def test_a_guided_pass_is_chosen_against_the_closest_plain_failure_with_the_plain_prompt():
    texts = ["hello there", "HELLO thera", "something else entirely"]
    verdicts = [v(False), v(False), v(False)]
    guided = [
        GuidedSamples("t", "feedback", ["nope", "HELLO THERE"], [v(False), v(True)]),
        GuidedSamples("t", "hint", ["HELLO THERE", "HI"], [v(True), v(True)]),
    ]
    pairs = guided_pairs(task(), texts, verdicts, guided, per_task=2)
    assert [p.source for p in pairs] == ["guided", "guided"]
    assert [p.guidance for p in pairs] == ["feedback", "hint"]
    first = pairs[0]
    # the guidance the model saw is nowhere in the pair: the prompt is the plain task
    assert first.prompt == list(PLAIN)
    assert (first.chosen, first.rejected) == ("HELLO THERE", "HELLO thera")
    # the hint's duplicate of the same passing text makes no second pair; "HI" does
    assert pairs[1].chosen == "HI" and pairs[1].rejected != first.rejected
    assert len(guided_pairs(task(), texts, verdicts, guided, per_task=1)) == 1


def test_no_guided_pair_without_a_guided_pass_or_a_plain_failure():
    failing = [GuidedSamples("t", "feedback", ["x"], [v(False)])]
    assert guided_pairs(task(), ["a"], [v(False)], failing, per_task=2) == []
    passing = [GuidedSamples("t", "feedback", ["A"], [v(True)])]
    assert guided_pairs(task(), [], [], passing, per_task=2) == []


def test_guided_passes_become_rft_rows_on_the_plain_prompt_with_the_prefix_kept():
    opening = '<tool_call>{"name": "'
    guided = [
        GuidedSamples("t", "prefix", [opening + 'calc"}', opening + 'calc"}'], [v(True), v(True)]),
        GuidedSamples("t", "hint", ["other"], [v(True)]),
    ]
    assert guided_passes(guided, per_task=5) == [("t", opening + 'calc"}'), ("t", "other")]
    assert guided_passes(guided, per_task=1) == [("t", opening + 'calc"}')]
    texts, passes = {"t": ["plain"]}, guided_passes(guided, per_task=2)
    rows = AnswerPairs({"t": task()}, texts).rft_rows(
        texts, {"t": [v(False)]}, SearchState(), 2, passes
    )
    assert [(r.source, r.completion) for r in rows] == [
        ("guided", opening + 'calc"}'),
        ("guided", "other"),
    ]
    assert all(r.messages == list(PLAIN) for r in rows)


def test_the_tree_search_keeps_only_the_tasks_guidance_did_not_solve():
    samples = {"a": ["x"], "b": ["y"]}
    verdicts = {"a": [v(False, 0.3, "fix a")], "b": [v(False, 0.4, "fix b")]}
    assert [n.task_id for n in search_roots(samples, verdicts, 8)] == ["b", "a"]
    assert [n.task_id for n in search_roots(samples, verdicts, 8, solved={"b"})] == ["a"]
