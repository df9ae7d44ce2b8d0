"""Damage to a real run directory is refused before `resume` starts and before `report` reads:
every file every manifest records is checked, not only those the next stage reads.

The run is a tiny one killed mid-round (conftest's killed_at_train1: SIGKILL at the start of
round 1's training, its pairs written, round 0 finished): the rest of the round reads neither its
samples.jsonl nor its verdicts.jsonl, nor round 0's, so only the check before the resume can
notice them damaged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from evoforge.cli import main
from evoforge.storage.manifest import check_run

pytestmark = pytest.mark.slow


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` with what it holds: nothing may change when damage is refused."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_symlink():
            out[rel] = "link:" + os.readlink(p)
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[rel] = "dir" if p.is_dir() else "special"
    return out


def _replace(path: Path, make: Callable[[Path], None]) -> None:
    path.unlink()
    make(path)


def _symlink_to_a_copy(path: Path) -> None:
    copy = path.with_name("elsewhere.txt")
    copy.write_bytes(path.read_bytes())  # the same bytes: only the link itself is wrong
    _replace(path, lambda p: p.symlink_to(copy))


def _edit_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _manifest(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        entries = json.loads(path.read_text())
        edit(entries)
        path.write_text(json.dumps(entries))

    return apply


DAMAGE = [  # round 1 was killed mid-way, round 0 and the baseline had finished
    ("rounds/001/samples.jsonl", lambda p: p.write_text(""), "was changed after the run wrote it"),
    ("rounds/000/verdicts.jsonl", _edit_a_byte, "was changed after the run wrote it"),
    ("baseline/eval.json", Path.unlink, "eval.json is missing"),
    ("rounds/001/samples.jsonl", lambda p: _replace(p, Path.mkdir), "is a directory"),
    ("rounds/001/pairs.jsonl", _symlink_to_a_copy, "is a symbolic link"),
    ("rounds/001/tasks.jsonl", lambda p: _replace(p, os.mkfifo), "is a special file"),
    ("rounds/001/manifest.json", lambda p: p.write_text('{"tasks.jsonl": {'), "not valid JSON"),
    ("rounds/001/manifest.json", lambda p: p.write_text("{}"), "is not in manifest.json"),
    ("rounds/001/manifest.json", Path.unlink, "manifest.json is missing"),
    ("rounds/001/manifest.json", lambda p: _replace(p, Path.mkdir), "is a directory"),
    (
        "rounds/001/manifest.json",
        _manifest(lambda e: e.update({"../../../etc/passwd": {"sha256": "0" * 64, "bytes": 1}})),
        "records a path outside its directory",
    ),
    (
        "baseline/manifest.json",
        _manifest(lambda e: e.update({"eval.json": e["eval.json"] | {"sha256": "0" * 64}})),
        "eval.json was changed after the run wrote it",
    ),
]


def test_damage_anywhere_in_a_killed_run_stops_resume_and_report_before_anything(
    killed_at_train1, tmp_path, capsys
):
    run_dir = tmp_path / "run"
    shutil.copytree(killed_at_train1, run_dir, symlinks=True)
    assert check_run(run_dir) > 10  # the intact run passes, its pending writes included
    for name, damage, message in DAMAGE:
        target = run_dir / name
        kept = tmp_path / "kept"
        shutil.copy2(target, kept)
        damage(target)
        before = snapshot(run_dir)
        for command in ("resume", "report"):
            assert main([command, str(run_dir)]) == 2, (name, command)
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and err[0].startswith("error: run directory damaged: "), err
            assert message in err[0] and "restore it from a copy" in err[0], (name, err)
        assert snapshot(run_dir) == before, name  # nothing written, nothing repaired
        if target.is_dir() and not target.is_symlink():
            target.rmdir()
        else:
            target.unlink(missing_ok=True)
        target.with_name("elsewhere.txt").unlink(missing_ok=True)
        shutil.copy2(kept, target)
    assert main(["report", str(run_dir)]) == 0  # restored: the report is written
