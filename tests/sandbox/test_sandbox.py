"""Real hostile snippets against the sandbox: each is stopped or denied; the machine is fine after."""

from __future__ import annotations

import os
import random
import socket
import time

import psutil
import pytest

from evoforge.sandbox import SandboxLimits, run_code

LIMITS = SandboxLimits(cpu_seconds=2, wall_seconds=5, memory_mb=256)


def outcome(code):
    return run_code(code, [("f(2)", "4")], LIMITS)


def test_honest_code_passes():
    r = outcome("def f(x):\n    return x * 2")
    assert r.passed == 1 and not r.feedback()


def test_infinite_loop_is_stopped():
    t = time.time()
    r = outcome("while True:\n    pass")
    assert (r.crashed and "CPU time" in r.crashed) or r.timed_out
    assert time.time() - t < LIMITS.wall_seconds + 3 and r.feedback()


def test_sleeping_forever_hits_the_wall_clock():
    r = run_code("import time\ntime.sleep(60)", [], SandboxLimits(wall_seconds=2))
    assert r.timed_out and "did not finish" in r.feedback()


def test_memory_bomb_is_stopped():
    r = outcome("x = []\nwhile True:\n    x.append(' ' * 10**7)")
    assert r.passed == 0 and ("MemoryError" in (r.load_error or "") or r.crashed)


def test_fork_bomb_is_denied():
    before = len(psutil.pids())
    r = outcome("import os\nwhile True:\n    os.fork()")
    assert "os.fork is not allowed" in r.load_error
    r = outcome(
        "import multiprocessing\nps = [multiprocessing.Process(target=print) for _ in range(50)]\n"
        "[p.start() for p in ps]"
    )
    assert r.load_error and "not allowed" in r.load_error
    assert len(psutil.pids()) <= before + 5


def test_subprocess_and_system_are_denied():
    assert "not allowed" in outcome("import subprocess\nsubprocess.run(['true'])").load_error
    assert "os.system is not allowed" in outcome("import os\nos.system('true')").load_error


def test_writing_outside_its_directory_is_denied(tmp_path):
    target = tmp_path / "evil.txt"
    r = outcome(f"open({str(target)!r}, 'w').write('x')")
    assert "outside the sandbox directory" in r.load_error and not target.exists()
    r = outcome(f"import os\nos.remove({str(__file__)!r})")
    assert "not allowed" in r.load_error and os.path.exists(__file__)
    # inside its own throwaway directory is fine, and the directory is gone afterwards
    r = outcome(
        "open('scratch.txt', 'w').write('ok')\nimport os\ndef f(x):\n    return os.getcwd()"
    )
    sandbox_dir = eval(r.tests[0]["got"])
    assert not os.path.exists(sandbox_dir)


def test_parent_environment_is_not_visible(monkeypatch):
    monkeypatch.setenv("EVOFORGE_SECRET_TOKEN", "hunter2")
    r = outcome("import os\ndef f(x):\n    return sorted(os.environ)")
    assert "EVOFORGE_SECRET_TOKEN" not in r.tests[0]["got"]
    r = outcome("import os\nprint(open(f'/proc/{os.getppid()}/environ').read())")
    assert "not allowed" in r.load_error


def test_network_is_denied():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    r = outcome(f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)")
    assert r.load_error and "not allowed" in r.load_error
    with pytest.raises(socket.timeout):
        server.accept()
    server.close()


def test_native_code_is_denied():
    assert "import of ctypes is not allowed" in outcome("import ctypes").load_error


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
    "import ctypes",
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
    """A few hundred generated combinations of hostile statements, wrapped in evasions."""
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
        code = rng.choice(wrappers).format(s=stmt)
        r = run_code(code, [], SandboxLimits(cpu_seconds=2, wall_seconds=4, memory_mb=256))
        assert r.load_error or r.crashed or r.timed_out, f"not stopped: {code!r}"
    assert not os.path.exists("/etc/evoforge_fuzz") and not os.path.exists("/tmp/evoforge_fuzz_dir")
    assert os.path.isdir("/tmp") and os.getppid() == parent
