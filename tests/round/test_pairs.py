"""Pair selection and RFT rows, without Ray."""

from evoforge.agents.search import Node, SearchState, Tree
from evoforge.envs.base import Task
from evoforge.round.stages.answer_pairs import AnswerPairs
from evoforge.round.stages.pairs import (
    edit_distance,
    filter_pairs,
    partial_pairs,
    refined_pairs,
    sampled_pairs,
)
from evoforge.storage.records import SampleVerdict
from tests.helpers.records import sampled_pair


def task(tags=("a",)):
    return Task(id="t", messages=({"role": "user", "content": "q"},), tags=tags)


def v(passed, score=None):
    s = score if score is not None else float(passed)
    return SampleVerdict(score=s, passed=passed, loose=passed, feedback="")


def test_edit_distance_words():
    assert edit_distance("a b c", "a b c") == 0
    assert edit_distance("a b c", "a x c") == 1
    assert edit_distance("", "a b") == 2


def test_sampled_pair_rejects_the_closest_failing_sample():
    texts = [
        "the cat sat on the mat",  # pass
        "completely different words here now",  # fail, far
        "the cat sat on a mat",  # fail, one word away
        "the cat sat on the mat",  # pass, duplicate text
    ]
    verdicts = [v(True), v(False), v(False), v(True)]
    pairs = sampled_pairs(task(), texts, verdicts, per_task=2)
    assert len(pairs) == 1  # the duplicate passing text makes no second pair
    p = pairs[0]
    assert (p.chosen, p.rejected, p.source) == (texts[0], texts[2], "sampled")
    assert p.edit_distance == 1 and p.chosen_score == 1.0 and p.rejected_score == 0.0


def test_sampled_pairs_cap_and_distinct_rejections():
    texts = ["p one", "p two", "p three", "f one", "f two"]
    verdicts = [v(True)] * 3 + [v(False)] * 2
    pairs = sampled_pairs(task(), texts, verdicts, per_task=3)
    assert len(pairs) == 2  # only two failing samples to reject
    assert len({p.rejected for p in pairs}) == 2
    assert len(sampled_pairs(task(), texts, verdicts, per_task=1)) == 1
    assert sampled_pairs(task(), texts[:3], verdicts[:3], per_task=3) == []  # all pass
    assert sampled_pairs(task(), texts[3:], verdicts[3:], per_task=3) == []  # none pass


def test_partial_credit_pairs_only_when_nothing_passes_a_multi_check_task():
    texts = ["best answer here", "mid answer here", "worst answer entirely", "best answer there"]
    verdicts = [v(False, 0.67), v(False, 0.33), v(False, 0.0), v(False, 0.67)]
    two = task(("a", "b", "c"))
    pairs = partial_pairs(two, texts, verdicts, gap=0.5, per_task=2)
    assert pairs and all(p.source == "partial" for p in pairs)
    assert all(p.chosen_score - p.rejected_score >= 0.5 for p in pairs)
    assert pairs[0].chosen == texts[0] and pairs[0].rejected == texts[2]
    assert partial_pairs(two, texts, verdicts, gap=0.0, per_task=2) == []  # off
    assert partial_pairs(task(("a",)), texts, verdicts, gap=0.5, per_task=2) == []  # one check
    passing = [v(True, 1.0)] + verdicts[1:]
    assert partial_pairs(two, texts, passing, gap=0.5, per_task=2) == []  # a sample passes


def _search(accepted_passes: bool) -> SearchState:
    s = SearchState()
    root = Node(id="t#0", task_id="t", parent=None, depth=0, response="orig")
    root.verifier_passed, root.verifier_score = False, 0.0
    child = Node(id="t#0.1", task_id="t", parent="t#0", depth=1, response="fixed")
    child.verifier_passed, child.verifier_score = accepted_passes, float(accepted_passes)
    s.nodes = {root.id: root, child.id: child}
    s.trees = {"t": Tree(task_id="t", root="t#0", nodes=["t#0", "t#0.1"], accepted="t#0.1")}
    return s


def test_refined_pairs_need_the_verifier():
    pairs, dropped = refined_pairs({"t": task()}, _search(True), require_verifier=True)
    assert [(p.chosen, p.rejected, p.source) for p in pairs] == [("fixed", "orig", "refined")]
    pairs, dropped = refined_pairs({"t": task()}, _search(False), require_verifier=True)
    assert pairs == [] and dropped == {"chosen_fails_verifier": 1}


def test_filters():
    pair = sampled_pair  # chosen, rejected
    pairs = [pair("same", "same"), pair("x" * 100, "y"), pair("a b", "a c"), pair("a b", "a c")]
    kept, dropped = filter_pairs(pairs, max_length_ratio=3.0)
    assert len(kept) == 1 and dropped == {"identical": 1, "length_ratio": 1, "duplicate": 1}


def test_rft_rows_are_distinct_passing_samples_and_verified_refinements():
    texts = {"t": ["ok one", "ok one", "bad", "ok two", "ok three"]}
    rows = AnswerPairs({"t": task()}, texts).rft_rows(
        texts, {"t": [v(True), v(True), v(False), v(True), v(True)]}, _search(True), per_task=2
    )
    assert [(r.source, r.completion) for r in rows] == [
        ("sampled", "ok one"),
        ("sampled", "ok two"),
        ("refined", "fixed"),
    ]


def test_refiner_data_keeps_agreeing_calibration_judgements():
    from evoforge.agents.roles import Roles
    from evoforge.agents.serving.types import Sampling
    from evoforge.round.stages.refiner_rows import refiner_data

    s = Sampling(temperature=0.0, max_tokens=8)
    roles = Roles(
        actor=None,
        critic=None,
        refiner=None,
        actor_sampling=s,
        critic_sampling=s,
        refiner_sampling=s,
    )
    calibration = [
        {
            "task_id": "t",
            "sample": 0,
            "passed": True,
            "votes": ["no", "yes"],
            "critiques": ["c0", "c1"],
        },
        {
            "task_id": "t",
            "sample": 1,
            "passed": False,
            "votes": ["yes", None],
            "critiques": ["c2", "c3"],
        },
    ]
    rows = refiner_data({"t": task()}, SearchState(), roles, calibration, {"t": ["good", "bad"]})
    assert [(r.kind, r.completion) for r in rows] == [("judgement", "c1")]
    assert "good" in rows[0].messages[0]["content"]
