"""Escapes, through the real bubblewrap sandbox: every technique must fail, and the host must
show no trace of it. Each attack reports its own outcomes; the test reads them and the host."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from evoforge.sandbox import bwrap
from tests.helpers.sandbox import evidence, failed

RUNNER = bwrap.RUNNER


def fingerprint(path) -> tuple:
    st = os.stat(path)
    return (
        st.st_mode,
        st.st_uid,
        st.st_size,
        st.st_mtime_ns,
        hashlib.sha256(path.read_bytes()).digest(),
    )


def test_the_view_holds_only_what_python_needs():
    seen = evidence(
        """
import os
def f(x):
    status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
    mounts = {l.split()[4]: l.split()[5] for l in open("/proc/self/mountinfo")}
    return {
        "root": sorted(os.listdir("/")), "etc": os.listdir("/etc"), "usr": sorted(os.listdir("/usr")),
        "python": sorted(os.listdir("/python")), "tmp": os.listdir("/tmp"), "cwd": os.getcwd(),
        "site": os.listdir(os.path.dirname(os.__file__) + "/site-packages"),
        "pids": sorted(p for p in os.listdir("/proc") if p.isdigit()), "env": dict(os.environ),
        "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getgroups()],
        "caps": [status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapAmb")],
        "nnp": status["NoNewPrivs"].strip(), "host": os.uname().nodename,
        "root_ro": mounts["/"].startswith("ro"), "tmp_rw": mounts["/tmp"].startswith("rw"),
        "fds": {fd: os.readlink(f"/proc/self/fd/{fd}") for fd in (0, 1, 2, 3)},
        "fd_count": len(os.listdir("/proc/self/fd")) - 1,  # less the listing's own
    }
"""
    )
    assert set(seen["root"]) <= {"dev", "etc", "lib", "lib64", "proc", "python", "tmp", "usr"}
    assert seen["etc"] == ["ld.so.cache"] and set(seen["usr"]) <= {"lib", "lib64", "lib32"}
    assert seen["python"] == ["bin", "lib", "runner.py"] and seen["site"] == []
    assert seen["tmp"] == [] and seen["cwd"] == "/tmp" and seen["env"] == {}
    assert seen["pids"] == ["1", "2"]  # bwrap's init and the code: nothing of the host
    assert seen["ids"][:3] == [1000, 1000, 1000]
    assert set(seen["caps"]) == {"0000000000000000"} and seen["nnp"] == "1"
    assert seen["host"] == "sandbox" and seen["root_ro"] and seen["tmp_rw"]
    # the job, its prints (stdout and stderr), the result channel: nothing else of the host's
    assert seen["fd_count"] == 4 and seen["fds"][0].startswith("/memfd:evoforge-job")
    assert seen["fds"][1] == seen["fds"][2] != seen["fds"][3] and "pipe:" in seen["fds"][3]


def test_writes_outside_the_tmpfs_fail(tmp_path):
    before = fingerprint(RUNNER)
    marker = tmp_path / "pwned"
    outcomes = evidence(
        f"""
import os, shutil
def write(path, mode="w"):
    with open(path, mode) as fh:
        return fh.write("x")
def f(x):
    return {{
        "etc": attempt(lambda: write("/etc/evoforge-probe")),
        "root": attempt(lambda: write("/evoforge-probe")),
        "runner": attempt(lambda: write("/python/runner.py", "a")),
        "stdlib": attempt(lambda: write(os.__file__, "a")),
        "site": attempt(lambda: write(os.path.dirname(os.__file__) + "/site-packages/evil.pth")),
        "libs": attempt(lambda: write("/usr/lib/evoforge-probe")),
        "shm": attempt(lambda: write("/dev/shm/evoforge-probe")),
        "dev": attempt(lambda: os.mkdir("/dev/evoforge")),
        "sysctl": attempt(lambda: write("/proc/sys/kernel/hostname")),
        "host_dir": attempt(lambda: write({str(marker)!r})),
        "remove": attempt(lambda: os.remove("/python/runner.py")),
        "rename": attempt(lambda: os.rename("/python/runner.py", "/tmp/r")),
        "rmtree": attempt(lambda: shutil.rmtree("/python")),
        "truncate": attempt(lambda: os.truncate("/python/runner.py", 0)),
        "scratch": attempt(lambda: write("/tmp/scratch")),
    }}
"""
    )
    scratch = outcomes.pop("scratch")
    assert scratch == "ok: 1", scratch  # its own tmpfs is writable
    assert all(failed(o) for o in outcomes.values()), outcomes
    assert not marker.exists() and not os.path.exists("/etc/evoforge-probe")
    assert fingerprint(RUNNER) == before


def test_dir_fd_o_trunc_chmod_and_chown_fail():
    before = fingerprint(RUNNER)
    outcomes = evidence(
        """
import os
ROOT = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
PY = os.open("/python", os.O_RDONLY | os.O_DIRECTORY)
RO = os.open("/python/runner.py", os.O_RDONLY)
def f(x):
    return {
        "trunc_dir_fd": attempt(lambda: os.open("python/runner.py", os.O_WRONLY | os.O_TRUNC, dir_fd=ROOT)),
        "trunc": attempt(lambda: os.open("/python/runner.py", os.O_RDONLY | os.O_TRUNC)),
        "creat_dir_fd": attempt(lambda: os.open("evil", os.O_CREAT | os.O_WRONLY, dir_fd=PY)),
        "mkdir_dir_fd": attempt(lambda: os.mkdir("evil", dir_fd=PY)),
        "symlink_dir_fd": attempt(lambda: os.symlink("/tmp", "evil", dir_fd=PY)),
        "unlink_dir_fd": attempt(lambda: os.unlink("runner.py", dir_fd=PY)),
        "chmod_dir_fd": attempt(lambda: os.chmod("runner.py", 0o777, dir_fd=PY)),
        "chmod": attempt(lambda: os.chmod("/python/runner.py", 0o777)),
        "fchmod": attempt(lambda: os.fchmod(RO, 0o777)),
        "chown": attempt(lambda: os.chown("/python/runner.py", 1000, 1000)),
        "fchown": attempt(lambda: os.fchown(RO, 1000, 1000)),
        "ftruncate": attempt(lambda: os.ftruncate(RO, 0)),
        "utime": attempt(lambda: os.utime("/python/runner.py", (0, 0))),
        "reopen_rw": attempt(lambda: open(f"/proc/self/fd/{RO}", "r+")),
        "hardlink": attempt(lambda: os.link("/python/runner.py", "/tmp/runner")),
    }
"""
    )
    assert all(failed(o) for o in outcomes.values()), outcomes
    assert fingerprint(RUNNER) == before


def test_host_files_and_other_processes_proc_entries_are_unreachable(tmp_path, monkeypatch):
    secret = f"evoforge-secret-{os.urandom(6).hex()}"
    (tmp_path / "secret.txt").write_text(secret)
    monkeypatch.setenv("EVOFORGE_TEST_SECRET", secret)
    outcomes = evidence(
        f"""
import os
def read(path):
    with open(path, "rb") as fh:
        return fh.read(200)
def f(x):
    paths = [
        "/etc/shadow", "/etc/passwd", "/etc/hostname", "/root/.ray/auth_token",
        os.path.expanduser("~/.ray/auth_token"), {str(tmp_path / "secret.txt")!r},
        {str(RUNNER)!r}, {sys.executable!r}, "/proc/1/root/etc/shadow",
        "/proc/self/root/etc/shadow", "/proc/self/cwd/../etc/shadow",
        "/proc/thread-self/root/etc/passwd", "/proc/1/environ", "/proc/self/../1/environ",
        "/proc//1//environ", "/proc/./1/./environ", "/proc/1/mem", "/proc/1/cwd/x",
    ]
    found = {{p: attempt(lambda p=p: read(p)) for p in paths}}
    found["exe_link"] = attempt(lambda: os.readlink("/proc/1/exe"))
    found["env"] = attempt(lambda: [read(f"/proc/{{p}}/environ") for p in os.listdir("/proc") if p.isdigit()])
    found["cmdline"] = attempt(lambda: [read(f"/proc/{{p}}/cmdline") for p in os.listdir("/proc") if p.isdigit() and p != "1"])
    return found
"""
    )
    assert secret not in repr(outcomes)
    env = outcomes.pop("env")
    cmdline = outcomes.pop("cmdline")
    assert failed(env) or env == "ok: [b'']", env  # its own environment is empty
    assert "runner.py" in cmdline
    assert all(failed(o) for o in outcomes.values()), outcomes


def test_symlink_tricks_lead_nowhere(tmp_path):
    (tmp_path / "secret.txt").write_text("evoforge-host-file")
    outcomes = evidence(
        f"""
import os
def via(link, target, path, mode="r"):
    os.symlink(target, link)
    with open(path, mode) as fh:
        return fh.read(100) if "r" in mode else fh.write("x")
def f(x):
    return {{
        "etc": attempt(lambda: via("/tmp/e", "/etc", "/tmp/e/shadow")),
        "proc_root": attempt(lambda: via("/tmp/r", "/proc/1/root", "/tmp/r/etc/shadow")),
        "host_path": attempt(lambda: via("/tmp/h", {str(tmp_path)!r}, "/tmp/h/secret.txt")),
        "write_through": attempt(lambda: via("/tmp/w", "/python/runner.py", "/tmp/w", "w")),
        "dotdot": attempt(lambda: via("/tmp/d", "../../../../etc/shadow", "/tmp/d")),
        "loop": attempt(lambda: via("/tmp/l", "/tmp/l", "/tmp/l")),
    }}
"""
    )
    assert "evoforge-host-file" not in repr(outcomes)
    assert all(failed(o) for o in outcomes.values()), outcomes


@pytest.fixture
def victim():
    """A host process the sandbox must not be able to touch."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def test_no_process_outside_can_be_signalled_traced_or_written(victim):
    me = os.getpid()
    outcomes = evidence(
        f"""
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
def native(name, *args):
    if getattr(libc, name)(*args) == -1:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return "done"
def f(x):
    found = {{}}
    for pid in ({victim.pid}, {me}):
        found[f"kill {{pid}}"] = attempt(lambda pid=pid: os.kill(pid, signal.SIGKILL))
        found[f"pidfd {{pid}}"] = attempt(lambda pid=pid: os.pidfd_open(pid))
    found["kill init"] = attempt(lambda: os.kill(1, signal.SIGKILL))
    found["pidfd init"] = attempt(lambda: signal.pidfd_send_signal(os.pidfd_open(1), signal.SIGKILL))
    found["kill all"] = attempt(lambda: os.kill(-1, signal.SIGKILL))
    found["init mem"] = attempt(lambda: open("/proc/1/mem", "r+b"))
    found["ptrace init"] = attempt(lambda: native("ptrace", 16, 1, 0, 0))  # PTRACE_ATTACH
    found["setuid 0"] = attempt(lambda: native("setuid", 0))
    found["sweep"] = attempt(lambda: [p for p in range(2, 4096) if p != os.getpid() and not os.kill(p, 0)])
    return found
"""
    )
    assert victim.poll() is None  # still running
    sweep = outcomes.pop("sweep")
    assert sweep in ("ok: []", "ProcessLookupError: [Errno 3] No such process"), sweep
    assert all(failed(o) for o in outcomes.values()), outcomes


def test_native_code_and_import_tricks_gain_nothing():
    before = fingerprint(RUNNER)
    outcomes = evidence(
        f"HOST_PATH = {[p for p in sys.path if p]!r}\n"
        """
import ctypes, importlib, importlib.util, os, sys
sys.path[:0] = HOST_PATH + ["/usr/lib/python3/dist-packages"]  # where torch and evoforge live outside
aliased = importlib.import_module("_ctypes")
spec = importlib.util.spec_from_file_location("c2", os.path.dirname(os.__file__) + "/ctypes/__init__.py")
c2 = importlib.util.module_from_spec(spec); spec.loader.exec_module(c2)
libc = c2.CDLL(None, use_errno=True)
def native(name, *args):
    if getattr(libc, name)(*args) == -1:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return "done"
def nested_remount():
    native("unshare", 0x10000000 | 0x00020000)  # a new user and mount namespace, if allowed
    native("mount", None, b"/python", None, 0x20 | 0x1000, None)  # MS_REMOUNT|MS_BIND, not ro
    with open("/python/runner.py", "a") as fh:
        return fh.write("x")
def f(x):
    return {
        "alias": "ok" if aliased else "",
        "cffi": attempt(lambda: __import__("cffi")),
        "evoforge": attempt(lambda: __import__("evoforge")),
        "torch": attempt(lambda: importlib.import_module("torch")),
        "setresuid": attempt(lambda: native("setresuid", 0, 0, 0)),
        "chroot": attempt(lambda: native("chroot", b"/tmp")),
        "mount": attempt(lambda: native("mount", b"none", b"/python", b"tmpfs", 0, None)),
        "umount": attempt(lambda: native("umount2", os.path.dirname(os.__file__).encode() + b"/site-packages", 2)),
        "netns": attempt(lambda: native("unshare", 0x40000000)),
        "nested": attempt(nested_remount),
    }
"""
    )
    assert outcomes.pop("alias") == "ok"  # native code loads: the OS, not Python, is the wall
    assert all(failed(o) for o in outcomes.values()), outcomes
    assert fingerprint(RUNNER) == before


def test_new_processes_find_nothing_to_run():
    outcomes = evidence(
        """
import os, pty, subprocess, sys
def child_reads(path):
    run = subprocess.run([sys.executable, "-c", f"print(open({path!r}).read())"],
                         env={"LD_LIBRARY_PATH": "/python/lib"}, capture_output=True, text=True)
    if run.returncode:
        raise OSError(run.stderr.strip().splitlines()[-1])
    return run.stdout
def through_pty():
    seen = []
    def read(fd):
        data = os.read(fd, 1024)
        seen.append(data)
        return data
    pty.spawn(["/bin/sh", "-c", "echo pwned"], read)
    return b"".join(seen)
def f(x):
    return {
        "system": attempt(lambda: os.system("echo pwned")),
        "sh": attempt(lambda: subprocess.run(["/bin/sh", "-c", "id"])),
        "execv": attempt(lambda: os.execv("/usr/bin/id", ["id"])),
        "pty": attempt(through_pty),
        "posix_spawn": attempt(lambda: os.waitpid(os.posix_spawn("/bin/true", ["true"], {}), 0)),
        "python_child": attempt(lambda: child_reads("/etc/shadow")),
    }
"""
    )
    assert outcomes.pop("system") == "ok: 32512"  # exit status 127: there is no shell
    assert "pwned" not in outcomes.pop("pty")
    assert all(failed(o) for o in outcomes.values()), outcomes
