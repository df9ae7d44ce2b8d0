"""A multi-turn run killed in the middle of its trajectory search (at the end of ``expand``: the
rewritten turns replayed and saved, not yet judged) resumes to the same pairs, weights and
held-out answers as an uninterrupted run."""

from __future__ import annotations

import pytest

from evoforge.storage.rundir import read_json, read_jsonl
from tests.helpers.runs import MULTITURN_RUN, cli
from tests.system.test_faults import outcome, pause_and_kill, resume_ok, wait_no_evoforge_actors

pytestmark = pytest.mark.slow


def test_kill_after_expand_then_resume_gives_the_same_pairs(ray_cluster, tmp_path):
    ref = tmp_path / "reference"
    proc = cli(["run", *MULTITURN_RUN, f"run_dir={ref}", f"ray_address={ray_cluster.address}"])
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    pairs = read_jsonl(ref / "rounds/000/pairs.jsonl")
    sources = {p["source"] for p in pairs}
    assert {"sampled", "refined"} <= sources, sources  # the run has the work this test needs
    for p in pairs:  # the shared messages are the prompt; chosen and rejected are turns
        assert p["prompt"][0]["role"] == "user" and p["tools"][0]["function"]["name"] == "flip"
        assert (
            [m["role"] for m in p["chosen"]] == ["assistant"] == [m["role"] for m in p["rejected"]]
        )
    assert read_json(ref / "rounds/000/train/done.json")["skipped"] is None
    assert read_json(ref / "rounds/000/train/metrics.json")["steps"] >= 1

    killed = tmp_path / "killed"
    proc = cli(
        ["run", *MULTITURN_RUN, f"run_dir={killed}", f"ray_address={ray_cluster.address}"],
        env={"EVOFORGE_DEBUG_DELAY": "expand@0:end=300"},
        start_new_session=True,
    )
    pause_and_kill(proc)
    phase = read_json(killed / "rounds/000/search.json")["phase"]
    assert phase == "expanded" and not (killed / "rounds/000/pairs.jsonl").exists()
    assert wait_no_evoforge_actors() == []
    resume_ok(killed)
    assert outcome(killed) == outcome(ref)
    assert read_jsonl(killed / "rounds/000/tree.jsonl") == read_jsonl(ref / "rounds/000/tree.jsonl")
