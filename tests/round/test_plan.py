"""The curriculum's weights and task selection, without Ray."""

import random

import pytest

from evoforge.envs.base import Task
from evoforge.round.stages.plan import select_tasks, type_weights


def test_informative_weights_peak_between_never_and_always():
    w = type_weights({"never": 0.0, "half": 0.5, "often": 0.9, "always": 1.0}, "informative", 0.25)
    assert w["half"] == pytest.approx(1.25)
    assert w["often"] == pytest.approx(4 * 0.9 * 0.1 + 0.25)
    assert w["never"] == w["always"] == pytest.approx(0.25)  # kept, at the floor
    assert w["half"] > w["often"] > w["never"]


def test_weakness_weights_follow_failures():
    w = type_weights({"a": 0.0, "b": 0.8}, "weakness", 0.05)
    assert w["a"] == pytest.approx(1.05) and w["b"] == pytest.approx(0.25)


def _pool(n):
    tags = ["half", "never"]
    return [
        Task(id=f"t{i}", messages=({"role": "user", "content": str(i)},), tags=(tags[i % 2],))
        for i in range(n)
    ]


def test_selection_oversamples_informative_types_and_keeps_a_share_of_the_rest():
    weights = type_weights({"half": 0.5, "never": 0.0}, "informative", 0.25)
    chosen = select_tasks(_pool(400), 100, weights, random.Random(0))
    half = sum(t.tags == ("half",) for t in chosen)
    assert len(chosen) == 100 and len({t.id for t in chosen}) == 100
    assert 65 <= half <= 95  # weight 1.25 vs 0.25 on equal pools
    assert 100 - half >= 5  # the floor keeps the never-passing type in the round


def test_selection_is_deterministic_and_uniform_takes_the_head():
    weights = {"half": 1.0, "never": 0.3}
    a = select_tasks(_pool(40), 10, weights, random.Random(7))
    b = select_tasks(_pool(40), 10, weights, random.Random(7))
    assert [t.id for t in a] == [t.id for t in b]
    assert [t.id for t in select_tasks(_pool(40), 5, None, random.Random(0))] == [
        f"t{i}" for i in range(5)
    ]


def test_a_type_only_guidance_passes_is_drawn_toward_not_left_at_the_floor():
    rates = {"never": 0.0, "half": 0.5}
    plain = type_weights(rates, "informative", 0.25)
    guided = type_weights(rates, "informative", 0.25, {"never": 0.5, "half": 0.0})
    assert plain["never"] == 0.25 and guided["never"] == 1.25
    assert guided["half"] == plain["half"] == 1.25  # the higher of the two rates counts
    assert type_weights(rates, "weakness", 0.25, {"never": 0.5}) == type_weights(
        rates, "weakness", 0.25
    )
