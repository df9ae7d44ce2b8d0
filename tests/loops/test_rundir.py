"""The run directory: atomic writes under failing storage, the lock, the format version."""

from __future__ import annotations

import errno
import json
import os
import sqlite3

import pytest

from evoforge.cli import main
from evoforge.errors import StorageError, storage_error
from evoforge.loops import rundir
from evoforge.loops.rundir import RunDir, atomic_write_text, read_json, read_jsonl, write_json


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EROFS])
def test_failed_write_keeps_the_old_file_and_says_how_to_go_on(tmp_path, monkeypatch, code):
    target = tmp_path / "state.json"
    write_json(target, {"good": 1})

    def failing_fsync(fd):  # the disk fills up (or turns read-only) in the middle of a write
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(rundir.os, "fsync", failing_fsync)
    with pytest.raises(StorageError) as info:
        write_json(target, {"good": 2})
    msg = str(info.value)
    assert "\n" not in msg and str(target) in msg and os.strerror(code) in msg
    assert "evoforge resume" in msg
    assert read_json(target) == {"good": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temp file left


def test_write_into_an_unwritable_place_is_a_storage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="cannot write"):
        atomic_write_text(blocker / "sub" / "a.json", "{}")  # a file where a directory must be


def test_storage_errors_from_anywhere_are_recognised():
    assert storage_error(OSError(errno.ENOSPC, "No space left on device", "/x/y"))
    assert "No space left" in str(storage_error(OSError(errno.ENOSPC, "No space left on device")))
    assert storage_error(sqlite3.OperationalError("database or disk is full"))
    assert storage_error(OSError(errno.ENOENT, "No such file")) is None
    assert storage_error(ValueError("bug")) is None


def test_events_are_whole_lines(tmp_path):
    rd = RunDir(tmp_path)
    for i in range(50):
        rd.event(node="n", i=i)
    assert [e["i"] for e in read_jsonl(rd.events_path)] == list(range(50))


def test_incompatible_format_version_is_refused(tmp_path, capsys):
    rd = RunDir(tmp_path / "old")
    rd.create("rounds: 1\n", "old")
    rd.unlock()
    meta = read_json(rd.meta_path)
    meta["format_version"] = 0
    rd.meta_path.write_text(json.dumps(meta))
    assert main(["resume", str(rd.path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "incompatible evoforge (format 0, this one reads 1)" in err[0]


def test_second_process_on_a_locked_directory_is_refused(tmp_path, capsys):
    rd = RunDir(tmp_path / "busy")
    rd.create("rounds: 1\n", "busy")  # holds the lock, like a live run
    try:
        assert main(["resume", str(rd.path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "is in use by another evoforge process" in err[0]
        assert main(["run", "model=tiny", f"run_dir={rd.path}"]) == 2
        assert "already holds a run" in capsys.readouterr().err
    finally:
        rd.unlock()
    assert read_json(rd.meta_path)["finished"] is False  # nothing was touched
