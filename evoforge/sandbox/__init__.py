"""The code sandbox: model-written code runs only here, never in an evoforge process.

Layers (each stops a different escape; together they hold without root-only tools):
- its own process (``python -I -S``: isolated mode, stdlib only, no PYTHON* variables), in a new
  session so that the whole group is killed on timeout;
- an empty environment (PATH only): nothing of the parent's variables is inherited;
- a throwaway working directory, removed afterwards;
- resource limits: CPU seconds, address space, file size, open files, no core dumps;
- no network: a fresh network namespace when the process may create one (root), and in any case
  an audit hook that denies sockets;
- the audit hook (runner.py) denies process creation (fork, exec, spawn, subprocess,
  system), writes outside the working directory, reading other processes' /proc entries, and
  imports that reach native code (ctypes). Fork bombs are stopped by the hook, not by
  RLIMIT_NPROC, which Linux does not enforce for root.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

RUNNER = Path(__file__).with_name("runner.py")
MARKER = "@@SANDBOX_RESULT@@"
CLONE_NEWNET = 0x40000000


@dataclass(frozen=True)
class SandboxLimits:
    cpu_seconds: int = 5
    wall_seconds: float = 10.0
    memory_mb: int = 512
    file_mb: int = 8
    open_files: int = 64


@dataclass
class SandboxResult:
    """What happened: per-test results, or why nothing could be checked."""

    tests: list[dict] = field(default_factory=list)
    load_error: str | None = None
    timed_out: bool = False
    crashed: str | None = None
    """Killed by a signal or a resource limit, or exited without a result."""
    stderr: str = ""

    @property
    def passed(self) -> int:
        return sum(t["passed"] for t in self.tests)

    def feedback(self) -> str:
        if self.timed_out:
            return "the code did not finish in time (infinite loop or too slow); make it terminate quickly"
        if self.crashed:
            return f"the code crashed: {self.crashed}"
        if self.load_error:
            return f"the code failed to run: {self.load_error}"
        for t in self.tests:
            if not t["passed"]:
                if "error" in t:
                    return f"{t['call']} raised {t['error']}; expected {t['expected']}"
                return f"{t['call']} returned {t['got']}, expected {t['expected']}"
        return ""


def _limit(limits: SandboxLimits):
    def preexec() -> None:  # runs in the child between fork and exec
        os.setsid()
        if os.geteuid() == 0:
            try:
                import ctypes

                ctypes.CDLL(None, use_errno=True).unshare(CLONE_NEWNET)
            except Exception:
                pass  # the audit hook still denies sockets
        mb = 1024 * 1024
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * mb, limits.file_mb * mb))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return preexec


def run_code(
    code: str, tests: list[tuple[str, str]], limits: SandboxLimits | None = None
) -> SandboxResult:
    """Run ``code`` then each (call expression, expected repr) test in a fresh sandbox process."""
    limits = limits or SandboxLimits()
    workdir = tempfile.mkdtemp(prefix="evoforge-sandbox-")
    job = json.dumps({"code": code, "tests": [list(t) for t in tests]})
    proc = subprocess.Popen(
        [sys.executable, "-I", "-S", "-B", str(RUNNER)],
        cwd=workdir,
        env={"PATH": "/usr/bin:/bin", "HOME": workdir, "LANG": "C.UTF-8"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=_limit(limits),
        close_fds=True,
    )
    result = SandboxResult()
    try:
        out, err = proc.communicate(job.encode(), timeout=limits.wall_seconds)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        result.timed_out = True
    finally:
        _kill_group(proc)  # anything the code left behind in its session
        shutil.rmtree(workdir, ignore_errors=True)
    text = out.decode("utf-8", "replace")
    result.stderr = err.decode("utf-8", "replace")[-2000:]
    if MARKER in text and not result.timed_out:
        payload = json.loads(text.rsplit(MARKER, 1)[1].strip().splitlines()[0])
        result.tests, result.load_error = payload["tests"], payload["load_error"]
    elif not result.timed_out:
        if proc.returncode is not None and proc.returncode < 0:
            sig = signal.Signals(-proc.returncode).name
            result.crashed = f"killed by {sig}" + (" (CPU time limit)" if sig == "SIGXCPU" else "")
        else:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            result.crashed = f"exited with status {proc.returncode}: {last[:200]}"
    return result


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
