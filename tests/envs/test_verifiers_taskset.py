"""``env=verifiers:MODULE[:NAME]``: verifiers 0.4 tasksets as they are (tests/helpers/vf_tasksets.py),
scored offline by their own rewards; through ``envs check`` (the CLI) and one tiny run."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

pytest.importorskip("verifiers.v1", reason="the verifiers extra is not installed")

import evoforge  # noqa: E402
from evoforge.envs import get_env  # noqa: E402
from evoforge.envs.check import check_env  # noqa: E402
from evoforge.errors import EvoforgeError  # noqa: E402
from evoforge.storage.rundir import read_json, read_jsonl  # noqa: E402
from tests.helpers.runs import TINY_RUN, cli  # noqa: E402

SPEC = "verifiers:tests.helpers.vf_tasksets"


@pytest.fixture(scope="module")
def env():
    return get_env(SPEC)


def answer(task, right: bool, even: bool) -> str:
    d = task.metadata["data"]
    text = f"It is {d['a'] + d['b'] + (0 if right else 1)}"
    return text if (len(text) % 2 == 0) == even else text + "."


def test_tasks_come_from_load_split_by_prompt_and_ordered_by_seed(env):
    train, heldout = env.tasks("train", 100, 0), env.tasks("heldout", 100, 0)
    assert len(train) + len(heldout) == 60 and len(heldout) >= 6  # every task, in one split
    assert not {t.id for t in train} & {t.id for t in heldout}
    t = train[0]
    i = t.metadata["index"]
    assert t.messages == (
        {"role": "system", "content": "Answer with a number."},
        {"role": "user", "content": f"What is {3 * i + 1} + {7 * i % 23}?"},
    )
    assert t.metadata["data"] == {"a": 3 * i + 1, "b": 7 * i % 23} and t.tags == ("SumTask",)
    assert [x.id for x in env.tasks("train", 5, 0)] == [x.id for x in train[:5]]
    assert [x.id for x in env.tasks("train", 5, 1)] != [x.id for x in train[:5]]  # seed: order
    assert [x.id for x in get_env(SPEC).tasks("heldout", 4, 3)] == [
        x.id for x in env.tasks("heldout", 4, 3)
    ]


def test_the_score_is_the_weighted_sum_of_the_tasks_own_rewards(env):
    t = env.tasks("train", 1, 0)[0]
    full = env.verify(t, answer(t, right=True, even=True))
    assert full.passed and full.score == 1.0 and not full.feedback
    right = env.verify(t, answer(t, right=True, even=False))
    assert not right.passed and right.score == pytest.approx(0.7)
    assert right.details["rewards"] == {
        "correct": {"score": 1.0, "weight": 0.7},
        "even_length": {"score": 0.0, "weight": 0.3},
    }
    assert right.feedback == (
        "rewards: correct=1 (weight 0.7), even_length=0 (weight 0.3); weighted sum 0.7, below "
        "the pass threshold 1"
    )
    lenient = get_env(SPEC, SimpleNamespace(pass_threshold=0.3))  # the config's data section
    assert lenient.verify(t, answer(t, right=False, even=True)).passed
    assert not lenient.verify(t, answer(t, right=False, even=False)).passed
    report = check_env(env, n=8)
    assert report.ok, report.problems


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("ToolTaskset", "taskset ToolTaskset has toolsets (ShellToolset); MCP tool servers are"),
        ("ContainerTaskset", "task type BoxTask needs a container"),
        ("RuntimeRewardTaskset", "task type FileTask: reward(s) file_written need a runtime"),
        ("UserOpensTaskset", "task 0 has no prompt (the user opens the conversation)"),
        ("SumTask", "'SumTask' is a class but not a verifiers.v1 Taskset subclass"),
        ("nope", "module 'tests.helpers.vf_tasksets' has no attribute 'nope'"),
    ],
)
def test_each_unsupported_part_is_one_line_naming_it(name, says):
    with pytest.raises(EvoforgeError, match="^env 'verifiers:tests.helpers.vf_tasksets:") as e:
        get_env(f"{SPEC}:{name}")
    assert says in str(e.value) and "\n" not in str(e.value)


def test_finding_the_taskset_in_a_module(tmp_path, monkeypatch):
    (tmp_path / "two_sets.py").write_text(
        "from tests.helpers.vf_tasksets import SumTaskset\n"
        "class A(SumTaskset): ...\nclass B(SumTaskset): ...\n"
    )
    (tmp_path / "one_set.py").write_text(
        "import verifiers.v1 as vf\nfrom verifiers.v1 import load_taskset\n"  # verifiers' own
        "from tests.helpers.vf_tasksets import SumTaskset\nclass Only(SumTaskset): ...\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(EvoforgeError, match=r"defines 2 \(A, B\) Taskset subclasses and no load"):
        get_env("verifiers:two_sets")
    assert len(get_env("verifiers:one_set").tasks("train", 3, 0)) == 3
    assert get_env("verifiers:two_sets:B").name == "verifiers:two_sets:B"
    with pytest.raises(EvoforgeError, match="failed to import: ModuleNotFoundError"):
        get_env("verifiers:no_such_module")
    monkeypatch.setattr(sys.modules["verifiers"], "__version__", "0.3.1")
    with pytest.raises(EvoforgeError, match="written for verifiers 0.4.0 .* found 0.3.1"):
        get_env(SPEC)


@pytest.mark.slow  # two CLI processes, each importing verifiers (~6 s of CPU)
def test_envs_check_cli():
    proc = cli(["envs", "check", SPEC])
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "train and heldout are disjoint" in out and f"{SPEC}: passed" in out
    proc = cli(["envs", "check", f"{SPEC}:ContainerTaskset"])
    out, err = proc.communicate(timeout=300)
    assert proc.returncode != 0 and err.strip().splitlines()[-1].startswith("error: env '")


@pytest.mark.slow
def test_a_tiny_run_on_a_verifiers_taskset(ray_cluster, tmp_path):
    run_dir = tmp_path / "vf"
    args = [a for a in TINY_RUN if not a.startswith(("env=", "eval.heldout_tasks="))]
    args += [f"env={SPEC}", "data.pass_threshold=0.3", "eval.heldout_tasks=6", "rounds=1"]
    result = evoforge.run(evoforge.load_config(None, args + [f"run_dir={run_dir}"]))
    d = run_dir / "rounds/000"
    env = get_env(SPEC, SimpleNamespace(pass_threshold=0.3))
    tasks = {t["id"]: evoforge.Task.from_json(t) for t in read_jsonl(d / "tasks.jsonl")}
    assert len(tasks) == 6 and all(i.startswith(f"{SPEC}/") for i in tasks)
    for s, v in zip(read_jsonl(d / "samples.jsonl"), read_jsonl(d / "verdicts.jsonl"), strict=True):
        for response, verdict in zip(s["responses"], v["verdicts"], strict=True):
            again = env.verify(tasks[s["task_id"]], response)  # as stored: scored by its rewards
            assert (again.score, again.passed) == (verdict["score"], verdict["passed"])
            assert verdict["passed"] or verdict["feedback"].startswith("rewards: correct=")
    h = read_json(d / "eval.json")["heldout"][SPEC]
    assert h["n"] == 6
    assert [r["round"] for r in result.rounds] == [-1, 0]
