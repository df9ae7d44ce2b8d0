"""Bad input: a one-line error naming the problem and the fix, exit 2, nothing written."""

from __future__ import annotations

import pytest

from evoforge.cli import main


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "model=nope"], "unknown model 'nope'"),
        (["run", "roundz=2"], "did you mean 'rounds'"),
        (["run", "rounds=two"], "'rounds' expects int"),
        (["run", "env=nosuchenv"], "unknown environment 'nosuchenv'"),
        (["run", "env=nosuchmodule:Env"], "failed to import"),
        (["run", "env=evoforge.envs:Nope"], "has no attribute 'Nope'"),
        (
            ["run", "env=tests.helpers.plugins:RaisingTasks"],
            "tasks('train', 4, 0) raised RuntimeError",
        ),
        (["run", "env=tests.helpers.plugins:NaNVerify"], "score nan"),
        (["run", "env=tests.helpers.plugins:EmptyTasks"], "returned 0 tasks, expected 1 to 4"),
        (
            ["run", "env=tests.helpers.raising_plugin:Env"],
            "failed to import: RuntimeError: this plugin is broken at import",
        ),
        (["run", "env=tests.helpers.plugins:RaisingVerify"], "verify() raised KeyError"),
        (["run", "env=tests.helpers.plugins:WrongTypeVerify"], "must return a Verdict"),
        (
            ["run", "model=tiny", "env=tests.helpers.plugins:LongPrompts"],
            "tokens plus 192 answer tokens (generation.max_tokens) but the context window is 1536",
        ),
        (  # the prompt is short; the tool specs shown with it are not
            ["run", "model=tiny", "env=tests.helpers.multiturn:LongToolSpecs"],
            "tokens plus 192 answer tokens (generation.max_tokens) but the context window is 1536",
        ),
        (  # ~400 prompt tokens with the tools' lines: with 192 answer tokens, not within 512
            ["run", "model=tiny", "env=tools", "train.max_length=512"],
            "train.max_length is 512; raise train.max_length to at least ",
        ),
        (
            ["run", "model=tiny", "env=tools", "train.algorithm=grpo"],
            "environment 'tools' is multi-turn",
        ),
        (
            ["run", "model=tiny", "env=tools", "train.algorithm=rloo"],
            "train.algorithm=rloo: environment 'tools' is multi-turn",
        ),
        (["run", "missing.yaml"], "config file 'missing.yaml' not found"),
        (["run", "model=tiny", "run_dir=runs/x\u202etxt.exe"], "U+202E RIGHT-TO-LEFT OVERRIDE"),
        (["run", "model=tiny", "run_dir=runs/a\x1b[2Jb"], "a control character (U+001B)"),
        (["resume", "/nonexistent/run"], "not an evoforge run directory"),
        (["run", "model=tiny", "ray_address=127.0.0.1:1"], "cannot reach the Ray cluster"),
    ],
)
def test_bad_input_one_line(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "runs").exists()


def test_malformed_yaml(tmp_path, capsys):
    bad = tmp_path / "c.yaml"
    bad.write_text("rounds: [\n")
    assert main(["run", str(bad)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_envs_list_and_check(capsys):
    assert main(["envs", "list"]) == 0
    out = capsys.readouterr().out
    assert "instructions" in out and "arithmetic" in out
    assert main(["envs", "check", "instructions"]) == 0
    assert main(["envs", "check", "tests.helpers.plugins:NaNVerify"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_run_help_lists_config_keys(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "search.children" in out and "train.beta" in out
    assert "env=tools: generation.samples=4" in out  # an environment's own defaults


def test_a_yaml_alias_bomb_is_one_line_in_under_a_second(tmp_path, capsys, monkeypatch):
    import time

    levels = ["a0: &a0 [" + ", ".join(["lol"] * 9) + "]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(levels) + "\nrounds: *a8\n")
    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    assert main(["run", str(bomb), "model=tiny"]) == 2
    assert time.perf_counter() - start < 1.0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "alias bomb" in err[0] and len(err[0]) < 300, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.yaml"]  # nothing written
