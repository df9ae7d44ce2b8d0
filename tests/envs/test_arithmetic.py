import pytest

from evoforge.envs import get_env
from evoforge.envs.arithmetic import ArithmeticEnv, extract_answer


@pytest.mark.parametrize(
    "text,want",
    [
        ("so \\boxed{42} done", "42"),
        ("The answer is 1,234.", "1234"),
        ("first 3 then 7", "7"),
        ("the answer is: -5", "-5"),
        ("no number", None),
    ],
)
def test_extract(text, want):
    assert extract_answer(text) == want


def test_answers_are_right_and_difficulty_adds_steps():
    env = get_env("arithmetic")
    for t in env.tasks("train", 50, 0):
        assert env.verify(t, f"The answer is {t.metadata['answer']}.").passed
        assert not env.verify(t, f"The answer is {t.metadata['answer'] + 1}.").passed
    hard = ArithmeticEnv(difficulty=5).tasks("train", 1, 0)[0]
    assert hard.prompt.count("Then") == 6


def test_splits_disjoint():
    env = get_env("arithmetic")
    assert not {t.prompt for t in env.tasks("train", 10_000, 0)} & {
        t.prompt for t in env.tasks("heldout", 10_000, 0)
    }
