"""Terminal progress: one bar per node with counts and rates; plain lines without a terminal.

Without a terminal (``--quiet``, a log file, CI) long work still shows: while a node or a bar is
running, a plain line says what it is doing every ``interval`` seconds in which nothing else was
printed. Output never ends a run: a closed or broken stream, or a character the stream cannot
encode, costs the line, not the work.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def say(text: str, stream=None) -> bool:
    """Print one line to ``stream`` (stderr); whether it was printed. Characters the stream
    cannot encode are escaped; a closed or broken stream is not an error."""
    stream = stream or sys.stderr
    try:
        try:
            print(text, file=stream, flush=True)
        except UnicodeEncodeError:
            enc = getattr(stream, "encoding", None) or "ascii"
            safe = text.encode(enc, "backslashreplace").decode(enc, "replace")
            print(safe, file=stream, flush=True)
        return True
    except (OSError, ValueError):  # EPIPE/EIO, or the stream was closed
        _discard(stream)
        return False


def _discard(stream) -> None:
    """Send what is left of a broken stream to /dev/null, so that flushing it again (at exit,
    too) cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class Progress:
    """Bars for long node work; ``quiet`` prints one line per finished step instead, and a
    heartbeat line every ``interval`` seconds of work that prints nothing else."""

    def __init__(self, quiet: bool = False, interval: float = 10.0) -> None:
        self.quiet = quiet or not _isatty(sys.stderr)
        self.interval = interval
        self._rich = None
        self._lock = threading.Lock()
        self._activity: str | None = None
        self._activity_start = 0.0
        self._status: Callable[[], str] | None = None
        self._last_output = time.monotonic()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        if not self.quiet:
            self._start_rich()
        else:
            self._heartbeat = threading.Thread(
                target=self._beat, name="evoforge-progress", daemon=True
            )
            self._heartbeat.start()

    def _start_rich(self) -> None:
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

    # -- the heartbeat (no terminal) ------------------------------------------------------
    def _beat(self) -> None:
        while not self._stop.wait(min(self.interval, 1.0)):
            with self._lock:
                now = time.monotonic()
                if self._activity is None or now - self._last_output < self.interval:
                    continue
                status = self._status() if self._status is not None else "working"
                text = f"{self._activity}: {status}, {now - self._activity_start:.0f}s"
            self._print(text)

    @contextmanager
    def activity(self, label: str) -> Iterator[None]:
        """Work named ``label`` (a graph node) is running: without a terminal, the heartbeat
        names it while it prints nothing else."""
        with self._lock:
            self._activity, self._activity_start = label, time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                self._activity, self._status = None, None

    # -- bars and lines -------------------------------------------------------------------
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

        def status() -> str:
            took = max(time.time() - start, 1e-9)
            return f"{description} {done}/{total} {unit} ({done / took:.2f} {unit}/s)"

        def advance(n: int) -> None:
            nonlocal done
            done += n
            rate = done / max(time.time() - start, 1e-9)
            if self._rich is not None:
                with contextlib.suppress(Exception):  # a bar must never end a run
                    self._rich.update(task, advance=n, rate=f"{rate:.2f} {unit}/s")

        with self._lock:
            outer, self._status = self._status, status
        try:
            yield advance
        finally:
            with self._lock:
                self._status = outer
            took = time.time() - start
            if self._rich is not None:
                with contextlib.suppress(Exception):
                    self._rich.update(task, completed=max(total, 1) if done >= total else done)
            else:
                self._print(
                    f"{description}: {done}/{total} {unit} in {took:.1f}s "
                    f"({done / max(took, 1e-9):.2f} {unit}/s)"
                )

    @contextmanager
    def watch(self, description: str, read: Callable[[], str | None]) -> Iterator[None]:
        """Work whose progress another process knows (the trainer actor): ``read()`` says how far
        it is, or None. Without a terminal the heartbeat prints it; with one, a line under the
        bars shows it, refreshed every second."""
        with self._lock:
            outer = self._status
            self._status = lambda: _safe(read) or "working"
        stop = threading.Event()
        poller = None
        if self._rich is not None:
            task = self._rich.add_task(description, total=None, rate="")

            def poll() -> None:
                while not stop.wait(1.0):
                    with contextlib.suppress(Exception):  # a display must never end a run
                        self._rich.update(task, rate=_safe(read) or "")

            poller = threading.Thread(target=poll, name="evoforge-watch", daemon=True)
            poller.start()
        try:
            yield
        finally:
            stop.set()
            if poller is not None:
                poller.join()
                with contextlib.suppress(Exception):
                    self._rich.remove_task(task)
            with self._lock:
                self._status = outer

    def line(self, text: str) -> None:
        if self._rich is not None:
            try:
                self._rich.console.print(text, markup=False, highlight=False)
                return
            except Exception:  # noqa: BLE001 - fall back to a plain line
                pass
        self._print(text)

    def _print(self, text: str) -> None:
        say(text)
        with self._lock:
            self._last_output = time.monotonic()

    def close(self) -> None:
        self._stop.set()
        if self._rich is not None:
            with contextlib.suppress(Exception):
                self._rich.stop()
            self._rich = None


def _safe(read: Callable[[], str | None]) -> str | None:
    try:
        return read()
    except Exception:  # noqa: BLE001 - a progress reader must never end a run
        return None


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False
