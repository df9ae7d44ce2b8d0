"""The manifest of a round directory: the sha256 and size of every file its stages wrote.

A stage decides that its work is done when it finds its output present; a later stage trusts
what it reads. Both go through :class:`Manifest`, so a file that was deleted, truncated or edited
after the run wrote it is a one-line error (never, say, an empty pairs file read as "0 pairs"),
and a run directory is resumed only while it is intact.

Each write records the new hash first (marked pending, with the hash of what the file held
before), then replaces the file atomically, then clears the mark. A crash between the steps
leaves the file as it was before the write, which the pending entry still accepts: the write
simply did not happen, and the stage that made it runs again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from evoforge.errors import EvoforgeError
from evoforge.loops.rundir import atomic_write_text

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
        if not self.path.exists():
            return {}
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise self._damaged(NAME, "is not valid JSON") from None
        if not isinstance(entries, dict):
            raise self._damaged(NAME, "is not a JSON object")
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
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            data = None
        except IsADirectoryError:
            raise self._damaged(rel, "is a directory, not a file") from None
        if entry is None:
            if data is None:
                return None
            why = "is not in manifest.json" if self.path.exists() else "manifest.json is missing"
            raise self._damaged(rel, f"was not written by this run, or cannot be trusted ({why})")
        pending = entry.get("pending", False)
        if data is None:
            if pending and entry.get("previous") is None:
                return None
            raise self._damaged(rel, "is missing (the run wrote it)")
        digest = _sha256(data)
        if digest == entry.get("sha256") or (pending and digest == entry.get("previous")):
            return data.decode("utf-8")
        raise self._damaged(
            rel,
            f"was changed after the run wrote it ({len(data)} bytes, {entry.get('bytes')} written)",
        )

    def missing(self, path: Path) -> RunDirDamaged:
        """The error for a file a step needs that the run never wrote (or that is gone with the
        manifest entry that recorded it)."""
        return self._damaged(self._rel(path), "is missing (an earlier step of the run writes it)")

    def exists(self, path: Path) -> bool:
        """Whether the run wrote ``path`` (and it is intact: a damaged file is an error)."""
        return self.read_text(path) is not None
