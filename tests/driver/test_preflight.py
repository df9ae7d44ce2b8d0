"""Values that are each valid but cannot work in this run, caught before its directory exists:
each was, before, a traceback or an error minutes (or rounds) into the run."""

from __future__ import annotations

import pytest

from evoforge.cli import main

TINY = ["model=tiny", "env=parity", "eval.guard_env=", "serving.max_model_len=1024"]


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["dashboard_host=10.255.255.1"],
            "dashboard_host='10.255.255.1' is not an address of this machine",
        ),
        (["dashboard_host=no-such-host.invalid"], "is not an address of this machine"),
        (["train.max_length=16"], "train.max_length=16 does not exceed the"),
        (
            ["train.algorithm=grpo", "tasks_per_round=1", "train.batch_size=8"],
            "1 training tasks x train.grpo_generations=4 completions cannot fill one batch",
        ),
        (
            ["generation.max_tokens=950", "critic.max_tokens=8", "refiner.max_tokens=8"],
            "the critic prompt of",
        ),
        (["critic.max_tokens=700", "refiner.max_tokens=300"], "the refiner prompt of"),
        (["eval.max_tokens=1020"], "(eval.max_tokens) but the context window is 1024"),
        (["serving.replicas=1024"], "the run needs 1025 CPU slots at once"),
        (["report_to=tensorboard,tensorboard"], "'report_to' names 'tensorboard' twice"),
        (["cache_dir=CACHE_FILE"], "cache_dir='CACHE_FILE' is a file"),
        (["prompts.critic=TEMPLATE"], "not one of its placeholders"),
        (
            ["eval.guard_env=tests.helpers.plugins:RaisingVerify"],
            "environment 'bad': verify() raised",
        ),
    ],
)
def test_impossible_runs_fail_before_the_run_directory(
    args, message, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "CACHE_FILE").write_text("x")
    (tmp_path / "TEMPLATE").write_text('{instruction} {response} {"json": 1}')
    assert main(["run", *TINY, *args, "run_dir=run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "run").exists()


def test_a_finite_environment_smaller_than_asked_is_a_note(tmp_path):
    import json

    from evoforge.config import load_config
    from evoforge.driver.preflight import validate

    data = tmp_path / "d.jsonl"
    data.write_text(
        "".join(json.dumps({"prompt": f"q{i}", "answer": str(i)}) + "\n" for i in range(30))
    )
    checked = validate(load_config(None, [*TINY, f"env=file:{data}", "eval.heldout_tasks=200"]))
    assert any(
        n.startswith("note: eval.heldout_tasks=200 but environment 'file:d.jsonl' has")
        for n in checked.notes
    )


def test_an_environment_s_own_defaults_are_named_before_the_run(tmp_path):
    from evoforge.config import load_config
    from evoforge.driver.preflight import validate

    tiny = ["model=tiny", "env=tools", "eval.guard_env=", "serving.max_model_len=1536"]
    checked = validate(load_config(None, [*tiny, "generation.samples=8"]))
    notes = [n for n in checked.notes if "defaults to" in n]
    assert len(notes) == 1 and "search.max_tasks=0" in notes[0], checked.notes
    assert "generation.samples" not in notes[0]  # the user set it: not the env's default
    checked = validate(load_config(None, TINY))
    assert not any("defaults to" in n for n in checked.notes)


def test_a_second_run_on_the_local_cluster_this_process_started_is_checked_too(
    ray_cluster, tmp_path, capsys, monkeypatch
):
    """A notebook (or a test session) that started a local cluster runs on it again: the run
    joins that cluster, whose CPU slots are as few as a new one's, so the check still holds."""
    monkeypatch.chdir(tmp_path)
    assert ray_cluster.started_here
    assert main(["run", *TINY, "serving.replicas=1024", "run_dir=run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: the run needs 1025 CPU slots at once"), err
    assert not (tmp_path / "run").exists()


def _tree(root) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in root.rglob("*")}


def test_plan_checks_and_prints_the_plan_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep.txt").write_text("x")
    before = _tree(tmp_path)
    assert main(["plan", *TINY, "backend=hf"]) == 0
    out = capsys.readouterr().out
    assert _tree(tmp_path) == before, "evoforge plan wrote into the current directory"
    for wanted in (
        "run directory: runs/",
        "(not created)",
        "placement: ",
        "cpu slots: 2 held at once",
    ):
        assert wanted in out, out
    assert "memory: tiny (" in out and "of weights per server replica x 1" in out, out
    assert "memory: training about" in out and out.rstrip().endswith("plan: ok (nothing written)")


def test_plan_refuses_what_run_refuses(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["plan", *TINY, "serving.replicas=1024"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the run needs 1025 CPU slots at once" in err[0], err
    assert list(tmp_path.iterdir()) == []
