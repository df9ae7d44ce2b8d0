"""SIGTERM stops a run as cleanly as Ctrl-C.

Ray's ``ray.init`` installs its own SIGTERM handler (exit at once, or kill the local node's
processes and exit 1), which skips the run's cleanup. During a run, SIGTERM raises
:class:`~evoforge.errors.Terminated` (a KeyboardInterrupt) in the main thread instead, so every
``finally`` runs: the servers and the cluster shut down and the run directory stays resumable.
The command line then prints one line and exits with 143 (128 + SIGTERM). A second SIGTERM while
the run cleans up is ignored (SIGKILL still ends it).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from evoforge.errors import Terminated

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
