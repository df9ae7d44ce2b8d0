"""Limits that hold inside nested namespaces: the seccomp filter refuses new namespaces, memfds,
io_uring, the keyring and System V IPC, while threads, fork and child processes still work; the
view shows no host path of evoforge's checkout and not the rest of /usr/lib."""

from __future__ import annotations

import os
import platform

import pytest

from evoforge.envs import get_env
from evoforge.sandbox import SandboxLimits, SandboxUnavailable, bwrap, run_code, seccomp
from evoforge.sandbox.layout import RUNNER
from tests.helpers.runs import REPO
from tests.helpers.sandbox import evidence

NR = seccomp.ARCHES[platform.machine()][1]
EPERM, ENOSYS = "[Errno 1]", "[Errno 38]"
NATIVE = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def native(name, *args):
    if getattr(libc, name)(*args) == -1:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return "done"
def raw(nr, *args):
    r = libc.syscall(nr, *args)
    if r == -1:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return r
"""
NESTED_TMPFS = """
def nested_tmpfs():
    uid, gid = os.getuid(), os.getgid()
    native("prctl", 4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: own /proc/self again after the uid switch
    native("unshare", 0x10000000 | 0x00020000)  # a user and a mount namespace
    for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as fh:
            fh.write(text)
    os.makedirs("/tmp/big", exist_ok=True)
    native("mount", b"none", b"/tmp/big", b"tmpfs", 0, b"size=1g")
    for i in range(4):  # 28 MiB past a 16 MiB tmpfs, each file under the file size limit
        with open(f"/tmp/big/{i}", "wb") as fh:
            fh.write(b"x" * 7 * 2**20)
    return "28 MiB written"
"""
MEMFD = """
def memfd_hoard():
    fds = [os.memfd_create(f"hoard{i}") for i in range(40)]
    for fd in fds:  # 280 MiB outside the address space and the disk, each under the file limit
        os.write(fd, b"x" * 7 * 2**20)
    return sum(os.fstat(fd).st_size for fd in fds)
"""


def test_namespaces_memfd_io_uring_keyring_and_ipc_are_refused():
    outcomes = evidence(
        NATIVE
        + NESTED_TMPFS
        + MEMFD
        + f"""
def clone_newuser():
    pid = raw({NR["clone"]}, 0x10000000 | 17, 0, 0, 0, 0)  # CLONE_NEWUSER | SIGCHLD
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid
def f(x):
    return {{
        "nested_tmpfs": attempt(nested_tmpfs),
        "unshare_net": attempt(lambda: native("unshare", 0x40000000)),
        "setns": attempt(lambda: native("setns", os.open("/proc/self/ns/user", os.O_RDONLY), 0)),
        "clone_newuser": attempt(clone_newuser),
        "memfd": attempt(memfd_hoard),
        "memfd_raw": attempt(lambda: raw({NR["memfd_create"]}, b"x", 0)),
        "io_uring": attempt(lambda: raw({NR["io_uring_setup"]}, 8, ctypes.create_string_buffer(120))),
        "add_key": attempt(lambda: raw({NR["add_key"]}, b"user", b"evoforge", b"data", 4, -4)),
        "keyctl": attempt(lambda: raw({NR["keyctl"]}, 0, -4, 0)),  # KEYCTL_GET_KEYRING_ID
        "request_key": attempt(lambda: raw({NR["request_key"]}, b"user", b"evoforge", 0, 0)),
        "shmget": attempt(lambda: native("shmget", 0, 64 * 2**20, 0o1600)),
        "msgget": attempt(lambda: native("msgget", 0, 0o1600)),
        "bpf": attempt(lambda: raw({NR["bpf"]}, 0, 0, 0)),
        "perf": attempt(lambda: raw({NR["perf_event_open"]}, 0, 0, -1, -1, 0)),
        "userfaultfd": attempt(lambda: raw({NR["userfaultfd"]}, 0)),
        "clone3": attempt(lambda: raw({NR["clone3"]}, 0, 0)),
    }}
"""
    )
    assert outcomes.pop("clone3").startswith("OSError: " + ENOSYS), "glibc falls back to clone"
    for name, outcome in outcomes.items():
        assert EPERM in outcome, (name, outcome)  # the filter's answer, not an accident


def test_threads_forks_and_child_processes_still_work():
    outcomes = evidence(
        """
import os, subprocess, sys, threading
def thread():
    box = []
    t = threading.Thread(target=lambda: box.append(1))
    t.start()
    t.join()
    return box
def fork():
    pid = os.fork()
    if pid == 0:
        os._exit(7)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
def child():
    run = subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True,
                         text=True, env={"LD_LIBRARY_PATH": "/python/lib"})
    return run.stdout.strip() or run.stderr[-200:]
def f(x):
    return {"thread": attempt(thread), "fork": attempt(fork), "child": attempt(child)}
"""
    )
    assert outcomes == {"thread": "ok: [1]", "fork": "ok: 7", "child": "ok: '42'"}


def test_no_host_path_of_the_checkout_and_no_dist_packages_are_shown():
    seen = evidence(
        """
import os
def read(path):
    with open(path, "rb") as fh:
        return fh.read().decode("utf-8", "replace")
def f(x):
    return {
        "cmdline": read("/proc/1/cmdline").replace("\\0", " "),
        "mountinfo": read("/proc/self/mountinfo"),
        "usr_lib": sorted(os.listdir("/usr/lib")),
        "dist": attempt(lambda: os.listdir("/usr/lib/python3/dist-packages")),
    }
""",
        SandboxLimits(output_kb=256),
    )
    for where in ("cmdline", "mountinfo"):
        assert str(REPO) not in seen[where] and str(RUNNER) not in seen[where], seen[where]
    assert "--ro-bind" not in seen["cmdline"] and "/python/runner.py" in seen["cmdline"]
    assert "/usr/lib/python3" not in seen["mountinfo"]
    assert all("python" not in d for d in seen["usr_lib"]), seen["usr_lib"]
    assert seen["dist"].startswith("FileNotFoundError"), seen["dist"]


def test_every_standard_library_extension_module_still_loads():
    """Only the libraries' directories are shown: each lib-dynload module still finds its own."""
    failures = evidence(
        """
import importlib, os
def f(x):
    where = os.path.join(os.path.dirname(os.__file__), "lib-dynload")
    names = sorted({n.split(".")[0] for n in os.listdir(where) if n.endswith(".so")})
    failed = {}
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001
            failed[name] = f"{type(e).__name__}: {e}"
    return failed
""",
        SandboxLimits(cpu_seconds=10, wall_seconds=30, memory_mb=512),
    )
    # modules whose import needs more than libraries (a display, a test-only build) may fail
    assert not {n: e for n, e in failures.items() if "cannot open shared object" in e}, failures


def test_a_nested_namespace_answer_is_a_failed_code_verdict():
    env = get_env("code")
    task = env.tasks("train", 1, seed=0)[0]
    name = task.metadata["function"]
    for attack in (NESTED_TMPFS, MEMFD):
        entry = attack.split("def ")[1].split("(")[0]
        answer = f"```python\n{NATIVE}{attack}\ndef {name}(xs):\n    return {entry}()\n```"
        verdict = env.verify(task, answer)
        assert not verdict.passed and "Operation not permitted" in verdict.feedback, verdict


def test_disable_userns_is_used_where_bwrap_has_it(monkeypatch):
    """Not root: bwrap >= 0.8 also sets the sandbox's own limit of user namespaces to none; an
    older bwrap runs without the option (the seccomp filter refuses them all the same)."""
    monkeypatch.setattr(bwrap, "version", lambda path: (0, 8, 0))
    fds = {"info": 5, "seccomp": 6, "runner": 7}
    options, _ = bwrap.command("bwrap", SandboxLimits(), False, fds)
    assert "--disable-userns" in options and options[options.index("--seccomp") + 1] == "6"
    monkeypatch.setattr(bwrap, "version", lambda path: (0, 6, 1))
    options, _ = bwrap.command("bwrap", SandboxLimits(), False, fds)
    assert "--disable-userns" not in options and "--seccomp" in options
    options, _ = bwrap.command("bwrap", SandboxLimits(), True, {**fds, "block": 8})
    assert "--disable-userns" not in options  # bwrap refuses it with --userns-block-fd


def test_the_filter_is_well_formed():
    for machine in seccomp.ARCHES:
        program = seccomp.program(machine)
        assert program and len(program) % 8 == 0 and len(program) // 8 < 4096
    assert seccomp.program("riscv64") is None
    assert set(seccomp.X86_64) - {"modify_ldt"} == set(seccomp.AARCH64)


@pytest.mark.skipif(os.geteuid() != 0, reason="the runner's own check runs where evoforge is root")
def test_without_the_filter_the_runner_refuses_to_run_code(monkeypatch):
    """As root bwrap cannot disable user namespaces: were the filter to let one through, the
    runner stops before any code runs, and the sandbox is reported unavailable."""
    monkeypatch.setattr(seccomp, "program", lambda: seccomp._op(seccomp.RET, seccomp.ALLOW))
    with pytest.raises(SandboxUnavailable, match="let a user namespace through"):
        run_code("def f(x):\n    return x", "f", [[1]])
