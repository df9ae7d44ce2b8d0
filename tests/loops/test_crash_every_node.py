"""Crash anywhere: SIGKILL a real 2-round run at each node kind, resume, get the same run.

The kill lands at the end of the node (its outputs written, LangGraph's checkpoint not yet taken):
the resumed run re-enters that node and must reuse what it finds, not redo it differently or
twice. Runs join the test session's Ray cluster, which also checks that a killed driver's actors
go away with it and that its named actors do not block the resumed run.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

import pytest

from evoforge.loops.graph import NODES
from evoforge.loops.rundir import read_json, read_jsonl
from tests.helpers.runs import TINY_RUN, cli

pytestmark = pytest.mark.slow


def run_args(run_dir: Path, address: str) -> list[str]:
    return ["run", *TINY_RUN, "rounds=2", f"run_dir={run_dir}", f"ray_address={address}"]


def outcome(run_dir: Path) -> dict:
    """What must not depend on crashes: pairs, eval numbers and answers, kept models' weights."""
    out: dict = {"meta_finished": read_json(run_dir / "meta.json")["finished"]}
    for d in [run_dir / "baseline", *sorted((run_dir / "rounds").iterdir())]:
        ev = read_json(d / "eval.json")
        out[d.name] = {
            "pairs": [(p["id"], p["chosen"], p["rejected"]) for p in read_jsonl(d / "pairs.jsonl")],
            "heldout": {k: (v["strict"], v["loose"], v["n"]) for k, v in ev["heldout"].items()},
            "kept": ev.get("kept"),
            "answers": [r["response"] for r in read_jsonl(d / "eval_responses.jsonl")],
        }
    for m in sorted((run_dir / "models").iterdir()):
        out[m.name] = hashlib.sha256((m / "model.safetensors").read_bytes()).hexdigest()
    return out


def evoforge_actors() -> list[str]:
    from ray.util.state import list_actors

    alive = list_actors(filters=[("state", "=", "ALIVE")], limit=1000)
    return [a.name for a in alive if (a.name or "").startswith("evoforge/")]


def wait_no_evoforge_actors(timeout: float = 60) -> list[str]:
    deadline = time.time() + timeout
    while (left := evoforge_actors()) and time.time() < deadline:
        time.sleep(1)
    return left


@pytest.fixture(scope="module")
def reference(ray_cluster, tmp_path_factory) -> dict:
    run_dir = tmp_path_factory.mktemp("crash") / "reference"
    proc = cli(run_args(run_dir, ray_cluster.address))
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return outcome(run_dir)


def pause_and_kill(proc, node: str) -> None:
    """Read stderr until the run pauses at the chosen point, then SIGKILL its process group."""
    while True:
        line = proc.stderr.readline()
        if not line:
            raise AssertionError(f"run ended before reaching {node}: rc={proc.wait()}")
        if line.startswith("evoforge debug: pausing"):
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.parametrize("node", NODES)
def test_sigkill_at_node_then_resume_equals_uninterrupted(node, reference, ray_cluster, tmp_path):
    run_dir = tmp_path / "killed"
    at = node if node == "baseline" else f"{node}@1"  # round 1 also resumes trained weights
    proc = cli(
        run_args(run_dir, ray_cluster.address),
        env={"EVOFORGE_DEBUG_DELAY": f"{at}:end=300"},
        start_new_session=True,
    )
    pause_and_kill(proc, node)
    assert read_json(run_dir / "meta.json")["finished"] is False
    assert wait_no_evoforge_actors() == [], "a killed driver's actors outlived it"

    resumed = cli(["resume", str(run_dir)])
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    assert outcome(run_dir) == reference
    assert not list(run_dir.rglob("*.tmp")), "temp files left behind"
    assert wait_no_evoforge_actors() == []
