"""Real hostile snippets against the sandbox: each is stopped or contained; the machine is fine
after. (The red team's classes, technique by technique, are in the other files here.)"""

from __future__ import annotations

import os
import random
import socket
import time

import pytest

from evoforge.sandbox import SandboxLimits, run_code
from evoforge.sandbox.bwrap import LOAD_ALLOWANCE

LIMITS = SandboxLimits(cpu_seconds=2, wall_seconds=5, memory_mb=256)


def outcome(code):
    return run_code(code, "f", [[2]], LIMITS)


def test_honest_code_passes():
    r = outcome("def f(x):\n    return x * 2")
    assert r.matches(["4"]) == [True] and not r.feedback(["4"])
    r = outcome("def f(x):\n    return x * 3")
    assert r.matches(["4"]) == [False] and r.feedback(["4"]) == "f(2) returned 6, expected 4"


def test_infinite_loop_is_stopped():
    t = time.time()
    r = outcome("while True:\n    pass")
    assert (r.crashed and "CPU time" in r.crashed) or r.timed_out
    # its CPU seconds end it; on a busy machine they take longer, up to the stretched wall clock
    assert time.time() - t < LIMITS.wall_seconds * LOAD_ALLOWANCE + 3 and r.feedback(["4"])


def test_sleeping_forever_hits_the_wall_clock():
    r = run_code("import time\ntime.sleep(60)", "f", [[1]], SandboxLimits(wall_seconds=2))
    assert r.timed_out and "did not finish" in r.feedback(["1"])


def test_memory_bomb_is_stopped():
    r = outcome("x = []\nwhile True:\n    x.append(' ' * 10**7)")
    assert not r.calls and ("MemoryError" in (r.load_error or "") or r.crashed)


def test_fork_bomb_is_capped():
    r = outcome("import os\nwhile True:\n    os.fork()")
    assert r.matches(["4"]) == [False] and r.feedback(["4"])
    r = outcome(
        "import multiprocessing\nps = [multiprocessing.Process(target=print) for _ in range(50)]\n"
        "[p.start() for p in ps]"
    )
    assert r.load_error
    r = outcome(
        "import os\nn = 0\ntry:\n    while True:\n        os.fork() or os.pause()\n"
        "        n += 1\nexcept OSError:\n    pass\ndef f(x):\n    return n"
    )
    assert int(r.calls[0].output) < LIMITS.processes  # RLIMIT_NPROC, threads included


def test_subprocess_and_system_find_nothing_to_run():
    r = outcome("import subprocess\nsubprocess.run(['true'])")
    assert "FileNotFoundError" in r.load_error
    r = outcome("import os\ndef f(x):\n    return os.system('true')")
    assert r.calls[0].output == str(127 << 8)  # no shell


def test_writing_outside_its_directory_fails(tmp_path):
    target = tmp_path / "evil.txt"
    r = outcome(f"open({str(target)!r}, 'w').write('x')")
    assert "FileNotFoundError" in r.load_error and not target.exists()
    r = outcome(f"import os\nos.remove({str(__file__)!r})")
    assert r.load_error and os.path.exists(__file__)
    # its own directory is writable, and it is nowhere on the host
    name = f"evoforge-scratch-{os.getpid()}.txt"
    r = outcome(f"open({name!r}, 'w').write('ok')\nimport os\ndef f(x):\n    return os.getcwd()")
    assert r.calls[0].output == "'/tmp'" and not os.path.exists(f"/tmp/{name}")


def test_parent_environment_is_not_visible(monkeypatch):
    monkeypatch.setenv("EVOFORGE_SECRET_TOKEN", "hunter2")
    r = outcome("import os\ndef f(x):\n    return sorted(os.environ)")
    assert r.calls[0].output == "[]"
    r = outcome("import os\nprint(open(f'/proc/{os.getppid()}/environ').read())")
    assert "hunter2" not in r.printed and "PermissionError" in r.load_error


def test_network_is_unreachable():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    r = outcome(f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)")
    assert "ConnectionRefusedError" in r.load_error
    with pytest.raises(socket.timeout):
        server.accept()
    server.close()


def test_native_code_gains_nothing():
    r = outcome("import ctypes\ndef f(x):\n    return ctypes.CDLL(None).setuid(0)")
    assert r.calls[0].output == "-1"


HOSTILE = [
    "import os; os.fork()",
    "import os; os.execv('/bin/sh', ['sh'])",
    "import os; os.system('id')",
    "import subprocess; subprocess.Popen(['id'])",
    "import pty; pty.spawn('/bin/sh')",
    "open('/etc/evoforge_fuzz', 'w')",
    "import shutil; shutil.rmtree('/tmp')",
    "import os; os.chdir('/')",
    "import socket; socket.socket().connect(('127.0.0.1', 22))",
    "import ctypes; ctypes.CDLL(None).kill(-1, 9)",
    "import _posixsubprocess",
    "import os; os.kill(os.getppid(), 9)",
    "import os; os.rename('/etc/hostname', 'x')",
    "import os; os.mkdir('/tmp/evoforge_fuzz_dir')",
    "import os; os.symlink('/etc', 'e'); open('e/fuzz', 'w')",
    "import sys; sys.addaudithook(lambda *a: None)",
    "import os; os.putenv('X', '1')",
    "import os; os.posix_spawn('/bin/true', ['true'], {})",
    "import mmap",
    "import os; open('/proc/1/environ').read()",
]


@pytest.mark.slow
def test_fuzz_hostile_snippets_none_escapes():
    """A few hundred generated combinations of hostile statements, wrapped in evasions: none
    passes, none leaves a trace on the host."""
    rng = random.Random(0)
    wrappers = [
        "{s}",
        "try:\n    {s}\nexcept Exception:\n    pass\n{s}",
        "exec({s!r})",
        "def g():\n    {s}\ng()",
        "eval(compile({s!r}, 'x', 'exec'))",
        "[{s!r} for _ in range(1)] and exec({s!r})",
        "__import__('builtins').exec({s!r})",
        "import threading\nt = threading.Thread(target=lambda: exec({s!r}))\nt.start(); t.join()\nexec({s!r})",
    ]
    parent = os.getppid()
    for _i in range(200):
        stmt = rng.choice(HOSTILE)
        code = rng.choice(wrappers).format(s=stmt) + "\ndef f(x):\n    return x"
        r = run_code(code, "f", [[1]], SandboxLimits(cpu_seconds=2, wall_seconds=4, memory_mb=256))
        assert r.matches(["'evoforge-unknowable'"]) == [False], code
    assert not os.path.exists("/etc/evoforge_fuzz") and not os.path.exists("/tmp/evoforge_fuzz_dir")
    assert os.path.isdir("/tmp") and os.getppid() == parent
