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
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

from evoforge.errors import EvoforgeError

SANDBOX_ID = 1000
"""The uid and gid of the code inside its user namespace."""
HOST_ID = 65534
"""What the sandbox's uid and gid are outside when evoforge runs as root: nobody and nogroup."""
PYTHON_DIR = "/python"
RUNNER = Path(__file__).with_name("runner.py")
RUNNER_INSIDE = f"{PYTHON_DIR}/runner.py"
READY = b'{"ready": true}\n'
SETUP_SECONDS = 30.0
"""Time for bwrap and the interpreter to start, before the code's own wall clock runs."""
PRINTED_KEPT = 16 * 1024
LOADER_CACHE = "/etc/ld.so.cache"
SYSTEM_LIBRARIES = ("/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64", "/lib32")
MB = 1024 * 1024
INSTALL_HINT = "install bubblewrap (apt-get install bubblewrap, or dnf install bubblewrap)"
USERNS_HINT = (
    "enable user namespaces (sysctl -w kernel.unprivileged_userns_clone=1 "
    "user.max_user_namespaces=15000; Ubuntu 24.04+: kernel.apparmor_restrict_unprivileged_userns=0; "
    "in a container: allow unshare/clone, e.g. docker run --security-opt seccomp=unconfined)"
)


class SandboxUnavailable(EvoforgeError):
    """The OS isolation cannot be set up here, so model-written code is not run at all."""


def unavailable(problem: str, hint: str) -> SandboxUnavailable:
    return SandboxUnavailable(
        f"the code sandbox cannot run ({problem}): {hint}; model-written code never runs without it"
    )


@dataclass(frozen=True)
class Interpreter:
    """The host files of the interpreter evoforge runs on, which the sandbox sees read-only."""

    binary: str
    stdlib: str
    library: str | None
    """libpython, for a shared build (its RUNPATH points at the host path, hence LD_LIBRARY_PATH)."""


@functools.cache
def interpreter() -> Interpreter:
    binary = os.path.realpath(sys.executable)
    base = {"installed_base": sys.base_prefix, "base": sys.base_prefix}
    stdlib = os.path.realpath(sysconfig.get_path("stdlib", vars=base))
    if not os.path.isfile(os.path.join(stdlib, "os.py")):
        raise unavailable(f"no standard library at {stdlib}", "run evoforge on a CPython install")
    library = None
    libdir, soname = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")
    if sysconfig.get_config_var("Py_ENABLE_SHARED") and libdir and soname:
        path = os.path.join(libdir, soname)  # bound under its soname, the name the loader wants
        library = path if os.path.isfile(path) else None
    return Interpreter(binary, stdlib, library)


def filesystem_args(interp: Interpreter, disk_mb: int) -> list[str]:
    """Read-only: the system's shared libraries and the interpreter with its stdlib (not its
    site-packages). Writable: one tmpfs of ``disk_mb`` at /tmp, the working directory."""
    stdlib = f"{PYTHON_DIR}/lib/{os.path.basename(interp.stdlib)}"
    binds = [(p, p) for p in SYSTEM_LIBRARIES if os.path.isdir(p) and not os.path.islink(p)]
    binds += [
        (interp.binary, f"{PYTHON_DIR}/bin/{os.path.basename(interp.binary)}"),
        (interp.stdlib, stdlib),
        (str(RUNNER), RUNNER_INSIDE),
    ]
    if os.path.isfile(LOADER_CACHE):
        binds.append((LOADER_CACHE, LOADER_CACHE))
    if interp.library:
        binds.append((interp.library, f"{PYTHON_DIR}/lib/{os.path.basename(interp.library)}"))
    # bwrap makes the parents of a bind 0700 (root's inside): the uid of the code needs 0755
    parents = sorted({str(q) for _, dest in binds for q in Path(dest).parents if str(q) != "/"})
    args = [a for d in parents for a in ("--perms", "0755", "--dir", d)]
    for source, dest in binds:
        args += ["--ro-bind", source, dest]
    args += [
        a for p in SYSTEM_LIBRARIES if os.path.islink(p) for a in ("--symlink", os.readlink(p), p)
    ]
    if os.path.isdir(os.path.join(interp.stdlib, "site-packages")):
        args += ["--tmpfs", f"{stdlib}/site-packages", "--remount-ro", f"{stdlib}/site-packages"]
    if interp.library:
        args += ["--setenv", "LD_LIBRARY_PATH", f"{PYTHON_DIR}/lib"]
    args += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"]
    args += ["--perms", "1777", "--size", str(disk_mb * MB), "--tmpfs", "/tmp"]
    return [*args, "--remount-ro", "/", "--chdir", "/tmp"]


def command(bwrap: str, limits, as_root: bool, info_fd: int, block_fd: int) -> list[str]:
    """The bwrap command line; ``limits`` is a SandboxLimits."""
    interp = interpreter()
    args = [bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc"]
    args += ["--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    args += ["--die-with-parent", "--new-session", "--clearenv", "--info-fd", str(info_fd)]
    args += ["--cap-drop", "ALL"]
    if as_root:  # evoforge writes the maps; the runner drops from namespace root to SANDBOX_ID
        args += ["--userns-block-fd", str(block_fd)]
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--uid", str(SANDBOX_ID), "--gid", str(SANDBOX_ID), "--disable-userns"]
    args += filesystem_args(interp, limits.disk_mb)
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
    return [*args, python, "-I", "-S", "-B", "-X", "utf8", RUNNER_INSIDE, *map(str, numbers)]


@dataclass
class Sandbox:
    proc: subprocess.Popen
    init: int | None
    """A pidfd of the sandbox's pid 1: killing it ends every process in the pid namespace."""
    started: float


def start(job: bytes, limits) -> Sandbox:
    """Start bwrap on ``job`` (the runner's stdin); raise SandboxUnavailable if it cannot start."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise unavailable("bwrap is not installed", INSTALL_HINT)
    as_root = os.geteuid() == 0
    info_r, info_w = os.pipe()
    block_r, block_w = os.pipe() if as_root else (-1, -1)
    job_fd = os.memfd_create("evoforge-job")
    try:
        os.write(job_fd, job)  # a memfd takes the whole buffer in one write
        os.lseek(job_fd, 0, os.SEEK_SET)
        proc = subprocess.Popen(
            command(bwrap, limits, as_root, info_w, block_r),
            stdin=job_fd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=[fd for fd in (info_w, block_r) if fd >= 0],
            env={},
            cwd="/",
            start_new_session=True,
        )
    except OSError as e:
        for fd in (info_r, block_w):
            if fd >= 0:
                os.close(fd)
        raise unavailable(f"bwrap failed to start: {e}", INSTALL_HINT) from e
    finally:
        for fd in (job_fd, info_w, block_r):
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
            sandbox.init = os.pidfd_open(pid)
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


def hint_for(problem: str) -> str:
    """How to fix a failed start, from bwrap's message."""
    missing = re.search(r"Can't (?:bind mount|mount) /oldroot(/\S+) on .*No such file", problem)
    if missing:  # a host path the sandbox mounts is gone (e.g. a device node under /dev)
        return f"{missing.group(1)} is missing on this machine; restore it (see `man bwrap`, --dev)"
    words = ("namespace", "uid map", "gid map", "setgroups", "not permitted", "mount", "denied")
    if any(w in problem.lower() for w in words):
        return USERNS_HINT
    return "check that `bwrap --unshare-all --ro-bind / / true` works here"


@dataclass
class Collected:
    results: bytes = b""
    printed: bytes = b""
    printed_dropped: int = 0
    ready: bool = False
    timed_out: bool = False
    overflow: bool = False


def collect(sandbox: Sandbox, wall_seconds: float, results_cap: int) -> Collected:
    """Read the result channel and the printed output until both close, the deadline passes or
    the results exceed ``results_cap`` bytes. The deadline is SETUP_SECONDS for the start-up,
    then ``wall_seconds`` from the runner's ready record. Never blocks past the deadline."""
    out = Collected()
    proc = sandbox.proc
    deadline = sandbox.started + SETUP_SECONDS
    with selectors.DefaultSelector() as sel:
        for stream in (proc.stdout, proc.stderr):
            os.set_blocking(stream.fileno(), False)
            sel.register(stream.fileno(), selectors.EVENT_READ, stream is proc.stdout)
        while sel.get_map():
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
                deadline = time.monotonic() + wall_seconds
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
