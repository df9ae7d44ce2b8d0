"""A real process killed with SIGKILL during expand resumes to the same pairs as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from evoforge.loops.rundir import read_json, read_jsonl
from tests.helpers.runs import TINY_RUN, cli

pytestmark = pytest.mark.slow


def wait_for_event(run_dir: Path, node: str, proc, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"run ended early: {proc.stderr.read()[-2000:]}")
        ev = run_dir / "events.jsonl"
        if ev.exists() and any(e["node"] == node for e in read_jsonl(ev)):
            return
        time.sleep(0.2)
    raise AssertionError(f"no {node} event within {timeout}s")


def pairs_of(run_dir: Path) -> list[tuple]:
    return [
        (p["id"], p["chosen"], p["rejected"])
        for p in read_jsonl(run_dir / "rounds/000/pairs.jsonl")
    ]


def test_sigkill_during_expand_then_resume_gives_same_pairs(tmp_path):
    args = TINY_RUN + ["rounds=1"]
    ref_dir, killed_dir = tmp_path / "ref", tmp_path / "killed"
    ref = cli(["run", *args, f"run_dir={ref_dir}"])
    assert ref.wait(timeout=600) == 0, ref.stderr.read()[-3000:]

    # A 30 s pause at the start of expand gives a window to kill the process inside that node.
    proc = cli(
        ["run", *args, f"run_dir={killed_dir}"],
        env={"EVOFORGE_DEBUG_DELAY": "expand=30"},
        start_new_session=True,
    )
    wait_for_event(killed_dir, "critique", proc)
    time.sleep(2.0)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (killed_dir / "rounds/000/pairs.jsonl").exists()
    assert not any(e["node"] == "expand" for e in read_jsonl(killed_dir / "events.jsonl"))

    resumed = cli(["resume", str(killed_dir)])
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read()[-3000:]
    got, want = pairs_of(killed_dir), pairs_of(ref_dir)
    assert got == want and len({p[0] for p in got}) == len(got)
    assert read_json(killed_dir / "meta.json")["finished"] is True
    assert not list(killed_dir.rglob("*.tmp"))
    # a finished run refuses to resume, with a one-line error
    again = cli(["resume", str(killed_dir)])
    assert again.wait(timeout=120) == 2
    assert "already finished" in again.stderr.read().strip().splitlines()[-1]
