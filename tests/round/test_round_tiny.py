"""Whole runs through the real path: Ray actors, LangGraph + SqliteSaver, HF engine, TRL DPO."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import evoforge
from evoforge.cli import main
from evoforge.round.graph import NODES
from evoforge.storage.rundir import read_json, read_jsonl
from tests.helpers.runs import EXPLORE, TINY_RUN

pytestmark = pytest.mark.slow


def events(run_dir) -> list[dict]:
    return read_jsonl(Path(run_dir) / "events.jsonl")


def test_two_rounds_run_every_node_and_counts_add_up(ray_cluster, tmp_path, capsys):
    run_dir = tmp_path / "run"
    config = TINY_RUN + EXPLORE + ["rounds=2", f"run_dir={run_dir}"]
    result = evoforge.run(evoforge.load_config(None, config))
    ev = events(run_dir)
    for r in (0, 1):
        seen = {e["node"] for e in ev if e["round"] == r}
        trees = next(e["trees"] for e in ev if e["round"] == r and e["node"] == "critique")
        searched = set(NODES) - {"baseline"} - (set() if trees else {"expand", "select"})
        assert searched <= seen, f"round {r} missed {searched - seen}"
    assert any(e["node"] == "expand" for e in ev)  # the search had work in some round
    for name in ("config.yaml", "graph.sqlite", "events.jsonl", "baseline/eval.json", "report.md"):
        assert (run_dir / name).exists(), name
    for r in ("000", "001"):
        d = run_dir / "rounds" / r
        for name in (
            "tasks.jsonl",
            "samples.jsonl",
            "verdicts.jsonl",
            "critiques.jsonl",
            "judge.json",
            "tree.jsonl",
            "pairs.jsonl",
            "sft.jsonl",
            "refiner.jsonl",
            "eval.json",
            "metrics.json",
        ):
            assert (d / name).exists(), f"{r}/{name}"
        tasks = {t["id"] for t in read_jsonl(d / "tasks.jsonl")}
        samples = {s["task_id"]: s["responses"] for s in read_jsonl(d / "samples.jsonl")}
        verdicts = {v["task_id"]: v["verdicts"] for v in read_jsonl(d / "verdicts.jsonl")}
        assert set(samples) == set(verdicts) == tasks
        assert all(len(x) == 2 == len(verdicts[t]) for t, x in samples.items())  # 2 samples each
        no_pass = {t for t, vs in verdicts.items() if not any(v["passed"] for v in vs)}
        guided = read_jsonl(d / "guided.jsonl")  # parity gives feedback: one kind per task
        assert {(g["task_id"], g["kind"]) for g in guided} == {(t, "feedback") for t in no_pass}
        solved = {g["task_id"] for g in guided if any(v["passed"] for v in g["verdicts"])}
        trees = {t["task_id"]: t for t in read_jsonl(d / "tree.jsonl")}
        # every task that neither sampling nor guidance passed was searched, no other
        assert set(trees) == no_pass - solved
        assert all(t["reason"] for t in trees.values())  # ...with a recorded reason it ended
        judge = read_json(d / "judge.json")
        assert judge["n"] == 4 and "kappa" in judge and judge["weight"] >= 0
        prompts = {t["id"]: t["messages"] for t in read_jsonl(d / "tasks.jsonl")}
        for p in read_jsonl(d / "pairs.jsonl"):
            assert p["task_id"] in tasks and p["source"] in ("sampled", "guided", "refined")
            assert p["prompt"] == prompts[p["task_id"]]  # the plain task, never the guidance
            texts, vs = samples[p["task_id"]], verdicts[p["task_id"]]
            if p["source"] == "sampled":  # a passing sample against a failing one of the task
                assert vs[texts.index(p["chosen"])]["passed"]
                assert not vs[texts.index(p["rejected"])]["passed"]
            elif p["source"] == "guided":  # a passing guided sample against a plain failure
                g = next(g for g in guided if g["task_id"] == p["task_id"])
                assert g["verdicts"][g["responses"].index(p["chosen"])]["passed"]
                assert not vs[texts.index(p["rejected"])]["passed"] and p["guidance"] == "feedback"
            else:  # the accepted refinement against its original
                tree = trees[p["task_id"]]
                accepted = next(n for n in tree["nodes"] if n["id"] == tree["accepted"])
                assert p["chosen"] == accepted["response"] and accepted["verifier_passed"]
        m = read_json(d / "metrics.json")
        pairs = read_jsonl(d / "pairs.jsonl")
        assert m["tasks"] == len(tasks) and m["trees"] == len(trees) and m["pairs"] == len(pairs)
        assert sum(m["pairs_by_source"].values()) == len(pairs)
        ev = read_json(d / "eval.json")
        base = ev["compare"]["baseline"]["parity"]
        assert base["n"] == 8 and 0 <= base["p"] <= 1 and base["gained"] + base["lost"] <= 8
    assert [r["round"] for r in result.rounds] == [-1, 0, 1]
    assert result.rounds[1]["p"] is not None and result.rounds[1]["pairs"]
    assert "## Guided exploration and new data" in (run_dir / "report.md").read_text()
    assert "## Tool use" not in (run_dir / "report.md").read_text()  # single-turn
    plots = ("pass_rate", "pass_rate_by_type", "pairs", "judge", "trees", "seconds")
    for name in plots:  # every plot of the report, each a real image
        png = run_dir / "report" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000, name
        assert f"report/{name}.png" in (run_dir / "report.md").read_text()
    # the parity env makes pairs, so round 0 trained and synced a real model
    train0 = read_json(run_dir / "rounds/000/train/done.json")
    assert train0["skipped"] is None
    assert json.loads((run_dir / "rounds/000/train/metrics.json").read_text())["steps"] >= 1
    damaged_files_are_named_by_the_report(run_dir, tmp_path, capsys)


def test_separate_refiner_model_is_trained_on_its_own(ray_cluster, tmp_path, tiny_path):
    import shutil

    refiner = tmp_path / "refiner-model"
    shutil.copytree(tiny_path, refiner)
    run_dir = tmp_path / "sep"
    evoforge.run(
        evoforge.load_config(
            None, TINY_RUN + ["rounds=1", f"run_dir={run_dir}", f"refiner.model={refiner}"]
        )
    )
    names = {e["node"] for e in events(run_dir)}
    assert {"train", "sync"} <= names
    m = read_json(run_dir / "rounds/000/train/metrics.json")
    assert read_jsonl(run_dir / "rounds/000/refiner.jsonl"), (
        "the parity env always yields refinement chains"
    )
    assert (
        m["refiner"]["algorithm"] == "sft" and (run_dir / "rounds/000/train/refiner_model").exists()
    )
    # the actor's SFT phase holds its RFT rows only: the refiner's rows train the refiner alone
    assert m["sft_examples"] == len(read_jsonl(run_dir / "rounds/000/sft.jsonl"))


def test_rollback_restores_kept_weights_exactly_and_a_round_without_gain_stops_the_run(
    ray_cluster, tmp_path
):
    run_dir = tmp_path / "rb"
    # tolerance -1: every round counts as a regression and is rolled back; a large learning rate
    # makes the candidate's greedy answers differ from the kept model's. A rolled-back round is
    # no gain: with patience 1 the run stops after round 0 of 3.
    result = evoforge.run(
        evoforge.load_config(
            None,
            TINY_RUN
            + [
                "rounds=3",
                f"run_dir={run_dir}",
                "eval.tolerance=-1.0",
                "eval.patience=1",
                "train.learning_rate=0.05",
                "train.epochs=2",
            ],
        )
    )
    ev = read_json(run_dir / "rounds/000/eval.json")
    assert ev["kept"] is False
    m = read_json(run_dir / "rounds/000/metrics.json")
    assert m["probe_changed"] > 0, (
        "training did not change the greedy answers; the check would be vacuous"
    )
    assert ev["rollback_check"]["identical"] == ev["rollback_check"]["n"] > 0
    assert not (run_dir / "models/round-000").exists()
    assert "without a gain" in result.stop_reason
    assert not (run_dir / "rounds/001").exists()


def test_partial_credit_pairs_and_the_significance_gate(ray_cluster, tmp_path):
    """Where no sample of a two-check task passes, samples that differ in partial credit make
    partial pairs. With 8 heldout tasks no gain can be significant, so the gate rolls the round
    back."""
    run_dir = tmp_path / "partial"
    base = [a for a in TINY_RUN if not a.startswith(("env=", "generation.samples"))]
    evoforge.run(
        evoforge.load_config(
            None,
            base
            + [
                "env=tests.helpers.plugins:GradedText",
                "rounds=1",
                "tasks_per_round=8",
                "generation.samples=4",
                "pairs.partial_credit_gap=0.3",
                "eval.require_significance=true",
                f"run_dir={run_dir}",
            ],
        )
    )
    pairs = read_jsonl(run_dir / "rounds/000/pairs.jsonl")
    partial = [p for p in pairs if p["source"] == "partial"]
    assert partial, "no partial-credit pair from 8 tasks x 4 samples"
    assert all(p["chosen_score"] - p["rejected_score"] >= 0.3 for p in partial)
    ev = read_json(run_dir / "rounds/000/eval.json")
    if not read_json(run_dir / "rounds/000/train/done.json")["skipped"]:
        assert ev["kept"] is False and "not a significant gain" in ev["reason"]
        assert ev["compare"]["last_kept"]["graded"]["p"] >= 0.05


def damaged_files_are_named_by_the_report(run_dir: Path, tmp_path: Path, capsys) -> None:
    """`evoforge report` on a copy of the finished run with one file damaged at a time: one line
    naming the file, exit 2, never a traceback (the manifests are checked before anything is
    read)."""
    damages = {
        "rounds/001/eval.json": ("{ torn", "eval.json was changed after the run wrote it"),
        "rounds/000/metrics.json": ("[1, 2]", "metrics.json was changed after the run wrote it"),
        "baseline/eval.json": ('{"round": -1}', "eval.json was changed after the run wrote it"),
        "rounds/000/tree.jsonl": ('{"task_id": "x"\n', "tree.jsonl was changed after the run"),
    }
    for name, (text, message) in damages.items():
        copy = tmp_path / f"damaged-{name.replace('/', '-')}"
        shutil.copytree(run_dir, copy)
        (copy / name).write_text(text)
        capsys.readouterr()
        assert main(["report", str(copy)]) == 2, name
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
