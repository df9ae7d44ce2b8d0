import pytest

import evoforge
from evoforge.cli import main
from evoforge.envs import get_env
from evoforge.envs.code import extract_code
from evoforge.loops.rundir import read_jsonl
from tests.helpers.runs import TINY_RUN


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


@pytest.mark.slow
def test_a_tiny_run_on_code_verifies_in_the_sandbox(ray_cluster, tmp_path):
    """A whole round on `code` with the tiny model: every answer and tree node is verified in
    the sandbox, the verdicts land in the run directory with feedback, and the run ends."""
    run_dir = tmp_path / "run"
    config = [a for a in TINY_RUN if not a.startswith("env=")]
    result = evoforge.run(
        evoforge.load_config(None, [*config, "env=code", "rounds=1", f"run_dir={run_dir}"])
    )
    assert [r["round"] for r in result.rounds] == [-1, 0]
    rows = read_jsonl(run_dir / "rounds/000/verdicts.jsonl")
    assert len(rows) == 6 and all(len(r["verdicts"]) == 2 for r in rows)  # tasks x samples
    # random tokens, so every answer fails, with the sandbox's feedback
    assert all(not v["passed"] and v["feedback"] for r in rows for v in r["verdicts"])
    trees = read_jsonl(run_dir / "rounds/000/tree.jsonl")
    refined = [n for t in trees for n in t["nodes"] if n["depth"] > 0]
    assert refined and all(n["verifier_passed"] is False for n in refined)  # verified too


def test_envs_check_code_passes(capsys):
    assert main(["envs", "check", "code", "-n", "4"]) == 0, capsys.readouterr()
