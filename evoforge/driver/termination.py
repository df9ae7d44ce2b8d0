"""SIGTERM stops a run as cleanly as Ctrl-C.

Ray's ``ray.init`` installs its own SIGTERM handler (exit at once, or kill the local node's
processes and exit 1), which skips the run's cleanup. During a run, SIGTERM raises
:class:`~evoforge.errors.Terminated` (a KeyboardInterrupt) in the main thread instead, so every
``finally`` runs: the servers and the cluster shut down and the run directory stays resumable.
A second SIGTERM while the run cleans up is ignored (SIGKILL still ends it).

:func:`run_scope` wraps ``evoforge.run()`` and ``resume()``: a run stopped by SIGTERM ends with
:class:`~evoforge.errors.RunTerminated`, after printing its one line (the run directory to resume
named in it, or that there is none yet); uncaught, it exits 143 without a traceback. The signal
decides, not the exception's type: a SIGTERM that lands inside Ray's blocking calls (``ray.get``
polls for signals in C++) comes back out of Ray as a plain KeyboardInterrupt, and anything else
that escapes once a SIGTERM came is the SIGTERM's doing too. Ctrl-C ends with
:class:`~evoforge.errors.RunInterrupted` (exit 130 from the command line).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from evoforge.errors import RunInterrupted, RunTerminated, Terminated, stopped_line
from evoforge.progress import say

_received = threading.Event()


def _handler(signum, frame) -> None:
    if _received.is_set():
        return  # already stopping: let the cleanup finish
    _received.set()
    raise Terminated()


def install() -> None:
    """Make SIGTERM raise Terminated in the main thread (again: ray.init replaces handlers)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _handler)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises Terminated inside the block. The previous handler is restored after,
    unless a SIGTERM came: the process is then on its way out, and later ones are ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    _received.clear()
    install()
    try:
        yield
    finally:
        if not _received.is_set():
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def received() -> bool:
    """Whether a SIGTERM came during the current run (its handler ran)."""
    return _received.is_set()


@contextmanager
def run_scope(run_dir: Callable[[], object | None]) -> Iterator[None]:
    """The block of a whole run: SIGTERM raises Terminated inside it, and a stopped run leaves it
    as RunTerminated (SIGTERM: its line printed) or RunInterrupted (Ctrl-C). ``run_dir()``: the
    run directory once it exists, else None."""
    with sigterm_as_interrupt():
        try:
            yield
        except (RunTerminated, RunInterrupted):
            raise
        except BaseException as e:
            if not (isinstance(e, Terminated) or received()):
                if isinstance(e, KeyboardInterrupt):
                    raise RunInterrupted(stopped_line(run_dir(), sigterm=False)) from None
                raise
            line = stopped_line(run_dir(), sigterm=True)
            say(line)
            raise RunTerminated(line) from None
