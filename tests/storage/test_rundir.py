"""The run directory: atomic writes under failing storage, the lock, the format version."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess

import pytest

from evoforge.cli import main
from evoforge.errors import StorageError, storage_error
from evoforge.storage import rundir
from evoforge.storage.rundir import RunDir, atomic_write_text, read_json, read_jsonl, write_json
from tests.helpers.disk import fill


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
    assert (
        len(err) == 1
        and f"incompatible evoforge (format 0, this one reads {rundir.FORMAT_VERSION})" in err[0]
    )


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


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory on a read-only bind mount (root ignores permission bits, not this)."""
    src, ro = tmp_path / "src", tmp_path / "ro"
    src.mkdir()
    (src / "inside").mkdir()
    ro.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a read-only bind mount needs root")
    ok = subprocess.run(["mount", "--bind", str(src), str(ro)], capture_output=True).returncode == 0
    if (
        not ok
        or subprocess.run(
            ["mount", "-o", "remount,ro,bind", str(ro)], capture_output=True
        ).returncode
    ):
        subprocess.run(["umount", "-l", str(ro)], check=False)
        pytest.skip("cannot make a read-only bind mount here")
    yield ro
    subprocess.run(["umount", "-l", str(ro)], check=False)


def test_run_dir_that_cannot_hold_a_run_is_one_line_before_anything(
    tmp_path, read_only_dir, capsys
):
    """Techniques: a file, a path under a file, a broken symlink, a read-only mount (itself, a
    directory in it, a path below it), an existing run; the config is valid in every case."""
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    existing = RunDir(tmp_path / "existing")
    existing.create("rounds: 1\n", "existing-abc")
    existing.unlock()
    cases = [
        (afile, "is a file, not a directory"),
        (afile / "sub" / "run", "lies under"),
        (dangling, "broken symbolic link"),
        (read_only_dir, "cannot be written"),
        (read_only_dir / "inside", "cannot be written"),
        (read_only_dir / "new" / "run", "cannot be written"),
        (existing.path, "already holds a run"),
        (tmp_path, "holds other files"),
    ]
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for path, message in cases:
        assert main(["run", "model=tiny", "env=parity", f"run_dir={path}"]) == 2, path
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], (path, err)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written anywhere
    assert afile.read_text() == "keep me"


def test_resume_of_a_read_only_run_directory_is_one_line(tmp_path, read_only_dir, capsys):
    rd = RunDir(tmp_path / "src" / "inside" / "run")
    rd.create("rounds: 1\n", "run-abc")
    rd.unlock()
    assert main(["resume", str(read_only_dir / "inside" / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot be written (read-only or not writable)" in err[0]


def test_partial_last_event_line_is_repaired_before_appending(tmp_path):
    rd = RunDir(tmp_path)
    rd.event(node="a")
    with open(rd.events_path, "ab") as f:
        f.write(b'{"node": "torn", "sec')  # a crash in the middle of a line
    RunDir(tmp_path).event(node="b")  # a new process (a resume) appends
    assert [e["node"] for e in read_jsonl(rd.events_path)] == ["a", "b"]
    with open(rd.events_path, "ab") as f:
        f.write('{"node": "é'.encode()[:-1])  # torn inside a multi-byte character
    assert RunDir(tmp_path).repair_events() > 0
    assert [e["node"] for e in read_jsonl(rd.events_path)] == ["a", "b"]


def test_a_short_event_write_is_cut_off_at_once(tmp_path, monkeypatch):
    rd = RunDir(tmp_path)
    rd.event(node="a")
    real = os.write
    monkeypatch.setattr(rundir.os, "write", lambda fd, data: real(fd, data[:7]))
    with pytest.raises(StorageError):
        rd.event(node="b")
    monkeypatch.setattr(rundir.os, "write", real)
    rd.event(node="c")
    assert [e["node"] for e in read_jsonl(rd.events_path)] == ["a", "c"]


def test_run_ids_are_unique_per_run_and_kept(tmp_path):
    a, b = rundir.new_run_id(tmp_path / "x" / "run"), rundir.new_run_id(tmp_path / "y" / "run")
    assert a != b and a.startswith("run-") and b.startswith("run-")
    rd = RunDir(tmp_path / "x" / "run")
    rd.create("rounds: 1\n", a)
    rd.unlock()
    assert RunDir(rd.path).meta()["run_id"] == a


def _started(tmp_path, *overrides: str) -> RunDir:
    from evoforge.config import load_config
    from evoforge.config.loader import dump_yaml

    rd = RunDir(tmp_path / "run")
    rd.create(dump_yaml(load_config(None, ["model=tiny", *overrides])), "run-abc")
    rd.unlock()
    return rd


def test_resume_refuses_an_edited_config_naming_the_keys(tmp_path, capsys):
    rd = _started(tmp_path, "tasks_per_round=6")
    text = rd.config_path.read_text()
    rd.config_path.write_text(
        text.replace("tasks_per_round: 6", "tasks_per_round: 8").replace(
            "children: 3", "children: 1"
        )
    )
    assert main(["resume", str(rd.path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "differs from the config the run started with" in err[0]
    assert "search.children (3 -> 1)" in err[0] and "tasks_per_round (6 -> 8)" in err[0]
    assert main(["resume", str(rd.path), "tasks_per_round=6"]) == 2
    assert "'tasks_per_round' cannot change when a run resumes" in capsys.readouterr().err
    rd.config_path.write_text("rounds: [\n")
    assert main(["resume", str(rd.path)]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    rd.config_path.unlink()
    assert main(["resume", str(rd.path)]) == 2
    assert "run directory damaged" in capsys.readouterr().err


def test_resume_accepts_safe_keys_and_records_them(tmp_path):
    from evoforge.driver.runner import resume_config

    rd = _started(tmp_path)
    rd.config_path.write_text(rd.config_path.read_text().replace("threads: 0", "threads: 2"))
    config, changed = resume_config(rd, rd.meta(), ("verify_timeout_s=5",))
    assert config.serving.threads == 2 and config.verify_timeout_s == 5.0
    assert changed == ["serving.threads (0 -> 2)", "verify_timeout_s (60.0 -> 5.0)"]


def test_a_full_disk_under_safetensors_or_torch_save_is_a_storage_error(small_disk):
    """The trainer's writes go through libraries in Rust (safetensors) and C++ (torch.save),
    whose exceptions are not OSError: a full disk under them is still the one-line error."""
    import torch
    from safetensors.torch import save_file

    fill(small_disk)
    big = {"w": torch.zeros(4 << 20, dtype=torch.uint8)}
    for write in (save_file, torch.save):
        with pytest.raises(Exception) as caught:  # noqa: PT011 - the point is which types come out
            write(big, str(small_disk / "weights.bin"))
        assert isinstance(storage_error(caught.value), StorageError), repr(caught.value)


@pytest.mark.parametrize(
    "name,message",
    [
        ("report\u202egnp.exe", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("run\u200b", "U+200B ZERO WIDTH SPACE"),
        ("run\x9b31m", "a control character (U+009B)"),
        ("run\nx", "a control character (U+000A)"),
    ],
)
def test_a_run_dir_with_control_or_bidi_characters_is_refused(tmp_path, name, message):
    """Also where no config loader checked the value first (a Config built in Python)."""
    from evoforge.errors import EvoforgeError

    with pytest.raises(EvoforgeError) as info:
        RunDir(tmp_path / "runs" / name).create("rounds: 1\n", "run-abc")
    msg = str(info.value)
    assert message in msg and "pick a run_dir of plain text" in msg and msg.isprintable(), msg
    assert list(tmp_path.iterdir()) == []
