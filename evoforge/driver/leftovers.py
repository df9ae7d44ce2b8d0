"""What a killed driver leaves behind, recorded in its run directory and cleaned by the next one.

A driver that starts a local cluster owns Ray's daemons and the run's temporary directory; its
``finally`` stops them. A SIGKILL skips that: most of Ray's daemons follow the driver, but some
(the dashboard agent, the runtime-env agent) live on under init, and the temp dir stays. So the
driver records, in ``RUN_DIR/leftovers.json``, its host, its temp dir, the local cluster's session
directory and each process it started (pid, start time, command line), and deletes the record
after a clean exit. The next run or resume of the directory (it holds the run's lock, so no live
driver owns the record) stops the recorded processes that are still the recorded ones (same pid,
same start time, same command line: a reused pid is never touched), removes the directories and
says so in one line. Linux only (``/proc``); elsewhere the record is kept, unread.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import time
from pathlib import Path
from typing import Any

from evoforge.storage.rundir import write_json

RECORD = "leftovers.json"
PREFIX = "evoforge-"
"""Name prefix of the temp dirs a driver makes (tempfile.mkdtemp(prefix=PREFIX)): only such a
directory is ever removed from a record."""


def identity(pid: int) -> dict[str, Any] | None:
    """A process's pid, start time (clock ticks after boot) and command line, or None when it is
    gone, a zombie, or not readable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    if fields[0] == "Z":
        return None
    args = [a.decode(errors="replace") for a in cmdline.split(b"\0") if a]
    return {"pid": pid, "start": int(fields[19]), "cmdline": args}


def descendants(pid: int | None = None) -> list[int]:
    """Every process below ``pid`` (this one by default), from /proc."""
    root = os.getpid() if pid is None else pid
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def record(
    run_dir: Path,
    temp_dir: str,
    session_dir: str = "",
    started_here: bool = False,
    driver: int | None = None,
) -> None:
    """Write (or refresh) the record: the temp dir, and with a local cluster the driver started,
    its session directory and every process below the driver (``driver``: this process)."""
    driver = os.getpid() if driver is None else driver
    procs = [p for pid in descendants(driver) if (p := identity(pid))] if started_here else []
    write_json(
        run_dir / RECORD,
        {
            "host": socket.gethostname(),
            "driver": driver,
            "temp_dir": temp_dir,
            "session_dir": session_dir if started_here else "",
            "processes": procs,
        },
    )


def forget(run_dir: Path) -> None:
    """Delete the record after a clean exit."""
    with contextlib.suppress(FileNotFoundError):
        (run_dir / RECORD).unlink()


def _name(args: list[str]) -> str:
    """A short name for a process: its program, or the Python file it runs."""
    for a in args[:3]:
        if a.endswith(".py"):
            return os.path.basename(a)[:-3]
    return os.path.basename(args[0]) if args else "?"


def _stop(procs: list[dict[str, Any]], grace: float = 5.0) -> list[dict[str, Any]]:
    """SIGTERM each recorded process that is still the recorded one, SIGKILL what is left after
    ``grace`` seconds; the ones stopped."""
    alive = [p for p in procs if identity(p["pid"]) == p]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in alive:
            if identity(p["pid"]) == p:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(p["pid"], sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(identity(p["pid"]) == p for p in alive):
            time.sleep(0.1)
    return alive


def clean(run_dir: Path) -> str | None:
    """Stop and remove what a killed driver of this run directory left (see the module's doc);
    the one line that says what was cleaned, or None when there was nothing."""
    path = run_dir / RECORD
    try:
        import json

        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("host") != socket.gethostname():
        return None  # another machine's processes: not ours to judge (the record stays)
    stopped = _stop([p for p in rec.get("processes", []) if isinstance(p, dict)])
    removed = []
    temp_dir = str(rec.get("temp_dir") or "")
    session = str(rec.get("session_dir") or "")
    if temp_dir and os.path.basename(temp_dir).startswith(PREFIX) and os.path.isdir(temp_dir):
        shutil.rmtree(temp_dir, ignore_errors=True)
        removed.append(temp_dir)
    if session and os.path.basename(session).startswith("session_") and os.path.isdir(session):
        from evoforge.agents.serving.cluster import remove_session_dir

        remove_session_dir(session)
        removed.append(session)
    forget(run_dir)
    if not stopped and not removed:
        return None
    what = []
    if stopped:
        names = ", ".join(sorted({_name(p["cmdline"]) for p in stopped}))
        what.append(f"stopped {len(stopped)} process(es) ({names})")
    if removed:
        what.append(f"removed {' and '.join(removed)}")
    return f"cleaned up after the run's killed driver (pid {rec.get('driver')}): {'; '.join(what)}"
