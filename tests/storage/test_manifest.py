"""A round's files are trusted only while intact: deleted, truncated, edited or planted files
are one-line errors where a stage finds or reads them; a write interrupted at any step reads as
not done (the stage runs again), never as damage."""

from __future__ import annotations

import json
import os

import pytest

from evoforge.storage import manifest as manifest_mod
from evoforge.storage.manifest import RunDirDamaged
from evoforge.storage.records import Evaluation, TaskVerdicts
from evoforge.storage.store import RoundStore
from tests.helpers.records import sampled_pair


@pytest.fixture
def store(tmp_path) -> RoundStore:
    s = RoundStore(tmp_path / "rounds" / "000")
    s.pairs.write([sampled_pair("x", "y", "a", 1), sampled_pair("z", "w", "b", 1)])
    s.update_metrics(0, pairs=2)
    s.train_done.write({"skipped": None})
    return s


def damaged(fn, *words: str) -> str:
    with pytest.raises(RunDirDamaged) as info:
        fn()
    msg = str(info.value)
    assert msg.startswith("run directory damaged: ") and "\n" not in msg
    assert all(w in msg for w in words), msg
    return msg


def test_intact_files_read_back(store):
    assert store.pairs.exists() and len(store.pairs.read()) == 2
    assert store.metrics.read()["pairs"] == 2 and store.training_skipped() is None
    assert not store.verdicts.exists()  # never written: not done yet, no error


@pytest.mark.parametrize(
    "tamper",
    [
        "delete",
        "empty",
        "truncate",
        "drop a line",
        "edit a value",
        "append a line",
        "same size edit",
    ],
)
def test_tampered_outputs_are_errors_where_found_and_where_read(store, tamper):
    p = store.pairs.path
    text = p.read_text()
    changed = {
        "empty": "",
        "truncate": text[: len(text) // 2],
        "drop a line": text.splitlines(keepends=True)[0],
        "edit a value": text.replace('"x"', '"X!"'),
        "append a line": text + json.dumps({"id": "c"}) + "\n",
        "same size edit": text.replace('"x"', '"q"'),
    }
    if tamper == "delete":
        p.unlink()
        words = ("pairs.jsonl", "is missing")
    else:
        p.write_text(changed[tamper])
        words = ("pairs.jsonl", "was changed after the run wrote it")
    damaged(store.pairs.exists, *words)  # the stage that wrote it: not "redo", an error
    damaged(store.pairs.read, *words)  # a later stage: never "0 pairs"


def test_damaged_manifest_and_planted_files(store, tmp_path):
    store.manifest.path.unlink()
    damaged(store.pairs.read, "pairs.jsonl", "cannot be trusted (manifest.json is missing)")
    fresh = RoundStore(tmp_path / "rounds" / "001")
    fresh.verdicts.path.write_text('{"task_id": "t"}\n')  # a file the run never wrote
    damaged(fresh.verdicts.exists, "verdicts.jsonl", "not written by this run")
    fresh.pairs.write([])
    damaged(fresh.verdicts.exists, "verdicts.jsonl", "is not in manifest.json")
    fresh.manifest.path.write_text("{not json")
    damaged(fresh.pairs.read, "manifest.json is not valid JSON")
    gone = RoundStore(tmp_path / "rounds" / "002")
    damaged(gone.pairs.read, "pairs.jsonl is missing")  # a whole round directory lost


def test_nested_train_files_are_covered(store):
    store.train_done.path.write_text('{"skipped": "no pairs"}\n')
    damaged(store.training_skipped, "train/done.json", "changed")


class Crash(Exception):
    pass


@pytest.mark.parametrize("step", [1, 2, 3])
def test_a_write_interrupted_at_any_step_is_not_damage(store, monkeypatch, step):
    """Crash at the first manifest save (step 1), the file's replacement (2) or the last
    manifest save (3): afterwards the file reads as before the write or as after it."""
    real = manifest_mod.atomic_write_text
    calls = {"n": 0}

    def crashing(path, text):
        calls["n"] += 1
        if calls["n"] == step:
            raise Crash
        real(path, text)

    old_metrics = store.metrics.read()
    monkeypatch.setattr(manifest_mod, "atomic_write_text", crashing)
    with pytest.raises(Crash):
        store.update_metrics(0, accepted=5)  # an overwrite
    calls["n"] = 0
    with pytest.raises(Crash):
        store.verdicts.write([TaskVerdicts(task_id="t", verdicts=[])])  # a first write
    monkeypatch.setattr(manifest_mod, "atomic_write_text", real)

    metrics = store.metrics.read()
    assert metrics == (old_metrics if step < 3 else old_metrics | {"accepted": 5})
    assert store.verdicts.exists() == (step == 3)
    store.verdicts.write([TaskVerdicts(task_id="t", verdicts=[])])  # the stage runs again
    assert store.verdicts.read() == [TaskVerdicts(task_id="t", verdicts=[])]
    store.update_metrics(0, accepted=6)
    assert store.metrics.read()["accepted"] == 6


def _swap(path, make) -> None:
    path.unlink()
    make(path)


def _link_to_copy(path) -> None:
    copy = path.with_name("copy-" + path.name)
    copy.write_bytes(path.read_bytes())
    _swap(path, lambda p: p.symlink_to(copy))


def _moved_and_linked(path) -> None:
    path.rename(path.with_name("moved"))
    path.symlink_to("moved")


def _entries(edit):
    def apply(path) -> None:
        entries = json.loads(path.read_text())
        edit(entries)
        path.write_text(json.dumps(entries))

    return apply


@pytest.mark.parametrize(
    "name,damage,words",
    [
        ("pairs.jsonl", lambda p: p.write_text(""), "was changed after the run wrote it"),
        ("pairs.jsonl", lambda p: p.write_bytes(p.read_bytes().replace(b"x", b"y")), "changed"),
        ("metrics.json", lambda p: p.unlink(), "metrics.json is missing"),
        ("pairs.jsonl", lambda p: _swap(p, lambda q: q.mkdir()), "is a directory, not the file"),
        ("pairs.jsonl", _link_to_copy, "is a symbolic link, not the file"),
        ("pairs.jsonl", lambda p: _swap(p, os.mkfifo), "is a special file"),  # never read
        ("train", _moved_and_linked, "train is a symbolic link, not a directory"),
        ("manifest.json", lambda p: p.write_text("{torn"), "manifest.json is not valid JSON"),
        ("manifest.json", lambda p: p.write_text("[]"), "is not a JSON object"),
        ("manifest.json", lambda p: p.write_text("{}"), "metrics.json was not written by this run"),
        ("manifest.json", lambda p: p.unlink(), "manifest.json is missing, and the files"),
        ("manifest.json", _link_to_copy, "manifest.json is a symbolic link"),
        (
            "manifest.json",
            _entries(lambda e: e.update({"/etc/passwd": {"sha256": "0", "bytes": 1}})),
            "records a path outside its directory",
        ),
        (
            "manifest.json",
            _entries(lambda e: e.update({"a\x00b": {"sha256": "0", "bytes": 1}})),
            "records a path outside its directory",
        ),
        ("manifest.json", _entries(lambda e: e.update({"x.json": 3})), "without its sha256"),
        ("verdicts.jsonl", lambda p: p.write_text("{}\n"), "verdicts.jsonl was not written"),
    ],
)
def test_check_run_finds_damage_in_files_no_stage_reads(store, tmp_path, name, damage, words):
    """Every recorded file is checked (and run files beside them), whatever replaced it."""
    from evoforge.storage.manifest import check_run

    base = RoundStore(tmp_path / "baseline")
    base.eval.write(Evaluation(round=-1, kept=True, heldout={}))
    assert check_run(tmp_path) == 4
    damage(store.dir / name)
    damaged(lambda: check_run(tmp_path), words)


def test_check_run_accepts_a_write_a_crash_left_pending(store, tmp_path, monkeypatch):
    from evoforge.storage.manifest import check_run

    real = manifest_mod.atomic_write_text
    calls = {"n": 0}

    def crash_at_the_file(path, text):
        calls["n"] += 1
        if calls["n"] == 2:
            raise Crash
        real(path, text)

    monkeypatch.setattr(manifest_mod, "atomic_write_text", crash_at_the_file)
    with pytest.raises(Crash):
        store.pairs.write([])
    assert check_run(tmp_path) == 3
    (tmp_path / "rounds" / "001").symlink_to(store.dir)
    damaged(lambda: check_run(tmp_path), "rounds/001 is a symbolic link, not a directory")
