"""Damage to a real run directory is refused before `resume` starts and before `report` reads:
every file every manifest records is checked, not only those the next stage reads.

The run is a tiny one killed mid-round (SIGKILL at the start of round 0's training, its pairs
written): the rest of the round reads none of samples.jsonl, verdicts.jsonl or the baseline's
files, so only the check before the resume can notice them damaged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from evoforge.cli import main
from evoforge.loops.manifest import check_run
from tests.helpers.runs import TINY_RUN, cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def killed_mid_round(ray_cluster, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("damage") / "run"
    proc = cli(
        ["run", *TINY_RUN, "rounds=1", f"run_dir={run_dir}", f"ray_address={ray_cluster.address}"],
        env={"EVOFORGE_DEBUG_DELAY": "train@0=300"},
        start_new_session=True,
    )
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("evoforge debug: pausing"):
            break
    else:
        raise AssertionError(f"the run ended before the pause: {''.join(seen[-30:])}")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return run_dir


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


DAMAGE = [
    ("rounds/000/samples.jsonl", lambda p: p.write_text(""), "was changed after the run wrote it"),
    ("rounds/000/verdicts.jsonl", _edit_a_byte, "was changed after the run wrote it"),
    ("baseline/eval.json", Path.unlink, "eval.json is missing"),
    ("rounds/000/samples.jsonl", lambda p: _replace(p, Path.mkdir), "is a directory"),
    ("rounds/000/pairs.jsonl", _symlink_to_a_copy, "is a symbolic link"),
    ("rounds/000/tasks.jsonl", lambda p: _replace(p, os.mkfifo), "is a special file"),
    ("rounds/000/manifest.json", lambda p: p.write_text('{"tasks.jsonl": {'), "not valid JSON"),
    ("rounds/000/manifest.json", lambda p: p.write_text("{}"), "is not in manifest.json"),
    ("rounds/000/manifest.json", Path.unlink, "manifest.json is missing"),
    ("rounds/000/manifest.json", lambda p: _replace(p, Path.mkdir), "is a directory"),
    (
        "rounds/000/manifest.json",
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
    killed_mid_round, tmp_path, capsys
):
    run_dir = tmp_path / "run"
    shutil.copytree(killed_mid_round, run_dir, symlinks=True)
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
        (run_dir / "rounds/000/elsewhere.txt").unlink(missing_ok=True)
        shutil.copy2(kept, target)
    assert main(["report", str(run_dir)]) == 0  # restored: the report is written
