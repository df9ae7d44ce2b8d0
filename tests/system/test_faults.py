"""Faults injected into real 2-round runs with the tiny model; each must end in the same run.

- SIGKILL at each node kind, at the end of the node (its outputs written, LangGraph's checkpoint
  not yet taken), one kill after another in one run: each resume re-enters the killed node and
  must reuse what it finds.
- A full disk in the middle of a round: a one-line error, the last good state kept, and a resume
  after space is freed (in the kill chain, whose run lies on a small disk).
- A model-server actor killed during a round: restarted, the batch retried, the restart counted
  (in the resume that ends the tampered-with run).
- A second process on a live run's directory: refused by the lock (in the kill chain).

Runs join the test session's Ray cluster, which also checks that a killed driver's actors go away
with it and that its named actors do not block the resumed run.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from evoforge.round.graph import NODES
from evoforge.storage.rundir import read_json, read_jsonl
from tests.helpers.disk import fill, small_tmpfs
from tests.helpers.runs import (
    TINY_RUN,
    cli,
    pause_and_kill,
    run_args,
    running,
    wait_for_pause,
    wait_no_evoforge_actors,
)

pytestmark = pytest.mark.slow


def _rows(path: Path) -> list[dict]:
    return read_jsonl(path) if path.exists() else []


def outcome(run_dir: Path) -> dict:
    """What must not depend on crashes: every sample and verdict, the judge's calibration, pairs
    by source, SFT rows, eval numbers and answers, and the kept models' weights."""
    out: dict = {"meta_finished": read_json(run_dir / "meta.json")["finished"]}
    for d in [run_dir / "baseline", *sorted((run_dir / "rounds").iterdir())]:
        ev = read_json(d / "eval.json")
        judge = read_json(d / "judge.json") if (d / "judge.json").exists() else {}
        out[d.name] = {
            "samples": [  # answers, or a multi-turn environment's trajectories
                (r["task_id"], r.get("responses", r.get("trajectories")))
                for r in _rows(d / "samples.jsonl")
            ],
            "verdicts": [(r["task_id"], r["verdicts"]) for r in _rows(d / "verdicts.jsonl")],
            "judge": {k: judge.get(k) for k in ("n", "kappa", "weight", "benched")},
            "critiques": _rows(d / "critiques.jsonl"),
            "pairs": [
                (p["id"], p["source"], p["chosen"], p["rejected"]) for p in _rows(d / "pairs.jsonl")
            ],
            "sft": _rows(d / "sft.jsonl"),
            "refiner": _rows(d / "refiner.jsonl"),
            "heldout": {k: (v["strict"], v["loose"], v["n"]) for k, v in ev["heldout"].items()},
            "compare": ev.get("compare"),
            "kept": ev.get("kept"),
            "answers": [r["response"] for r in read_jsonl(d / "eval_responses.jsonl")],
        }
    for m in sorted((run_dir / "models").iterdir()):
        out[m.name] = hashlib.sha256((m / "model.safetensors").read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def reference(ray_cluster, tmp_path_factory) -> dict:
    run_dir = tmp_path_factory.mktemp("crash") / "reference"
    proc = cli(run_args(run_dir, ray_cluster.address))
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return outcome(run_dir)


def resume_ok(run_dir: Path) -> None:
    resumed = cli(["resume", str(run_dir)])
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]


def disk_full_at_pairs(cmd: list[str], run_dir: Path, disk: Path) -> None:
    """``cmd`` (a resume of ``run_dir``, on ``disk``) finds the disk full when round 1's pairs
    are written: one line, exit 2, nothing half-written; then the space is freed."""
    proc = cli(cmd, env={"EVOFORGE_DEBUG_DELAY": "pairs@1=3"})
    wait_for_pause(proc)
    filler = fill(disk)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: cannot write") and "No space left on device" in last, last
    assert "evoforge resume" in last
    assert not list(run_dir.rglob("*.tmp"))
    assert not (run_dir / "rounds/001/pairs.jsonl").exists()
    assert read_json(run_dir / "meta.json")["finished"] is False
    filler.unlink()


@pytest.fixture
def disk_or_none(tmp_path):
    """A small tmpfs for the kill chain's run (tests.helpers.disk), or None where none can be
    mounted: the chain then runs on tmp_path without its full-disk step."""
    with small_tmpfs(tmp_path / "disk") as why_not:
        yield None if why_not else tmp_path / "disk"


@pytest.mark.timeout(3600)  # 12 kills and resumes in one test (each was a test of its own)
def test_sigkill_at_every_node_then_resume_equals_uninterrupted(
    reference, ray_cluster, tmp_path, disk_or_none
):
    """One run killed at the end of every node in turn (its outputs written, LangGraph's
    checkpoint not yet taken) and resumed each time into the next kill: every node is re-entered
    after a crash and must reuse what it finds. Round 1's nodes are the ones killed, so each resume
    also restores round 0's trained weights into the servers. One chain instead of one run per
    node: each resume runs one node, not a whole round. On a small disk, one more resume finds
    the disk full where round 1's pairs are written (disk_full_at_pairs)."""
    run_dir = (disk_or_none or tmp_path) / "killed"
    cmd = run_args(run_dir, ray_cluster.address)
    # Not explore: TINY_RUN turns it off (explore.kinds=), so the node writes an empty
    # guided.jsonl and, re-entered, skips its run as every stage with outputs does (plan,
    # generate, verify, critique, pairs here); killing it there would add a resume, not a path.
    for at in ["baseline", *(f"{n}@1" for n in NODES if n not in ("baseline", "explore"))]:
        if at == "pairs@1" and disk_or_none is not None:
            disk_full_at_pairs(cmd, run_dir, disk_or_none)
        proc = cli(cmd, env={"EVOFORGE_DEBUG_DELAY": f"{at}:end=300"}, start_new_session=True)
        wait_for_pause(proc)
        if at == "baseline":
            # While the run is live, a second process on its directory is refused by the lock.
            second = cli(["resume", str(run_dir)])
            _, second_err = second.communicate(timeout=120)
            assert second.returncode == 2
            assert "is in use by another evoforge process" in second_err.strip().splitlines()[-1]
            run_id = read_json(run_dir / "meta.json")["run_id"]
            assert run_id.startswith(f"{run_dir.name}-")  # unique on the shared cluster
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert read_json(run_dir / "meta.json")["finished"] is False, at
        assert wait_no_evoforge_actors() == [], f"a driver killed at {at}: its actors outlived it"
        cmd = ["resume", str(run_dir)]
    resume_ok(run_dir)
    assert outcome(run_dir) == reference
    assert not list(run_dir.rglob("*.tmp")), "temp files left behind"
    assert wait_no_evoforge_actors() == []


def process_tree(pid: int) -> list:
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def test_sigterm_then_sigkill_on_the_runs_own_cluster_resume_as_uninterrupted(reference, tmp_path):
    """A run on its own cluster gets SIGTERM in the middle of real work (a batch in the refiner),
    then a second one while it cleans up: one line, exit 143, no process of the run left (Ray
    shut down). Its resume, on a cluster of its own too, has its whole process group killed
    inside round 1's expand (before the node wrote anything). Resumed again, it ends as the
    uninterrupted run did; a finished run then refuses to resume."""

    run_dir = tmp_path / "terminated"
    proc = cli(["run", *TINY_RUN, "rounds=2", f"run_dir={run_dir}"], start_new_session=True)
    while not (line := proc.stderr.readline()).startswith("[round 0] critique"):
        assert line, f"run ended early: rc={proc.wait()}"
    tree = process_tree(proc.pid)
    assert len(tree) > 3  # the driver, Ray's daemons, the server actor
    proc.send_signal(signal.SIGTERM)  # expand is running now
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)  # a second SIGTERM during the cleanup is ignored
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 143, rest[-3000:]
    lines = [x for x in rest.strip().splitlines() if x.strip()]
    assert lines[-1] == f"terminated (SIGTERM); `evoforge resume {run_dir}` continues the run", rest
    assert "Traceback" not in rest
    deadline = time.time() + 30
    while (alive := running(tree)) and time.time() < deadline:
        time.sleep(0.5)
    assert alive == [], alive
    assert read_json(run_dir / "meta.json")["finished"] is False

    killed = cli(
        ["resume", str(run_dir)],
        env={"EVOFORGE_DEBUG_DELAY": "expand@1=300"},
        start_new_session=True,
    )
    pause_and_kill(killed)
    assert not (run_dir / "rounds/001/pairs.jsonl").exists()
    events = read_jsonl(run_dir / "events.jsonl")
    assert not any(e["node"] == "expand" and e["round"] == 1 for e in events)
    resume_ok(run_dir)
    assert outcome(run_dir) == reference
    again = cli(["resume", str(run_dir)])
    _, err = again.communicate(timeout=120)
    assert again.returncode == 2 and "already finished" in err.strip().splitlines()[-1]


def test_resume_trusts_only_an_intact_run_directory(reference, killed_at_train1, tmp_path):
    """Techniques on a run stopped with round 1's pairs written (a copy of conftest's
    killed_at_train1, moved since it was killed): an edited config.yaml, an emptied and a deleted
    pairs file, a lost model, a torn last line of events.jsonl; each is refused in one line
    (never "0 pairs"); with everything restored the resume ends as the uninterrupted run did,
    under the run id the run started with.

    In that resume the model-server actor is killed at the start of round 1's evaluate: it is
    restarted, the batch retried and the restart counted, and since the restarted actor reloads
    the weights round 1 synced to it, the retried answers are the uninterrupted run's."""
    run_dir = tmp_path / "tampered"
    shutil.copytree(killed_at_train1, run_dir)
    run_id = read_json(run_dir / "meta.json")["run_id"]
    pairs = run_dir / "rounds/001/pairs.jsonl"
    good_pairs, good_config = pairs.read_bytes(), (run_dir / "config.yaml").read_text()

    def refused(*words: str) -> None:
        p = cli(["resume", str(run_dir)])
        _, err = p.communicate(timeout=300)
        last = err.strip().splitlines()[-1]
        assert p.returncode == 2 and last.startswith("error: "), err[-2000:]
        assert all(w in last for w in words), last

    (run_dir / "config.yaml").write_text(
        good_config.replace("tasks_per_round: 6", "tasks_per_round: 7")
    )
    refused("differs from the config the run started with", "tasks_per_round (6 -> 7)")
    (run_dir / "config.yaml").write_text(good_config)
    pairs.write_text("")
    refused("run directory damaged", "pairs.jsonl was changed after the run wrote it")
    pairs.unlink()
    refused("run directory damaged", "pairs.jsonl is missing")
    pairs.write_bytes(good_pairs)
    model = run_dir / "models/round-000"
    os.rename(model, run_dir / "elsewhere")
    refused("run directory damaged", "round-000 holds no weights")
    os.rename(run_dir / "elsewhere", model)
    with open(run_dir / "events.jsonl", "ab") as f:
        f.write(b'{"round": 1, "node": "tor')
    import ray

    proc = cli(["resume", str(run_dir)], env={"EVOFORGE_DEBUG_DELAY": "evaluate@1=3"})
    wait_for_pause(proc)
    ray.kill(ray.get_actor(f"evoforge/{run_id}/policy/0", namespace="evoforge"))
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert read_json(run_dir / "rounds/001/metrics.json")["server_restarts"] == 1
    evaluate = [e for e in read_jsonl(run_dir / "events.jsonl") if e["node"] == "evaluate"]
    assert evaluate[-1]["round"] == 1 and evaluate[-1]["server_restarts"] == 1
    assert outcome(run_dir) == reference
    assert read_json(run_dir / "meta.json")["run_id"] == run_id
    assert all(e["node"] for e in read_jsonl(run_dir / "events.jsonl"))
