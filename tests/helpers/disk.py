"""A small disk that can really fill up (the ``small_disk`` tmpfs fixture), filled to its last
byte."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
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


@contextlib.contextmanager
def small_tmpfs(disk: Path) -> Iterator[str | None]:
    """Mount a 128 MiB tmpfs on the new directory ``disk`` (a disk that can really fill up) for
    the block; yields None when mounted, else why not (mounting needs root)."""
    disk.mkdir()
    if os.geteuid() != 0:
        yield "mounting a small tmpfs needs root"
        return
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=128m", "tmpfs", str(disk)], capture_output=True
    )
    if mount.returncode != 0:
        yield f"cannot mount a tmpfs here: {mount.stderr.decode().strip()}"
        return
    try:
        yield None
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
