"""The one exception type a user sees as a one-line error.

Anything raised as :class:`EvoforgeError` is printed by the CLI as ``error: <message>`` with a
non-zero exit and no traceback (unless ``--debug``). Messages name the problem and the fix.
"""

import errno
import os
import re
import sqlite3


class EvoforgeError(Exception):
    """A user-facing error: bad config, bad input, missing model, unreachable cluster, ..."""


class ConfigError(EvoforgeError):
    """The config (YAML or a key=value override) is invalid."""


class ModelError(EvoforgeError):
    """A model could not be found, verified or loaded."""


class PromptTooLongError(EvoforgeError):
    """A prompt does not fit in the model's context window."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt, so that a run stops as
    cleanly: servers and the cluster shut down, the run directory stays resumable. Inside the run
    only: ``evoforge.run()`` and ``resume()`` end with :class:`RunTerminated` instead."""


def stopped_line(run_dir: object | None, sigterm: bool) -> str:
    """The one line a stopped run ends with: how it stopped, and how it goes on."""
    how = "terminated (SIGTERM)" if sigterm else "interrupted"
    if run_dir is None:
        return f"{how} before the run directory was written; nothing to resume"
    return f"{how}; `evoforge resume {run_dir}` continues the run"


class RunInterrupted(EvoforgeError, KeyboardInterrupt):
    """A run (``evoforge.run()``, ``resume()``) stopped by Ctrl-C after cleaning up; the message
    is the line the command line prints (the run directory to resume named in it)."""

    exit_code = 130


class RunTerminated(EvoforgeError, SystemExit):
    """A run stopped by SIGTERM (``ray job stop``, a scheduler) after cleaning up. The message is
    the command line's line, already printed on stderr. A SystemExit with code 143: uncaught in a
    script, it ends the process with 143 and no traceback (the job log's last line is the
    message); ``except EvoforgeError`` catches it like any evoforge error."""

    exit_code = 143

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = self.exit_code


class StorageError(EvoforgeError):
    """A write failed (disk full, no permission, read-only filesystem); nothing was half-written."""


# errno values that mean "this machine cannot store the write", not a bug in evoforge
_STORAGE_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.EFBIG,
}
_SQLITE_STORAGE = ("disk is full", "readonly database", "unable to open database file")
# Libraries that write files in Rust or C++ raise their own types with the OS error in the text:
# safetensors "I/O error: No space left on device (os error 28)"; torch.save's zip writer, on a
# short write, "[enforce fail at inline_container.cc:N] . unexpected pos 704 vs 598" or
# "PytorchStreamWriter failed writing file".
_OS_ERROR_TEXT = re.compile(r"\(os error (\d+)\)")
_TORCH_SHORT_WRITE = re.compile(r"inline_container\.cc.*unexpected pos|PytorchStreamWriter failed")


def write_failed(path: object, reason: str) -> StorageError:
    """The one message for a failed write into a run directory."""
    return StorageError(
        f"cannot write {path} ({reason}); the run directory keeps its last good state: "
        "free disk space or fix permissions, then `evoforge resume RUN_DIR`"
    )


def storage_error(exc: BaseException) -> StorageError | None:
    """``exc`` as a StorageError when it is a failed write (OSError with a storage errno, or
    SQLite's "database or disk is full"), else None."""
    if isinstance(exc, StorageError):
        return exc
    if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
        return write_failed(exc.filename or "a file", exc.strerror or str(exc))
    if isinstance(exc, sqlite3.OperationalError) and any(s in str(exc) for s in _SQLITE_STORAGE):
        return write_failed("the run's checkpoint database", str(exc))
    text = str(exc)
    code = _OS_ERROR_TEXT.search(text)
    if code and int(code.group(1)) in _STORAGE_ERRNOS:
        return write_failed("a file", os.strerror(int(code.group(1))))
    if _TORCH_SHORT_WRITE.search(text):
        return write_failed("a checkpoint", "torch.save wrote only part of it: is the disk full?")
    return None
