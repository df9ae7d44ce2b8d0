"""Runs inside the sandbox as ``python -I -S runner.py UID GID CPU MEMORY FILE_SIZE FILES PROCS``.

Stdlib only. This is trusted code that runs before the model's code, in this order:

1. drop to the unprivileged ``UID``/``GID`` when it starts as root of its user namespace (the
   capabilities bubblewrap left it, CAP_SETUID and CAP_SETGID, go with the switch), and check
   that no capability is left;
2. set the resource limits (CPU seconds, address space, file size, open files, processes);
3. move the result channel off stdout: the code's prints (fd 1 and 2) both go to stderr, and
   sys.stdout and sys.stderr keep only the first PRINTED_CHARS characters of them;
4. read the job from stdin: ``{"code": str, "function": str, "inputs": [[arg, ...], ...]}``;
5. run the code, then call ``function(*args)`` for each input.

Records, one JSON line each on the result channel::

    {"ready": true}                                  steps 1-3 are done
    {"load": null} | {"load": "TypeError: ..."}      the code ran, or why not
    {"call": i, "output": "<repr>"} | {"call": i, "error": "ValueError: ..."}

The parent believes nothing here beyond "the code claims this output for input i": it alone
holds the expected values and compares. Expected values never enter the sandbox.
"""

import contextlib
import io
import json
import os
import resource
import sys

MAX_OUTPUT_CHARS = 20_000
MAX_ERROR_CHARS = 1_000
CAPABILITY_FIELDS = ("CapInh", "CapPrm", "CapEff", "CapAmb")
CLONE_NEWUSER = 0x10000000
PRINTED_CHARS = 12 * 1024
"""What the code prints through sys.stdout and sys.stderr is kept up to this (less than the
parent keeps); the rest is only counted, here, at no cost: an honest answer that prints 100 MB
is not slowed into a timeout."""


def drop_privileges(uid: int, gid: int) -> None:
    if os.getuid() == 0:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)  # clears the permitted, effective and ambient capabilities
        libc = clear_inheritable_capabilities()
        if libc.unshare(CLONE_NEWUSER) == 0:  # bwrap's --disable-userns cannot be used as root
            raise SystemExit("sandbox runner: the seccomp filter let a user namespace through")
    with open("/proc/self/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    caps = [int(fields[k].strip(), 16) for k in CAPABILITY_FIELDS if k in fields]
    if os.getresuid() != (uid,) * 3 or os.getresgid() != (gid,) * 3 or any(caps):
        raise SystemExit("sandbox runner: could not drop to the unprivileged user; refusing to run")


def clear_inheritable_capabilities():
    """capset(2) with empty sets: the inheritable set survives setuid (inert without permitted
    ones, but nothing at all is what the check below asks for). Returns libc."""
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Sets(ctypes.Structure):
        _fields_ = [(name, ctypes.c_uint32) for name in ("effective", "permitted", "inheritable")]

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.capset(ctypes.byref(Header(0x20080522, 0)), (Sets * 2)()) != 0:  # version 3
        raise OSError(ctypes.get_errno(), "capset")
    return libc


def set_limits(cpu: int, memory: int, file_size: int, files: int, procs: int) -> None:
    limits = [
        (resource.RLIMIT_CPU, cpu, cpu + 1),  # SIGXCPU at the soft limit, SIGKILL one second on
        (resource.RLIMIT_AS, memory, memory),
        (resource.RLIMIT_FSIZE, file_size, file_size),
        (resource.RLIMIT_NOFILE, files, files),
        (resource.RLIMIT_NPROC, procs, procs),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    for which, soft, hard in limits:
        resource.setrlimit(which, (soft, hard))


def describe(exc: BaseException) -> str:
    try:
        text = f"{type(exc).__name__}: {exc}"
    except BaseException:  # noqa: BLE001 - an exception whose __str__ fails
        text = f"{type(exc).__name__}: <unprintable>"
    return text[:MAX_ERROR_CHARS]


class Printed(io.TextIOBase):
    """sys.stdout and sys.stderr of the code: the first PRINTED_CHARS characters go to fd 2 (the
    parent's printed-output pipe) as they come, the rest is counted."""

    kept = 0
    dropped = 0

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def encoding(self) -> str:
        return "utf-8"

    @property
    def buffer(self) -> "PrintedBytes":
        return PrintedBytes(self)

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        room = max(0, PRINTED_CHARS - Printed.kept)
        if room:
            part = s[:room]
            Printed.kept += len(part)
            with contextlib.suppress(OSError):
                os.write(2, part.encode("utf-8", "backslashreplace"))
        Printed.dropped += len(s) - min(len(s), room)
        return len(s)

    def fileno(self) -> int:
        return 2

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    @staticmethod
    def note() -> None:
        """Say how much was not kept (the parent adds it to what it shows)."""
        if Printed.dropped:
            with contextlib.suppress(OSError):
                os.write(2, f"\n... [{Printed.dropped} more characters not kept]\n".encode())


class PrintedBytes(io.RawIOBase):
    """``sys.stdout.buffer``: bytes, decoded and kept as text is."""

    def __init__(self, text: Printed) -> None:
        self.text = text

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self.text.write(bytes(b).decode("utf-8", "replace"))
        return len(b)


class Channel:
    """The result channel: the original stdout, on a descriptor the code is not pointed at.
    Only this process writes records: a child the code forks carries on through this loop (the
    fork returned twice), but its records are dropped."""

    def __init__(self) -> None:
        self.fd = os.dup(1)  # not inherited through exec (Python's default)
        self.pid = os.getpid()
        os.dup2(2, 1)

    def send(self, record: dict) -> None:
        if os.getpid() != self.pid:
            return
        data = (json.dumps(record, ensure_ascii=True) + "\n").encode("ascii")
        while data:
            data = data[os.write(self.fd, data) :]


def run(job: dict, channel: Channel) -> None:
    namespace = {"__name__": "solution"}
    function = job["function"]
    try:
        exec(compile(job["code"], "solution.py", "exec"), namespace)  # noqa: S102 - sandboxed
        if not callable(namespace.get(function)):
            raise NameError(f"the code does not define a function named {function}")
    except BaseException as e:  # noqa: BLE001 - every failure of the code is reported
        channel.send({"load": describe(e)})
        return
    channel.send({"load": None})
    for i, args in enumerate(job["inputs"]):
        try:
            text = repr(namespace[function](*args))
            if len(text) > MAX_OUTPUT_CHARS:
                raise ValueError(f"the returned value is too large ({len(text)} characters)")
            channel.send({"call": i, "output": text})
        except BaseException as e:  # noqa: BLE001
            channel.send({"call": i, "error": describe(e)})


def main() -> None:
    uid, gid, cpu, memory, file_size, files, procs = (int(a) for a in sys.argv[1:8])
    drop_privileges(uid, gid)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # what bwrap leaves open (its userns-block pipe)
    set_limits(cpu, memory, file_size, files, procs)
    os.environ.clear()  # LD_LIBRARY_PATH, set for the interpreter's own library
    channel = Channel()
    channel.send({"ready": True})
    job = json.loads(sys.stdin.buffer.read())
    sys.stdout, sys.stderr = Printed("<stdout>"), Printed("<stderr>")
    run(job, channel)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):  # the code may have replaced or closed them
            stream.flush()
    Printed.note()
    os._exit(0)  # no atexit handlers of the code's


if __name__ == "__main__":
    main()
