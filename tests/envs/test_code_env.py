import ast
import json
import re

import pytest

import evoforge
from evoforge.cli import main
from evoforge.envs import get_env
from evoforge.envs.code import extract_code
from evoforge.storage.rundir import read_jsonl
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


FEEDBACK = re.compile(r"^(\w+)\((.*)\) (?:returned .*, |raised .*; )expected (.*?)(?: \(\d+ of|$)")


def lookup_table(function: str, table: dict) -> str:
    rows = "".join(f"    if xs == {x!r}:\n        return {y}\n" for x, y in table)
    return f"```python\ndef {function}(xs):\n{rows}    return None\n```"


def test_a_lookup_table_built_from_feedback_fails_the_hidden_tests():
    """The red team's hard-coder: read the expected output of the first failing test from the
    feedback, add it to a table, ask again. It learns every shown test and still fails."""
    env = get_env("code")
    for task in (env.task("heldout", 7, 0), env.task("train", 7, 0)):
        function, table = task.metadata["function"], []
        for _calls in range(1, 12):
            verdict = env.verify(task, lookup_table(function, table))
            found = FEEDBACK.match(verdict.feedback)
            if found is None:
                break
            table.append((ast.literal_eval(found.group(2)), found.group(3)))
        assert verdict.details["tests_passed"] == verdict.details["tests"] == 4, verdict
        assert not verdict.passed and verdict.score < 1, (task.id, verdict)
        assert verdict.details["hidden_passed"] < verdict.details["hidden_tests"] == 4
        assert "hidden tests failed" in verdict.feedback
        hidden = [x for x, _ in task.metadata["hidden_tests"]]
        assert not any(repr(x) in verdict.feedback for x in hidden if x not in ([], ""))


def test_hidden_inputs_never_reach_feedback_or_details():
    """An answer that returns, raises, prints or digs up (from the runner's memory) every input
    it is given: nothing of a hidden input comes back."""
    env = get_env("code")
    task = next(t for t in env.tasks("train", 40, 3) if t.metadata["family"] == "sum_multiples")
    leak = (
        "import gc, sys\n"
        "def solve_sum_multiples(xs):\n"
        "    everything = [o for o in gc.get_objects() if isinstance(o, dict) and 'inputs' in o]\n"
        "    print(everything, file=sys.stderr)\n"
        "    if len(xs) % 2:\n"
        "        raise ValueError(repr(everything))\n"
        "    return repr(everything)\n"
    )
    verdict = env.verify(task, f"```python\n{leak}```")
    shown = json.dumps(verdict.to_json())
    for x, _ in task.metadata["hidden_tests"]:
        if x not in (t for t, _ in task.metadata["tests"]) and len(x) > 1:
            assert repr(x) not in shown and json.dumps(x) not in shown, (x, shown[:500])


def test_an_honest_answer_passes_shown_and_hidden_tests():
    env = get_env("code")
    task = next(t for t in env.tasks("heldout", 40, 0) if t.metadata["family"] == "reverse_words")
    v = env.verify(
        task, "```python\ndef solve_reverse_words(xs):\n    return xs[::-1].upper()\n```"
    )
    assert v.passed and v.score == 1 and not v.feedback
    assert (v.details["tests_passed"], v.details["hidden_passed"]) == (4, 4)
    again = env.task("heldout", 0, int(task.id.rsplit("/", 1)[1]))
    assert again.to_json() == task.to_json()  # every item is a function of (seed, index)


def test_a_poisoned_samples_file_gives_failed_verdicts_on_resume(tmp_path):
    """What a resume does with a round's samples.jsonl: the verify stage verifies every stored
    answer again. Answers that forge the result channel (a RecursionError for the parser) or
    that are not text are failed verdicts; the stage returns and the run goes on."""
    from evoforge.round.samples import response_verdicts
    from evoforge.storage.records import TaskSamples
    from evoforge.storage.store import RoundStore

    env = get_env("code")
    task = env.tasks("train", 1, seed=0)[0]
    deep = "[" * 100_000 + "]" * 100_000 + "\n"
    forged = f"```python\nimport os\nos.write(3, {deep!r}.encode())\nos._exit(0)\n```"
    store = RoundStore(tmp_path)
    store.samples.write([TaskSamples(task_id=task.id, responses=[forged, 7, None])])
    rows = response_verdicts(env, store, {task.id: task}, lambda n: None)
    verdicts = rows[0].verdicts
    assert len(verdicts) == 3 and not any(v.passed for v in verdicts)
    assert "tampered" in verdicts[0].feedback and "not text" in verdicts[1].feedback


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
