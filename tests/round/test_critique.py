"""The judge's calibration against the verifier and the search roots, without Ray."""

import random

from evoforge.agents.search import combine_value
from evoforge.round.stages.critique import calibration_items, reliability, search_roots
from evoforge.storage.records import SampleVerdict


def v(passed, score=None):
    s = score if score is not None else float(passed)
    return SampleVerdict(score=s, passed=passed, loose=passed, feedback="fb")


def test_calibration_is_balanced_distinct_and_bounded():
    samples = {f"t{i}": [f"a{i}", f"a{i}", f"b{i}"] for i in range(10)}
    verdicts = {f"t{i}": [v(True), v(True), v(False)] for i in range(10)}
    items = calibration_items(samples, verdicts, 8, random.Random(0))
    assert len(items) == 8 and len(set(items)) == 8
    assert sum(verdicts[t][i].passed for t, i in items) == 4
    texts = [(t, samples[t][i]) for t, i in items]
    assert len(set(texts)) == 8  # the duplicate answer of each task is judged once
    only_fail = {t: [v(False)] * 3 for t in samples}
    items = calibration_items(samples, only_fail, 8, random.Random(0))
    assert len(items) == 8  # no passing answers: all failing


def test_reliability_weights_and_benches():
    truth = [True] * 10 + [False] * 10
    good = reliability([0.9] * 9 + [0.2] + [0.1] * 9 + [0.8], truth, min_kappa=0.1)
    assert good["kappa"] == 0.8 and good["weight"] == 0.8 and not good["benched"]
    assert good["accuracy"] == 0.9
    chance = reliability([0.9, 0.1] * 10, truth, min_kappa=0.1)
    assert chance["kappa"] == 0.0 and chance["weight"] == 0.0 and chance["benched"]
    silent = reliability([None] * 20, truth, min_kappa=0.1)  # every vote abstained
    assert silent["benched"] and silent["abstained"] == 20
    assert reliability([], [], 0.1)["benched"]


def test_node_value_weights_the_judge():
    assert combine_value("both", 1.0, 0.0, judge_weight=1.0) == 0.5
    assert combine_value("both", 1.0, 0.0, judge_weight=0.5) == 1 / 3
    assert combine_value("both", 1.0, 0.25, judge_weight=0.0) == 0.25  # benched: verifier only
    assert combine_value("both", None, 0.5) == 0.5
    assert combine_value("judge", 0.7, 0.0) == 0.7
    assert combine_value("verifier", 0.7, 0.2) == 0.2


def test_search_roots_are_no_pass_tasks_closest_first():
    samples = {"a": ["x", "y"], "b": ["p", "q"], "c": ["m", "n"]}
    verdicts = {
        "a": [v(False, 0.0), v(False, 0.5)],
        "b": [v(True), v(False)],
        "c": [v(False, 0.67), v(False, 0.67)],
    }
    roots = search_roots(samples, verdicts, limit=5)
    assert [(r.task_id, r.response) for r in roots] == [("c", "m"), ("a", "y")]
    assert roots[0].verifier_passed is False and roots[0].feedback == "fb"
    assert [r.task_id for r in search_roots(samples, verdicts, limit=1)] == ["c"]
