"""Whole runs through the real path: Ray actors, LangGraph + SqliteSaver, HF engine, TRL DPO."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import evoforge
from evoforge.loops.graph import NODES
from evoforge.loops.rundir import read_json, read_jsonl
from tests.helpers.runs import TINY_RUN

pytestmark = pytest.mark.slow


def events(run_dir) -> list[dict]:
    return read_jsonl(Path(run_dir) / "events.jsonl")


def test_two_rounds_run_every_node_and_counts_add_up(ray_cluster, tmp_path):
    run_dir = tmp_path / "run"
    result = evoforge.run(evoforge.load_config(None, TINY_RUN + ["rounds=2", f"run_dir={run_dir}"]))
    ev = events(run_dir)
    for r in (0, 1):
        seen = {e["node"] for e in ev if e["round"] == r}
        assert set(NODES) - {"baseline"} <= seen, f"round {r} missed {set(NODES) - seen}"
    for name in ("config.yaml", "graph.sqlite", "events.jsonl", "baseline/eval.json", "report.md"):
        assert (run_dir / name).exists(), name
    for r in ("000", "001"):
        d = run_dir / "rounds" / r
        for name in (
            "tasks.jsonl",
            "responses.jsonl",
            "critiques.jsonl",
            "tree.jsonl",
            "verdicts.jsonl",
            "pairs.jsonl",
            "refiner.jsonl",
            "eval.json",
            "metrics.json",
        ):
            assert (d / name).exists(), f"{r}/{name}"
        tasks = {t["id"] for t in read_jsonl(d / "tasks.jsonl")}
        failed = {c["task_id"] for c in read_jsonl(d / "critiques.jsonl") if c["failed"]}
        trees = {t["task_id"]: t for t in read_jsonl(d / "tree.jsonl")}
        assert set(trees) == failed and failed <= tasks  # every failed task has a tree
        assert all(t["reason"] for t in trees.values())  # ...and a recorded reason it ended
        for p in read_jsonl(d / "pairs.jsonl"):
            assert p["task_id"] in tasks
            assert p["node_id"] in {n["id"] for n in trees[p["task_id"]]["nodes"]}
            assert p["node_id"] == trees[p["task_id"]]["accepted"]
        m = read_json(d / "metrics.json")
        assert (
            m["tasks"] == len(tasks)
            and m["failed"] == len(failed)
            and m["pairs"] == len(read_jsonl(d / "pairs.jsonl"))
        )
    assert [r["round"] for r in result.rounds] == [-1, 0, 1]
    plots = ("pass_rate", "pass_rate_by_type", "pairs", "agreement", "trees", "seconds")
    for name in plots:  # every plot of the report, each a real image
        png = run_dir / "report" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000, name
        assert f"report/{name}.png" in (run_dir / "report.md").read_text()
    # the parity env makes pairs, so round 0 trained and synced a real model
    train0 = read_json(run_dir / "rounds/000/train/done.json")
    assert train0["skipped"] is None
    assert json.loads((run_dir / "rounds/000/train/metrics.json").read_text())["steps"] >= 1


def test_stops_early_without_gain(ray_cluster, tmp_path):
    run_dir = tmp_path / "stop"
    # greedy answers of the tiny model on the parity env do not change: no round gains
    result = evoforge.run(
        evoforge.load_config(
            None,
            TINY_RUN
            + ["rounds=3", f"run_dir={run_dir}", "eval.patience=1", "train.learning_rate=1e-12"],
        )
    )
    assert "without a gain" in result.stop_reason
    assert not (run_dir / "rounds/001").exists()


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
    assert (
        "sft_examples" not in m
    )  # not mixed into the actor's data when the refiner has its own weights


def test_rollback_restores_kept_weights_exactly(ray_cluster, tmp_path):
    run_dir = tmp_path / "rb"
    # tolerance -1: every round counts as a regression and is rolled back; a large learning rate
    # makes the candidate's greedy answers differ from the kept model's.
    evoforge.run(
        evoforge.load_config(
            None,
            TINY_RUN
            + [
                "rounds=1",
                f"run_dir={run_dir}",
                "eval.tolerance=-1.0",
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
