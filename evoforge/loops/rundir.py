"""The run directory: every payload of a run, written atomically (temp file + rename).

A node re-run after a crash finds its outputs either complete or absent, never half-written.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from evoforge.errors import EvoforgeError, write_failed

FORMAT_VERSION = 1


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a part."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise write_failed(path, e.strerror or str(e)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise write_failed(path, e.strerror or str(e)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]


class RunDir:
    """Paths and small helpers of one run directory (docs/architecture.md shows the layout)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None

    # layout
    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def meta_path(self) -> Path:
        return self.path / "meta.json"

    @property
    def graph_db(self) -> Path:
        return self.path / "graph.sqlite"

    @property
    def events_path(self) -> Path:
        return self.path / "events.jsonl"

    def round(self, n: int) -> Path:
        return self.path / "rounds" / f"{n:03d}"

    def model(self, n: int) -> Path:
        return self.path / "models" / f"round-{n:03d}"

    @property
    def baseline(self) -> Path:
        return self.path / "baseline"

    def eval_paths(self) -> list[Path]:
        """The baseline's eval.json, then each round's, those that exist."""
        paths = [self.baseline / "eval.json"] + sorted((self.path / "rounds").glob("*/eval.json"))
        return [p for p in paths if p.exists()]

    # lifecycle
    def create(self, config_yaml: str, run_id: str) -> None:
        if self.meta_path.exists():
            raise EvoforgeError(
                f"run directory {self.path} already holds a run; "
                f"use `evoforge resume {self.path}` or pick another run_dir"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self.lock()
        atomic_write_text(self.config_path, config_yaml)
        write_json(
            self.meta_path,
            {
                "format_version": FORMAT_VERSION,
                "run_id": run_id,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "finished": False,
            },
        )

    def meta(self) -> dict[str, Any]:
        if not self.meta_path.is_file():
            raise EvoforgeError(
                f"{self.path} is not an evoforge run directory (no meta.json); "
                "pass the directory a run printed at its start"
            )
        meta = read_json(self.meta_path)
        if meta.get("format_version") != FORMAT_VERSION:
            raise EvoforgeError(
                f"{self.path} was written by an incompatible evoforge (format "
                f"{meta.get('format_version')}, this one reads {FORMAT_VERSION}); "
                "resume it with the version that made it, or start a new run"
            )
        return meta

    def set_meta(self, **fields: Any) -> None:
        meta = self.meta()
        meta.update(fields)
        write_json(self.meta_path, meta)

    def lock(self) -> None:
        """Hold an exclusive lock for this process's lifetime: two runs on one directory would
        corrupt each other's files."""
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise EvoforgeError(
                f"run directory {self.path} is in use by another evoforge process; "
                "wait for it to finish or stop it first"
            ) from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def event(self, **record: Any) -> None:
        """Append one line to events.jsonl (one per finished node)."""
        record.setdefault("time", round(time.time(), 3))
        line = (json.dumps(record) + "\n").encode("utf-8")
        # One O_APPEND write per line: a crash leaves whole lines, never half of one.
        fd = os.open(self.events_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if os.write(fd, line) != len(line):
                raise OSError(errno.ENOSPC, "short write", str(self.events_path))
        finally:
            os.close(fd)
