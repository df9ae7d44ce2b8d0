"""Filling a small disk (the ``small_disk`` tmpfs fixture) to its last byte."""

from __future__ import annotations

import errno
from pathlib import Path


def fill(disk: Path) -> Path:
    """Write zeros to ``disk/filler`` until the disk is full; the filler, to free it again."""
    filler = disk / "filler"
    chunk = b"\0" * (1 << 20)
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC
    return filler
