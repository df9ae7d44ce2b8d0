from evoforge.envs import get_env
from evoforge.envs.code import extract_code


def test_correct_and_wrong_answers():
    env = get_env("code")
    task = next(t for t in env.tasks("train", 50, 0) if t.metadata["family"] == "count_above")
    t = int(task.prompt.split("greater than ")[1].split(".")[0])
    good = f"```python\ndef solve_count_above(xs):\n    return sum(x > {t} for x in xs)\n```"
    v = env.verify(task, good)
    assert v.passed and v.score == 1.0 and not v.feedback
    bad = env.verify(task, "```python\ndef solve_count_above(xs):\n    return 0\n```")
    assert not bad.passed and "expected" in bad.feedback
    loop = env.verify(task, "```python\ndef solve_count_above(xs):\n    while True: pass\n```")
    assert not loop.passed and loop.feedback


def test_extract_code():
    assert extract_code("text\n```python\na = 1\n```\nmore ```py\nb = 2\n```") == "b = 2\n"
    assert extract_code("a = 1") == "a = 1"


def test_splits_disjoint_and_deterministic():
    env = get_env("code")
    a = env.tasks("train", 300, 1)
    assert [t.to_json() for t in a] == [t.to_json() for t in env.tasks("train", 300, 1)]
    assert not {t.metadata["family"] for t in a} & {
        t.metadata["family"] for t in env.tasks("heldout", 300, 1)
    }
