"""The run directory: every payload of a run, written atomically (temp file + rename).

A node re-run after a crash finds its outputs either complete or absent, never half-written.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from evoforge.config.yaml_limits import invisible, shown
from evoforge.errors import EvoforgeError, write_failed

FORMAT_VERSION = 2
"""2: round files carry a manifest, the run id is unique, meta.json records the config."""


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


def check_run_dir(path: str | Path) -> None:
    """A one-line error, before anything is written, when ``path`` cannot hold a new run: its
    name holds a control or invisible format character (a right-to-left override makes a name
    read as another), it is a file, lies under a file, already holds a run or other files, or
    cannot be written."""
    p = Path(path)
    bad = invisible(str(p))
    if bad:
        raise EvoforgeError(f"run_dir {shown(str(p))} holds {bad}; pick a run_dir of plain text")
    try:
        if p.is_symlink() and not p.exists():
            raise EvoforgeError(f"run_dir '{p}' is a broken symbolic link; pick another run_dir")
        if p.exists() and not p.is_dir():
            raise EvoforgeError(f"run_dir '{p}' is a file, not a directory; pick another run_dir")
        if (p / "meta.json").exists():
            raise EvoforgeError(
                f"run directory {p} already holds a run; "
                f"use `evoforge resume {p}` or pick another run_dir"
            )
        base = p.absolute()
        while not base.exists() and base.parent != base:
            base = base.parent
    except OSError as e:  # e.g. a parent without search permission
        raise EvoforgeError(
            f"run_dir '{p}' cannot be used ({e.strerror}); pick another run_dir"
        ) from None
    if not base.is_dir():
        raise EvoforgeError(
            f"run_dir '{p}' lies under '{base}', which is a file; pick another run_dir"
        )
    if not writable_dir(base):
        raise EvoforgeError(
            f"run_dir '{p}' cannot be written ('{base}' is read-only or not writable); "
            "pick a writable place for run_dir"
        )
    if base == p.absolute() and any(p.iterdir()):
        raise EvoforgeError(
            f"run_dir '{p}' holds other files (it is not a run directory), which a run could "
            "overwrite; pick a new or empty directory"
        )


def writable_dir(path: Path) -> bool:
    """Whether files can be created in the directory ``path`` (a read-only mount counts as not
    writable even for root, whom permission bits do not stop)."""
    try:
        read_only = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False
    return not read_only and os.access(path, os.W_OK | os.X_OK)


def new_run_id(path: str | Path) -> str:
    """A run id unique on a shared cluster: the directory's name and a random suffix, so two runs
    in directories with the same name never share actor names."""
    return f"{Path(path).absolute().name}-{secrets.token_hex(3)}"


class RunDir:
    """Paths and small helpers of one run directory (docs/architecture.md shows the layout)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None
        self._events_repaired = False

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

    # lifecycle
    def create(self, config_yaml: str, run_id: str) -> None:
        """Start a run here: config.yaml, and meta.json recording the run id and the config (a
        resume compares config.yaml with it)."""
        check_run_dir(self.path)
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
                "config": yaml.safe_load(config_yaml),
            },
        )

    def meta(self) -> dict[str, Any]:
        if not self.meta_path.is_file():
            raise EvoforgeError(
                f"{self.path} is not an evoforge run directory (no meta.json); "
                "pass the directory a run printed at its start"
            )
        try:
            meta = read_json(self.meta_path)
        except (ValueError, UnicodeDecodeError):
            raise EvoforgeError(
                f"{self.meta_path} is not valid JSON; the run directory is damaged (restore "
                "meta.json from a copy, or start a new run)"
            ) from None
        if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
            meta = meta if isinstance(meta, dict) else {}
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
        if not writable_dir(self.path):
            raise EvoforgeError(
                f"run directory {self.path} cannot be written (read-only or not writable); "
                "make it writable, or copy it somewhere writable and resume the copy"
            )
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

    def repair_events(self) -> int:
        """Cut a partial last line off events.jsonl (a write torn by a crash or a full disk), so
        that the next line starts on a line of its own; returns the bytes removed."""
        try:
            data = self.events_path.read_bytes()
        except FileNotFoundError:
            return 0
        keep = data.rfind(b"\n") + 1
        if keep < len(data):
            with open(self.events_path, "r+b") as f:
                f.truncate(keep)
                f.flush()
                os.fsync(f.fileno())
        return len(data) - keep

    def event(self, **record: Any) -> None:
        """Append one line to events.jsonl (one per finished node)."""
        if not self._events_repaired:
            self.repair_events()
            self._events_repaired = True
        record.setdefault("time", round(time.time(), 3))
        line = (json.dumps(record) + "\n").encode("utf-8")
        # One O_APPEND write per line; a short or failed write is cut off again at once.
        fd = os.open(self.events_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        size = os.fstat(fd).st_size
        try:
            if os.write(fd, line) != len(line):
                raise OSError(errno.ENOSPC, "short write", str(self.events_path))
        except OSError as e:
            with contextlib.suppress(OSError):  # if this fails too, the next event() repairs
                os.ftruncate(fd, size)
            self._events_repaired = False
            raise write_failed(self.events_path, e.strerror or str(e)) from None
        finally:
            os.close(fd)
