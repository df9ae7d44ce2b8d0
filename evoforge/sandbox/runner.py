"""Runs inside the sandbox process (``python -I -S sandbox_runner.py``): stdlib only.

Reads {"code": ..., "tests": [[call, expected_repr], ...]} from stdin, installs an audit hook
that denies what untrusted code must not do, runs the code, then each test, and prints one JSON
line of results. The hook cannot be removed once added (sys.addaudithook).
"""

import json
import os
import sys

WORKDIR = os.path.realpath(os.getcwd())
SELF = str(os.getpid())
DENIED_IMPORTS = {
    "ctypes",
    "_ctypes",
    "_posixsubprocess",
    "cffi",
    "mmap",
    "_xxsubinterpreters",
    "resource",
}
DENIED_EVENTS = {
    "os.fork",
    "os.forkpty",
    "os.posix_spawn",
    "os.exec",
    "os.spawn",
    "os.system",
    "os.kill",
    "os.killpg",
    "subprocess.Popen",
    "socket.connect",
    "socket.bind",
    "socket.sendto",
    "socket.sendmsg",
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "os.chdir",
    "os.putenv",
    "os.unsetenv",
    "sys.addaudithook",
    "os.setuid",
    "pty.spawn",
    "os.startfile",
}
WRITE_EVENTS = {
    "os.remove",
    "os.rename",
    "os.rmdir",
    "os.mkdir",
    "os.symlink",
    "os.link",
    "os.chmod",
    "os.chown",
    "os.truncate",
    "os.utime",
    "shutil.rmtree",
    "shutil.copyfile",
    "shutil.move",
}


class SandboxViolation(BaseException):
    """Raised by the audit hook; a BaseException so that `except Exception` in user code cannot eat it."""


def _inside(path) -> bool:
    try:
        p = os.path.realpath(os.fsdecode(path) if not isinstance(path, int) else "")
    except Exception:
        return False
    return p == WORKDIR or p.startswith(WORKDIR + os.sep)


def _hook(event, args):
    if event in DENIED_EVENTS:
        raise SandboxViolation(f"{event} is not allowed in the sandbox")
    if event == "import" and args and str(args[0]).split(".")[0] in DENIED_IMPORTS:
        raise SandboxViolation(f"import of {args[0]} is not allowed in the sandbox")
    if event == "open" and args:
        path, mode = args[0], args[1] if len(args) > 1 else "r"
        flags = args[2] if len(args) > 2 else 0
        if isinstance(path, int):
            return
        text = os.fsdecode(path)
        if text.startswith("/proc/") and not text.startswith(("/proc/self/", f"/proc/{SELF}/")):
            raise SandboxViolation(f"reading {text} is not allowed in the sandbox")
        writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (flags or 0) & (
            os.O_WRONLY | os.O_RDWR | os.O_CREAT
        )
        if writing and not _inside(path):
            raise SandboxViolation(f"writing {text} (outside the sandbox directory) is not allowed")
    if event in WRITE_EVENTS:
        for a in args[:2]:
            if isinstance(a, str | bytes | os.PathLike) and not _inside(a):
                raise SandboxViolation(f"{event} outside the sandbox directory is not allowed")


def main() -> None:
    job = json.loads(sys.stdin.read())
    out = sys.stdout
    sys.addaudithook(_hook)
    result = {"load_error": None, "tests": []}
    namespace = {"__name__": "solution"}
    try:
        exec(compile(job["code"], "solution.py", "exec"), namespace)
    except BaseException as e:  # noqa: BLE001 - we report every failure of untrusted code
        result["load_error"] = f"{type(e).__name__}: {e}"[:500]
    if result["load_error"] is None:
        for call, expected in job["tests"]:
            try:
                got = repr(eval(call, namespace))  # noqa: S307 - runs only inside the sandbox
                result["tests"].append(
                    {
                        "call": call,
                        "passed": got == expected,
                        "got": got[:200],
                        "expected": expected,
                    }
                )
            except BaseException as e:  # noqa: BLE001
                result["tests"].append(
                    {
                        "call": call,
                        "passed": False,
                        "error": f"{type(e).__name__}: {e}"[:300],
                        "expected": expected,
                    }
                )
    out.write("\n@@SANDBOX_RESULT@@" + json.dumps(result) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
