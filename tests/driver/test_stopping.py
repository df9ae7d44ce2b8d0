"""How a run stops when it cannot go on: a tool that never returns, SIGTERM before the run
directory exists. Real command lines, no cluster (everything here happens in the pre-flight
checks), a few seconds each."""

from __future__ import annotations

import signal

import pytest

from tests.helpers.runs import cli as start_cli

STUCK = "env=tests.helpers.stuck_tool:StuckToolEnv"


@pytest.fixture
def cli():
    """``start_cli``, every process it started killed at the end (a hung one included)."""
    procs = []

    def start(*args, **kw):
        procs.append(start_cli(*args, **kw))
        return procs[-1]

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)


def wait_for(proc, prefix: str) -> list[str]:
    seen = []
    while not (line := proc.stderr.readline()).startswith(prefix):
        assert line, f"ended early: rc={proc.wait()} {''.join(seen)[-2000:]}"
        seen.append(line)
    return seen


def test_a_stuck_tool_is_a_one_line_error_before_the_run_directory(tmp_path, cli):
    run_dir = tmp_path / "run"
    proc = cli(["run", "model=tiny", STUCK, f"run_dir={run_dir}"])
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        "error: environment 'stucktool': tool 'lookup' did not return within 0.5 s on task "
        "'paritychat/train/0/0' (arguments {'name': 'a'})"
    ), last
    assert "Traceback" not in err
    assert not run_dir.exists()


def test_sigterm_before_the_run_directory_exists_says_there_is_nothing_to_resume(tmp_path, cli):
    run_dir = tmp_path / "run"
    # the run's own limit (10 min) over the environment's: the pre-flight check hangs in the tool
    proc = cli(
        ["run", "model=tiny", STUCK, "generation.tool_timeout_s=600", f"run_dir={run_dir}"],
        start_new_session=True,
    )
    wait_for(proc, "stuck tool: lookup")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-2000:]
    assert err.strip().splitlines()[-1] == (
        "terminated (SIGTERM) before the run directory was written; nothing to resume"
    )
    assert "Traceback" not in err
    assert not run_dir.exists()


def test_envs_check_prints_each_check_as_it_runs(cli):
    proc = cli(["envs", "check", "tests.helpers.stuck_tool:SlowDefaultEnv"], start_new_session=True)
    first = proc.stdout.readline()
    assert first == "ok   tasks('train', 16, 0) returns 16 storable Task objects\n", first
    wait_for(proc, "stuck tool: lookup")
    assert proc.poll() is None  # still checking (the tool is stuck, its limit 30 s)
