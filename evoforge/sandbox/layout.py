"""What the sandbox is made of: the host files it sees, and why it cannot start.

The view is read-only: the shared libraries the interpreter and its standard library's
extension modules load (only their directories: on Debian /usr/lib/<multiarch>, not the rest of
/usr/lib with its dist-packages), the loader's cache, the interpreter, its standard library
(site-packages hidden) and the runner. The only writable place is a tmpfs at /tmp.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from evoforge.errors import EvoforgeError

PYTHON_DIR = "/python"
RUNNER = Path(__file__).with_name("runner.py")
RUNNER_INSIDE = f"{PYTHON_DIR}/runner.py"
LOADER_CACHE = "/etc/ld.so.cache"
SYSTEM_LIBRARIES = ("/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64", "/lib32")
"""Where shared libraries live; the whole of these is the view when ``ldd`` is missing."""
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


def hint_for(problem: str) -> str:
    """How to fix a failed start, from bwrap's message."""
    missing = re.search(r"Can't (?:bind mount|mount) /oldroot(/\S+) on .*No such file", problem)
    if missing:  # a host path the sandbox mounts is gone (e.g. a device node under /dev)
        return f"{missing.group(1)} is missing on this machine; restore it (see `man bwrap`, --dev)"
    if "seccomp" in problem.lower():
        return (
            "the kernel must accept seccomp filters (CONFIG_SECCOMP_FILTER=y; in a container, "
            "allow prctl(PR_SET_SECCOMP))"
        )
    words = ("namespace", "uid map", "gid map", "setgroups", "not permitted", "mount", "denied")
    if any(w in problem.lower() for w in words):
        return USERNS_HINT
    return "check that `bwrap --unshare-all --ro-bind / / true` works here"


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


@functools.cache
def library_dirs(interp: Interpreter) -> tuple[str, ...]:
    """The directories holding every shared library that the interpreter, libpython and the
    standard library's extension modules load (by ``ldd``) from the system's library directories,
    as real paths, with the directory the loader is named in. SYSTEM_LIBRARIES whole when ``ldd``
    is missing or fails."""
    objects = [interp.binary, *([interp.library] if interp.library else [])]
    objects += sorted(glob.glob(os.path.join(interp.stdlib, "lib-dynload", "*.so")))
    try:
        run = subprocess.run(
            ["ldd", *objects], capture_output=True, text=True, timeout=60, env={"LC_ALL": "C"}
        )
    except (OSError, subprocess.SubprocessError):
        run = None
    paths = [] if run is None else re.findall(r"^\s+(?:\S+ => )?(/\S+) \(0x", run.stdout, re.M)
    if not paths:
        return tuple(p for p in SYSTEM_LIBRARIES if os.path.isdir(p) and not os.path.islink(p))
    system = tuple(os.path.realpath(p) + "/" for p in SYSTEM_LIBRARIES if os.path.isdir(p))
    found = set()
    for path in paths:
        for d in (os.path.realpath(os.path.dirname(path)), os.path.dirname(os.path.realpath(path))):
            if (d + "/").startswith(system):  # not libpython's own directory, say
                found.add(d)  # where the loader looks it up, and where the file is
    # a directory inside another one is bound with it
    return tuple(d for d in sorted(found) if not any(d.startswith(o + "/") for o in found))


def filesystem_args(interp: Interpreter, disk_mb: int, runner_fd: int) -> list[str]:
    """bwrap's arguments for the view (see the module's doc) and one tmpfs of ``disk_mb`` at
    /tmp, the working directory. The runner is a copy read from ``runner_fd``: a bind would show
    the host path of evoforge's checkout in the sandbox's mountinfo."""
    stdlib = f"{PYTHON_DIR}/lib/{os.path.basename(interp.stdlib)}"
    binds = [(d, d) for d in library_dirs(interp)]
    binds += [
        (interp.binary, f"{PYTHON_DIR}/bin/{os.path.basename(interp.binary)}"),
        (interp.stdlib, stdlib),
    ]
    if os.path.isfile(LOADER_CACHE):
        binds.append((LOADER_CACHE, LOADER_CACHE))
    if interp.library:
        binds.append((interp.library, f"{PYTHON_DIR}/lib/{os.path.basename(interp.library)}"))
    # bwrap makes the parents of a bind 0700 (root's inside): the uid of the code needs 0755
    dests = [dest for _, dest in binds] + [RUNNER_INSIDE]
    parents = sorted({str(q) for dest in dests for q in Path(dest).parents if str(q) != "/"})
    links = [p for p in SYSTEM_LIBRARIES if os.path.islink(p)]  # /lib -> usr/lib (merged /usr)
    args = [a for d in parents if d not in links for a in ("--perms", "0755", "--dir", d)]
    for source, dest in binds:
        args += ["--ro-bind", source, dest]
    args += ["--perms", "0644", "--ro-bind-data", str(runner_fd), RUNNER_INSIDE]
    args += [a for p in links for a in ("--symlink", os.readlink(p), p)]
    if os.path.isdir(os.path.join(interp.stdlib, "site-packages")):
        args += ["--tmpfs", f"{stdlib}/site-packages", "--remount-ro", f"{stdlib}/site-packages"]
    if interp.library:
        args += ["--setenv", "LD_LIBRARY_PATH", f"{PYTHON_DIR}/lib"]
    args += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"]
    args += ["--perms", "1777", "--size", str(disk_mb * MB), "--tmpfs", "/tmp"]
    return [*args, "--remount-ro", "/", "--chdir", "/tmp"]
