"""The code sandbox: model-written code runs only here, isolated by the operating system.

:func:`run_code` runs a piece of code and calls one of its functions on each input in a fresh
bubblewrap (``bwrap``) sandbox; it returns the outputs (the ``repr`` text of each return value)
or errors. It never judges them: the caller holds the expected values, and
:meth:`SandboxResult.matches` compares them in the parent process. Expected values never enter
the sandbox, so nothing the code prints, writes or fakes can make a wrong answer pass.

What the code gets (one sandbox per call, gone with it):

- fresh user, mount, pid, network, IPC, UTS and cgroup namespaces; an unprivileged uid (1000)
  with no capabilities, no new privileges (``PR_SET_NO_NEW_PRIVS``), in a new session;
- a seccomp filter (:mod:`evoforge.sandbox.seccomp`) refusing new namespaces, memfds, System V
  IPC, io_uring, the keyring, mounts, BPF, perf, ptrace and the like: no nested namespace, and no
  memory held outside the address-space and disk limits;
- a read-only view of only the directories of the shared libraries the interpreter loads, the
  interpreter and its standard library (its site-packages hidden), a copy of the runner, a fresh
  /proc showing only the sandbox's processes (bwrap's options, with their host paths, are read
  from a descriptor, not its command line), a minimal read-only /dev, and one tmpfs of
  ``disk_mb`` at /tmp as the only writable place and the working directory; no /etc (but
  ld.so.cache), /home, /root, host /tmp, run directory, Ray token;
- an empty environment; no network (only its own loopback);
- rlimits set before the code runs: CPU seconds, address space, file size, open files and
  processes (threads count);
- a wall clock kept by the parent, stretched by the time the runner waited for a CPU (up to
  LOAD_ALLOWANCE times, so a busy machine does not fail an honest answer; sleeping counts): at
  the deadline it SIGKILLs the sandbox's pid 1 through a
  pidfd, and the kernel then kills every process of the pid namespace, so no descendant
  survives (``--die-with-parent`` does the same if evoforge dies). Output is read without
  blocking, capped in bytes, until the deadline: a grandchild holding a pipe cannot stall it.

Where this cannot be set up (bwrap missing, user namespaces refused), :func:`run_code` raises
:class:`SandboxUnavailable`, a one-line error naming what is missing and how to enable it. There
is no weaker fallback.

Facts found while building this (bubblewrap 0.8.0 on Debian 12, Linux 6.18, evoforge as root in a
container; unprivileged user namespaces allowed):

- As root, ``bwrap --unshare-user --uid 1000`` maps the sandbox's uid to host root, and Linux
  never enforces RLIMIT_NPROC for host root (a sandbox with RLIMIT_NPROC=5 forked 20 children).
  So as root the sandbox's uid must be another host uid: here 65534 (nobody).
- bwrap started as nobody cannot bind an interpreter that lives under a directory only root may
  enter (pyenv under /root, mode 0700): it resolves bind sources with realpath() as the calling
  user, ``--ro-bind-fd`` too. ``--userns FD`` does not help either: bwrap 0.8 switches to the
  sandbox uid before its setup, losing the capabilities for the loopback and the mounts.
- What works as root: ``--unshare-user --userns-block-fd FD --info-fd FD``. bwrap creates the
  user namespace and waits; evoforge writes the maps itself (namespace root = host root, for
  bwrap's setup; uid and gid 1000 = host 65534), then lets it go. bwrap sets up as namespace root,
  keeps only CAP_SETUID and CAP_SETGID (``--cap-drop ALL --cap-add ...``), and the runner drops
  to uid 1000 before anything else, which clears every capability; RLIMIT_NPROC then holds.
  ``--disable-userns`` cannot be combined with ``--userns-block-fd``: as root, the seccomp
  filter alone refuses nested namespaces (``unshare``, ``setns``, ``clone`` with CLONE_NEW*
  flags; ``clone3`` gets ENOSYS, its flags being out of a filter's reach, and glibc falls back
  to ``clone``), and the runner checks that ``unshare(CLONE_NEWUSER)`` fails before it runs code.
  Without the filter, a nested user namespace gave the code every capability there: a tmpfs of
  any size past the disk limit.
- Not root: ``--unshare-user --uid 1000 --gid 1000``, plus ``--disable-userns`` where bwrap
  has it (0.8+); the sandbox is the user's own uid outside, which is not root, so RLIMIT_NPROC
  holds.
- ``--args FD`` takes options only: the command after them stays on bwrap's command line (it
  names paths inside the sandbox only). Bind mounts show their host source paths in
  /proc/self/mountinfo; the runner therefore comes as data (``--ro-bind-data``), but the
  interpreter's prefix still shows there (copying it per sandbox would cost too much).
- A process that switched uid is not dumpable, so its /proc/self files belong to root: the code
  needs ``prctl(PR_SET_DUMPABLE)`` before it can write its own maps in a nested namespace.
- ``--dev`` leaves a writable /dev/shm on its own tmpfs; ``--remount-ro /dev`` closes it.
- A shared-library build's interpreter finds libpython through an absolute RUNPATH into its
  host prefix; inside it is found through LD_LIBRARY_PATH, which the runner removes before
  running the code.

This package imports nothing from evoforge but errors.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from evoforge.sandbox import bwrap
from evoforge.sandbox.bwrap import SandboxUnavailable

__all__ = ["CallResult", "SandboxLimits", "SandboxResult", "SandboxUnavailable", "run_code"]

FEEDBACK_CHARS = 300


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandboxed run. Memory is address space per process; processes count
    threads; the wall clock starts when the sandbox is up (start-up has its own 30 s)."""

    cpu_seconds: int = 3
    wall_seconds: float = 8.0
    memory_mb: int = 512
    file_mb: int = 8
    disk_mb: int = 16
    open_files: int = 64
    processes: int = 8
    output_kb: int = 256


@dataclass(frozen=True)
class CallResult:
    """One call's claimed outcome: the ``repr`` text of its return value, or the error it raised."""

    output: str | None = None
    error: str | None = None


@dataclass
class SandboxResult:
    """What came back. ``calls`` holds one entry per input that returned before the sandbox
    ended; text from the sandbox other than ``output`` is cleaned and truncated."""

    function: str
    inputs: list
    calls: list[CallResult] = field(default_factory=list)
    load_error: str | None = None
    timed_out: bool = False
    crashed: str | None = None
    """Killed by a signal or a limit, exited before every result, or broke the result format."""
    printed: str = ""

    def matches(self, expected: Sequence[str]) -> list[bool]:
        """Per input: did the call return a value whose repr is exactly ``expected[i]``?"""
        return [
            i < len(self.calls) and self.calls[i].output == want for i, want in enumerate(expected)
        ]

    def feedback(self, expected: Sequence[str]) -> str:
        """What went wrong, in words, for the first input that did not match; "" if none."""
        if self.load_error:
            return f"the code failed to run: {self.load_error}"
        for i, want in enumerate(expected):
            call = clean(f"{self.function}({', '.join(map(repr, self.inputs[i]))})", 200)
            if i >= len(self.calls):
                return f"{call} gave no result: {self._why_stopped()}"
            got = self.calls[i]
            if got.error is not None:
                return f"{call} raised {got.error}; expected {want}"
            if got.output != want:
                return f"{call} returned {clean(got.output or '', 200)}, expected {want}"
        return ""

    def _why_stopped(self) -> str:
        if self.timed_out:
            return "the code did not finish in time (infinite loop or too slow); make it terminate quickly"
        if self.crashed:
            return f"the code crashed: {self.crashed}"
        return "the code stopped before returning"


def clean(text: str, limit: int = FEEDBACK_CHARS) -> str:
    """Text from the sandbox made safe to store and show: valid UTF-8, control and format
    characters (NUL, terminal escapes, bidi overrides) escaped, at most ``limit`` characters."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    out = "".join(c if c.isprintable() or c in "\n\t" else f"\\x{{{ord(c):x}}}" for c in text)
    return out if len(out) <= limit else out[:limit] + f"... [{len(out) - limit} more characters]"


def run_code(
    code: str, function: str, inputs: Sequence[Sequence], limits: SandboxLimits | None = None
) -> SandboxResult:
    """Run ``code`` in a fresh sandbox, then ``function(*args)`` for each ``args`` in ``inputs``
    (JSON values). Raises SandboxUnavailable when the isolation cannot be set up here."""
    limits = limits or SandboxLimits()
    job = json.dumps({"code": code, "function": function, "inputs": [list(a) for a in inputs]})
    sandbox = bwrap.start(job.encode(), limits)  # ASCII: json.dumps escapes the rest
    try:
        got = bwrap.collect(sandbox, limits.wall_seconds, limits.output_kb * 1024)
    finally:
        bwrap.terminate(sandbox)
    printed = got.printed.decode("utf-8", "replace")
    if not got.ready:
        if time.monotonic() - sandbox.started >= bwrap.SETUP_SECONDS:
            detail = f"it did not start within {bwrap.SETUP_SECONDS:.0f} s"
        else:
            lines = printed.strip().splitlines()
            detail = clean(lines[-1] if lines else "it exited before it was ready", 300)
        raise bwrap.unavailable(detail, bwrap.hint_for(detail))
    result = SandboxResult(function, [list(a) for a in inputs], timed_out=got.timed_out)
    result.printed = clean(printed, bwrap.PRINTED_KEPT) + (
        f"\n... [{got.printed_dropped} more bytes not kept]" if got.printed_dropped else ""
    )
    if got.overflow:
        result.crashed = f"it wrote more than {limits.output_kb} KiB to the result channel"
        return result
    problem = _parse_defensively(got.results[len(bwrap.READY) :], result)
    if problem:
        result.calls, result.load_error = [], None
        result.crashed = f"the result channel was tampered with ({problem})"
    elif not result.timed_out and len(result.calls) < len(inputs) and result.load_error is None:
        result.crashed = _exit_reason(sandbox.proc.returncode, printed, limits)
    return result


def _parse_defensively(data: bytes, result: SandboxResult) -> str | None:
    """:func:`_parse`, whose every failure on any bytes (nesting deep enough to raise
    RecursionError, numbers past int's digit limit, invalid UTF-8, MemoryError) is a tampered
    channel: the code's verdict fails, the parent never raises for it."""
    try:
        return _parse(data, result)
    except Exception as e:  # noqa: BLE001 - whatever the bytes make the parser do
        return f"the parser gave up: {type(e).__name__}"


def _parse(data: bytes, result: SandboxResult) -> str | None:
    """Fill ``result`` from the runner's records; the reason when they are not well-formed.
    A last line without its newline was cut by the kill and is ignored."""
    load_seen = False
    for raw in data.split(b"\n")[:-1]:
        try:
            record = json.loads(raw.decode("ascii"))  # the runner writes ASCII only
        except ValueError:
            return "a line that is not JSON"
        if not isinstance(record, dict):
            return "a record that is not an object"
        if not load_seen:
            if set(record) != {"load"} or not (
                record["load"] is None or type(record["load"]) is str
            ):
                return "expected the load record first"
            load_seen = True
            result.load_error = None if record["load"] is None else clean(record["load"])
            continue
        index = len(result.calls)
        keys = set(record)
        if (
            result.load_error is not None
            or type(record.get("call")) is not int  # not True, 0.0 or NaN
            or record["call"] != index
            or index >= len(result.inputs)
        ):
            return f"an unexpected record where call {index} was due"
        if keys == {"call", "output"} and type(record["output"]) is str:
            result.calls.append(CallResult(output=record["output"]))
        elif keys == {"call", "error"} and type(record["error"]) is str:
            result.calls.append(CallResult(error=clean(record["error"])))
        else:
            return f"a malformed record for call {index}"
    return None


def _exit_reason(status: int | None, printed: str, limits: SandboxLimits) -> str:
    """Why the sandbox ended before every result (bwrap exits with 128 + N for signal N)."""
    if status is not None and status > 128:
        try:
            name = signal.Signals(status - 128).name
        except ValueError:
            name = f"signal {status - 128}"
        if name == "SIGXCPU":
            return f"killed by SIGXCPU (CPU time limit of {limits.cpu_seconds} s)"
        return f"killed by {name}"
    lines = printed.strip().splitlines()
    last = clean(lines[-1], 200) if lines else "no output"
    return f"exited with status {status} before returning every result: {last}"
