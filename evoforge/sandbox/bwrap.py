"""Starting, watching and killing one bubblewrap sandbox.

:func:`start` builds the bwrap command line for the interpreter evoforge runs on, starts it with
the job on stdin, and (as root) writes the user-namespace maps while bwrap waits for them.
:func:`collect` reads what comes back with a cap on bytes and a deadline, and
:func:`terminate` kills the sandbox's pid namespace, so that nothing inside survives.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass

from evoforge.sandbox import seccomp
from evoforge.sandbox.layout import (
    INSTALL_HINT,
    MB,
    PYTHON_DIR,
    RUNNER,
    RUNNER_INSIDE,
    SandboxUnavailable,
    filesystem_args,
    hint_for,
    interpreter,
    unavailable,
)

__all__ = ["RUNNER", "SandboxUnavailable", "collect", "hint_for", "start", "terminate"]

SANDBOX_ID = 1000
"""The uid and gid of the code inside its user namespace."""
HOST_ID = 65534
"""What the sandbox's uid and gid are outside when evoforge runs as root: nobody and nogroup."""
READY = b'{"ready": true}\n'
SETUP_SECONDS = 30.0
"""Time for bwrap and the interpreter to start, before the code's own wall clock runs."""
LOAD_ALLOWANCE = 4.0
"""The code's wall clock stretches by the time it waited for a CPU (a busy machine), up to this
many times its limit: an honest answer is not failed by load, a sleeper still ends."""
PRINTED_KEPT = 16 * 1024
DISABLE_USERNS = (0, 8, 0)
"""The bubblewrap release that has ``--disable-userns``."""


@functools.cache
def version(bwrap: str) -> tuple[int, ...]:
    """``bwrap --version`` as numbers; () when it does not say."""
    try:
        out = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ()
    found = re.search(r"(\d+)\.(\d+)\.(\d+)", out.stdout)
    return tuple(int(n) for n in found.groups()) if found else ()


def command(bwrap: str, limits, as_root: bool, fds: dict[str, int]) -> tuple[list[str], list[str]]:
    """bwrap's options, which it reads from a descriptor (``--args``: the sandbox's
    /proc/1/cmdline then shows no host path), and the runner's command line (paths inside).
    ``limits`` is a SandboxLimits; ``fds`` the descriptors bwrap reads: ``info``, ``seccomp``,
    ``runner`` and (as root) ``block``."""
    interp = interpreter()
    args = ["--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc"]
    args += ["--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    args += ["--die-with-parent", "--new-session", "--clearenv", "--info-fd", str(fds["info"])]
    args += ["--cap-drop", "ALL", "--seccomp", str(fds["seccomp"])]
    if as_root:  # evoforge writes the maps; the runner drops from namespace root to SANDBOX_ID
        args += ["--userns-block-fd", str(fds["block"])]
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--uid", str(SANDBOX_ID), "--gid", str(SANDBOX_ID)]
        if version(bwrap) >= DISABLE_USERNS:  # the seccomp filter refuses them anyway
            args.append("--disable-userns")
    args += filesystem_args(interp, limits.disk_mb, fds["runner"])
    numbers = (
        SANDBOX_ID,
        SANDBOX_ID,
        limits.cpu_seconds,
        limits.memory_mb * MB,
        limits.file_mb * MB,
        limits.open_files,
        limits.processes,
    )
    python = f"{PYTHON_DIR}/bin/{os.path.basename(interp.binary)}"
    return args, [python, "-I", "-S", "-B", "-X", "utf8", RUNNER_INSIDE, *map(str, numbers)]


@dataclass
class Sandbox:
    proc: subprocess.Popen
    init: int | None
    """A pidfd of the sandbox's pid 1: killing it ends every process in the pid namespace."""
    started: float
    init_pid: int | None = None


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name)
    try:
        os.write(fd, data)  # a memfd takes the whole buffer in one write
        os.lseek(fd, 0, os.SEEK_SET)
    except OSError:
        os.close(fd)
        raise
    return fd


def start(job: bytes, limits) -> Sandbox:
    """Start bwrap on ``job`` (the runner's stdin); raise SandboxUnavailable if it cannot start."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise unavailable("bwrap is not installed", INSTALL_HINT)
    bpf = seccomp.program()
    if bpf is None:
        raise unavailable(
            f"no seccomp filter for {os.uname().machine}", "run evoforge on x86_64 or aarch64"
        )
    as_root = os.geteuid() == 0
    info_r, info_w = os.pipe()
    block_r, block_w = os.pipe() if as_root else (-1, -1)
    fds = {"info": info_w, "block": block_r}
    mine = [info_w, block_r]  # closed here once bwrap has them
    try:
        mine.append(job_fd := _memfd("evoforge-job", job))
        mine.append(fds.setdefault("seccomp", _memfd("evoforge-seccomp", bpf)))
        mine.append(fds.setdefault("runner", _memfd("evoforge-runner", RUNNER.read_bytes())))
        options, program = command(bwrap, limits, as_root, fds)
        options_bytes = b"".join(os.fsencode(a) + b"\0" for a in options)
        mine.append(args_fd := _memfd("evoforge-args", options_bytes))
        proc = subprocess.Popen(
            [bwrap, "--args", str(args_fd), *program],
            stdin=job_fd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=[fd for fd in (*fds.values(), args_fd) if fd >= 0],
            env={},
            cwd="/",
            start_new_session=True,
        )
    except BaseException as e:
        for fd in (info_r, block_w):
            if fd >= 0:
                os.close(fd)
        if isinstance(e, OSError):
            raise unavailable(f"bwrap failed to start: {e}", INSTALL_HINT) from e
        raise
    finally:
        for fd in mine:
            if fd >= 0:
                os.close(fd)
    sandbox = Sandbox(proc, None, time.monotonic())
    try:
        _release(sandbox, info_r, block_w, as_root)
    except BaseException:
        terminate(sandbox)
        raise
    return sandbox


def _release(sandbox: Sandbox, info_r: int, block_w: int, as_root: bool) -> None:
    """Learn the sandbox's pid 1 from bwrap, write its maps (as root), let it run. Closes both
    descriptors; raises SandboxUnavailable when bwrap got no further than that."""
    failure = None
    try:
        pid = _read_child_pid(info_r)
        if pid is not None:
            sandbox.init, sandbox.init_pid = os.pidfd_open(pid), pid
            if as_root:
                _write_maps(pid)
            if block_w >= 0:
                os.write(block_w, b"1")
    except OSError as e:
        pid, failure = None, f"setting up its user namespace failed: {e}"
    finally:
        os.close(info_r)
        if block_w >= 0:
            os.close(block_w)
    if pid is None:
        failure = failure or _stderr_of(sandbox.proc)
        raise unavailable(failure, hint_for(failure))


def _read_child_pid(fd: int) -> int | None:
    """bwrap's --info-fd JSON: the host pid of the sandbox's pid 1, or None if bwrap died."""
    data, deadline = b"", time.monotonic() + SETUP_SECONDS
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not sel.select(deadline - time.monotonic()):
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            data += chunk
            with contextlib.suppress(ValueError, KeyError, TypeError):
                return int(json.loads(data)["child-pid"])
    return None


def _write_maps(pid: int) -> None:
    """Namespace root stays host root (bwrap's setup needs it to bind and mount); the sandbox's
    uid and gid are host nobody, whose process count RLIMIT_NPROC limits (root's it never does)."""
    for name in ("uid_map", "gid_map"):
        fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY)
        try:
            os.write(fd, f"0 0 1\n{SANDBOX_ID} {HOST_ID} 1\n".encode())
        finally:
            os.close(fd)


def _stderr_of(proc: subprocess.Popen) -> str:
    try:
        _, err = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        return "bwrap did not answer"
    lines = (err or b"").decode("utf-8", "replace").strip().splitlines()
    return next((ln for ln in lines if ln.startswith("bwrap:")), lines[-1] if lines else "no error")


@dataclass
class Collected:
    results: bytes = b""
    printed: bytes = b""
    printed_dropped: int = 0
    ready: bool = False
    timed_out: bool = False
    overflow: bool = False


def _runner_pid(init_pid: int | None) -> int | None:
    """The host pid of the runner: the child of the sandbox's pid 1 (bwrap's init)."""
    if init_pid is None:
        return None
    try:
        with open(f"/proc/{init_pid}/task/{init_pid}/children") as f:
            children = f.read().split()
    except OSError:  # a kernel without CONFIG_PROC_CHILDREN: no allowance for load
        return None
    return int(children[0]) if children else None


def _cpu_waits(pid: int | None) -> dict[str, int]:
    """Nanoseconds each thread of ``pid`` has waited on a run queue (/proc/PID/task/*/schedstat)."""
    waits: dict[str, int] = {}
    if pid is None:
        return waits
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            path = f"/proc/{pid}/task/{tid}/schedstat"
            with contextlib.suppress(OSError, ValueError, IndexError), open(path) as f:
                waits[tid] = int(f.read().split()[1])
    return waits


class WallClock:
    """The code's wall clock: ``seconds`` from the ready record, plus the time the runner waited
    for a CPU meanwhile (its busiest thread's wait), to at most LOAD_ALLOWANCE x ``seconds``.
    Sleeping and blocking count; a busy machine does not. CPU burners meet RLIMIT_CPU."""

    def __init__(self, pid: int | None, seconds: float) -> None:
        self.pid, self.seconds = pid, seconds
        self.began = time.monotonic()
        self.waits = _cpu_waits(pid)
        self.waited = 0.0

    def deadline(self) -> float:
        """Never earlier than before (the runner's threads may be gone by now)."""
        now = _cpu_waits(self.pid)
        waited = max((w - self.waits.get(t, 0) for t, w in now.items()), default=0) / 1e9
        self.waited = max(self.waited, waited)
        return self.began + min(self.seconds + self.waited, self.seconds * LOAD_ALLOWANCE)


def collect(sandbox: Sandbox, wall_seconds: float, results_cap: int) -> Collected:
    """Read the result channel and the printed output until both close, the deadline passes or
    the results exceed ``results_cap`` bytes. The deadline is SETUP_SECONDS for the start-up,
    then a WallClock of ``wall_seconds`` from the runner's ready record. Never blocks past it."""
    out = Collected()
    proc = sandbox.proc
    clock = None
    deadline = sandbox.started + SETUP_SECONDS
    with selectors.DefaultSelector() as sel:
        for stream in (proc.stdout, proc.stderr):
            os.set_blocking(stream.fileno(), False)
            sel.register(stream.fileno(), selectors.EVENT_READ, stream is proc.stdout)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0 and clock is not None:
                deadline = clock.deadline()  # load moves it on
                left = deadline - time.monotonic()
            if left <= 0:
                out.timed_out = out.ready
                break
            for key, _ in sel.select(left):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fd)
                elif key.data:
                    out.results += chunk
                else:
                    keep = max(0, PRINTED_KEPT - len(out.printed))
                    out.printed += chunk[:keep]
                    out.printed_dropped += len(chunk) - len(chunk[:keep])
            if not out.ready and out.results.startswith(READY):
                out.ready = True
                clock = WallClock(_runner_pid(sandbox.init_pid), wall_seconds)
                deadline = clock.deadline()
            if len(out.results) > results_cap:
                out.overflow = True
                break
    return out


def terminate(sandbox: Sandbox) -> None:
    """SIGKILL the sandbox's pid 1 (the kernel then kills the whole pid namespace), reap bwrap,
    close the pipes. Safe to call more than once."""
    if sandbox.init is not None:
        with contextlib.suppress(ProcessLookupError, OSError):
            signal.pidfd_send_signal(sandbox.init, signal.SIGKILL)
        os.close(sandbox.init)
        sandbox.init = None
    proc = sandbox.proc
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
