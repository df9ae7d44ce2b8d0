"""The manifest of a round directory: the sha256 and size of every file its stages wrote.

A stage decides that its work is done when it finds its output present; a later stage trusts
what it reads. Both go through :class:`Manifest`, so a file that was deleted, truncated or edited
after the run wrote it is a one-line error (never, say, an empty pairs file read as "0 pairs"),
and a run directory is resumed only while it is intact.

Each write records the new hash first (marked pending, with the hash of what the file held
before), then replaces the file atomically, then clears the mark. A crash between the steps
leaves the file as it was before the write, which the pending entry still accepts: the write
simply did not happen, and the stage that made it runs again.

Before a resume starts and before a report reads a run, :func:`check_run` checks every file that
every manifest of the run directory records (a stage that never reads a file would not notice it
damaged), so that a damaged run directory is refused before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path, PurePosixPath
from typing import Any

from evoforge.errors import EvoforgeError
from evoforge.storage.rundir import atomic_write_text

NAME = "manifest.json"


class RunDirDamaged(EvoforgeError):
    """A file of a run directory is missing, or differs from what the run wrote."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Manifest:
    """The manifest of one directory; paths in it are relative to that directory."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.path = self.dir / NAME

    def _damaged(self, rel: str, what: str) -> RunDirDamaged:
        return RunDirDamaged(
            f"run directory damaged: {self.dir / rel} {what}; restore it from a copy of the run "
            "directory, or start a new run"
        )

    def _entries(self) -> dict[str, Any]:
        kind = _kind(self.path)
        if kind is None:
            return {}
        if kind != "a file":
            raise self._damaged(NAME, f"is {kind}, not the file the run wrote")
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise self._damaged(NAME, "is not valid JSON") from None
        if not isinstance(entries, dict):
            raise self._damaged(NAME, "is not a JSON object")
        for rel, entry in entries.items():
            parts = PurePosixPath(rel).parts
            if rel.startswith("/") or not parts or ".." in parts or rel == NAME or "\0" in rel:
                raise self._damaged(NAME, f"records a path outside its directory ({rel!r:.80})")
            if not (
                isinstance(entry, dict)
                and isinstance(entry.get("sha256"), str)
                and isinstance(entry.get("bytes"), int)
            ):
                raise self._damaged(NAME, f"records {rel!r:.80} without its sha256 and size")
        return entries

    def _save(self, entries: dict[str, Any]) -> None:
        atomic_write_text(self.path, json.dumps(entries, indent=1, sort_keys=True) + "\n")

    def _rel(self, path: Path) -> str:
        return Path(path).relative_to(self.dir).as_posix()

    def write_text(self, path: Path, text: str) -> None:
        """Replace ``path`` with ``text``, recording it in the manifest (see the module's doc)."""
        rel, data = self._rel(path), text.encode("utf-8")
        entries = self._entries()
        before = _sha256(path.read_bytes()) if path.is_file() else None
        entry = {"sha256": _sha256(data), "bytes": len(data)}
        entries[rel] = entry | {"pending": True, "previous": before}
        self._save(entries)
        atomic_write_text(path, text)
        entries[rel] = entry
        self._save(entries)

    def read_text(self, path: Path) -> str | None:
        """The text of ``path`` if the run wrote it and it is intact; None if it was never
        written (or its first write was interrupted); RunDirDamaged otherwise."""
        rel = self._rel(path)
        entry = self._entries().get(rel)
        if entry is None:
            if _kind(self.dir / rel) is None:
                return None
            why = "is not in manifest.json" if self.path.exists() else "manifest.json is missing"
            raise self._damaged(rel, f"was not written by this run, or cannot be trusted ({why})")
        data = self._intact(rel, entry)
        return None if data is None else data.decode("utf-8")

    def _intact(self, rel: str, entry: dict[str, Any]) -> bytes | None:
        """The bytes of ``rel`` when they are what ``entry`` records; None when a first write of
        it was interrupted; RunDirDamaged otherwise. A symbolic link, a directory or another
        special file in its place is damage (reading a FIFO would block)."""
        path, pending = self.dir / rel, entry.get("pending", False)
        for parent in reversed(PurePosixPath(rel).parents[:-1]):  # e.g. train/ of train/done.json
            if _kind(self.dir / parent) not in (None, "a directory"):
                raise self._damaged(str(parent), f"is {_kind(self.dir / parent)}, not a directory")
        kind = _kind(path)
        if kind is None:
            if pending and entry.get("previous") is None:
                return None
            raise self._damaged(rel, "is missing (the run wrote it)")
        if kind != "a file":
            raise self._damaged(rel, f"is {kind}, not the file the run wrote")
        size = path.lstat().st_size
        if size != entry["bytes"] and not pending:  # no need to read a changed file
            raise self._damaged(
                rel, f"was changed after the run wrote it ({size} bytes, {entry['bytes']} written)"
            )
        try:
            data = path.read_bytes()
        except OSError as e:
            raise self._damaged(rel, f"cannot be read ({e.strerror})") from None
        digest = _sha256(data)
        if digest == entry["sha256"] or (pending and digest == entry.get("previous")):
            return data
        raise self._damaged(
            rel,
            f"was changed after the run wrote it ({len(data)} bytes, {entry['bytes']} written)",
        )

    def check(self) -> int:
        """Check every file this manifest records (RunDirDamaged for the first that is not as
        the run wrote it) and every run file beside them that it does not record; the number of
        files checked. A check that races a live run's write reads the manifest again."""
        for attempt in range(3):
            before = _stamp(self.path)
            try:
                entries = self._entries()
                for rel, entry in sorted(entries.items()):
                    self._intact(rel, entry)
                for rel in _unrecorded(self.dir, entries):
                    self.read_text(self.dir / rel)  # the error that names it
                return len(entries)
            except RunDirDamaged:
                if attempt == 2 or _stamp(self.path) == before:
                    raise
        raise AssertionError("unreachable")

    def missing(self, path: Path) -> RunDirDamaged:
        """The error for a file a step needs that the run never wrote (or that is gone with the
        manifest entry that recorded it)."""
        return self._damaged(self._rel(path), "is missing (an earlier step of the run writes it)")

    def exists(self, path: Path) -> bool:
        """Whether the run wrote ``path`` (and it is intact: a damaged file is an error)."""
        return self.read_text(path) is not None


def _kind(path: Path) -> str | None:
    """What is at ``path`` without following a link: "a file", "a directory", "a symbolic
    link", "a special file", or None when nothing is."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "a symbolic link" if stat.S_ISLNK(mode) else "a special file"


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


_RUN_FILE_SUFFIXES = (".json", ".jsonl")


def _unrecorded(directory: Path, entries: dict[str, Any]) -> list[str]:
    """Run files (``*.json``, ``*.jsonl``, in the directory or its ``train/``) that a manifest
    does not record: written by something else, or recorded by a manifest that was emptied."""
    found = []
    for sub in (directory, directory / "train"):
        if _kind(sub) != "a directory":
            continue
        for p in sub.iterdir():
            rel = p.relative_to(directory).as_posix()
            if (
                p.name.endswith(_RUN_FILE_SUFFIXES)
                and not p.name.startswith(".")
                and rel != NAME
                and rel not in entries
            ):
                found.append(rel)
    return sorted(found)


def round_dirs(run_dir: Path) -> list[Path]:
    """The directories of a run that keep a manifest: the baseline's and each round's."""
    rounds = Path(run_dir) / "rounds"
    dirs = [Path(run_dir) / "baseline"]
    if _kind(rounds) == "a directory":
        dirs += sorted(d for d in rounds.iterdir() if d.name.isdigit())
    return [d for d in dirs if _kind(d) is not None]


def check_run(run_dir: str | Path) -> int:
    """Check every file every manifest of ``run_dir`` records, and that nothing replaced a
    round directory; RunDirDamaged (one line naming the file and the fix) for the first that is
    not as the run wrote it. Returns the number of files checked."""
    checked = 0
    for d in round_dirs(Path(run_dir)):
        m = Manifest(d)
        if _kind(d) != "a directory":
            raise m._damaged("", f"is {_kind(d)}, not a directory")
        if _kind(m.path) is None and _unrecorded(d, {}):
            raise m._damaged(NAME, "is missing, and the files beside it cannot be trusted")
        checked += m.check()
    return checked
