"""Terminal progress: one bar per node with counts and rates; plain lines with ``--quiet``."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Progress:
    """Bars for long node work; ``quiet`` prints one line per finished step instead."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet or not sys.stderr.isatty()
        self._rich = None
        if not self.quiet:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(
                TextColumn("[bold]{task.description:<28}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=False,
            )
            self._rich.start()

    @contextmanager
    def bar(
        self, description: str, total: int, unit: str = "req"
    ) -> Iterator[Callable[[int], None]]:
        """A bar of ``total`` items; the yielded callback advances it by n."""
        start = time.time()
        done = 0
        task = (
            self._rich.add_task(description, total=max(total, 1), rate="") if self._rich else None
        )

        def advance(n: int) -> None:
            nonlocal done
            done += n
            rate = done / max(time.time() - start, 1e-9)
            if self._rich is not None:
                self._rich.update(task, advance=n, rate=f"{rate:.2f} {unit}/s")

        try:
            yield advance
        finally:
            took = time.time() - start
            if self._rich is not None:
                self._rich.update(task, completed=max(total, 1) if done >= total else done)
            else:
                print(
                    f"{description}: {done}/{total} {unit} in {took:.1f}s "
                    f"({done / max(took, 1e-9):.2f} {unit}/s)",
                    file=sys.stderr,
                    flush=True,
                )

    def line(self, text: str) -> None:
        if self._rich is not None:
            self._rich.console.print(text)
        else:
            print(text, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
