"""Resource exhaustion, through the real sandbox: each attack ends in a failed verdict with
feedback, quickly, without hurting the parent, and leaves no process (checked after every test)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from evoforge.sandbox import SandboxLimits, run_code
from evoforge.sandbox.bwrap import LOAD_ALLOWANCE
from tests.helpers.runs import REPO
from tests.helpers.sandbox import LIMITS, attack, evidence, failed, sandbox_processes

QUICK = SandboxLimits(cpu_seconds=1, wall_seconds=2, memory_mb=256)


def timed(code: str, limits: SandboxLimits = QUICK, inputs=((0,),)):
    start = time.monotonic()
    result = attack(code, inputs, limits)
    return result, time.monotonic() - start


def test_memory_bombs_stop_at_the_address_space_limit():
    for code in (
        "x = bytearray(10**10)",
        "x = []\nwhile True:\n    x.append(' ' * 10**7)",
        "import mmap\nm = mmap.mmap(-1, 10**10)",
        "def f(x):\n    return [0] * 10**10",
    ):
        result, seconds = timed(code)
        said = (result.load_error or "") + repr(result.calls)
        assert "MemoryError" in said or "Cannot allocate memory" in said or result.crashed
        assert seconds < 10, code


def test_cpu_burners_are_killed():
    for code in (
        "while True:\n    pass",
        "def f(x):\n    while True:\n        pass",
        "import threading\nthreading.Thread(target=lambda: [0 for _ in iter(int, 1)]).start()\n"
        "threading.Event().wait()",
    ):
        result, seconds = timed(code)
        assert result.timed_out or "CPU time" in (result.crashed or ""), (code, result)
        assert seconds < QUICK.wall_seconds * LOAD_ALLOWANCE + 3  # stretched only by load


def test_sleepers_hit_the_wall_clock():
    result, seconds = timed("import time\ndef f(x):\n    time.sleep(600)")
    assert result.timed_out and "did not finish in time" in result.feedback(["1"])
    assert seconds < QUICK.wall_seconds + 3


def test_grandchildren_holding_the_pipes_do_not_block_or_survive():
    """Forked and double-forked daemons that keep every descriptor open and ignore signals."""
    code = """
import os, signal, time
def daemon():
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
                signal.signal(s, signal.SIG_IGN)
            time.sleep(600)
        os._exit(0)
daemon()
daemon()
def f(x):
    daemon()
    return x
"""
    result, seconds = timed(code, inputs=((1,), (2,)))
    assert [c.output for c in result.calls] == ["1", "2"]
    assert not result.timed_out  # returned as soon as the code did, not when the daemons would


def test_a_fork_bomb_is_capped_by_the_process_limit():
    result, seconds = timed("import os\nwhile True:\n    os.fork()")
    assert result.feedback(["1"]) and seconds < QUICK.wall_seconds * LOAD_ALLOWANCE + 3
    counted = evidence(
        "import os, time\nn = 0\ntry:\n    while n < 100:\n        if os.fork() == 0:\n"
        "            time.sleep(600)\n        n += 1\nexcept OSError as e:\n    err = type(e).__name__\n"
        "def f(x):\n    return [n, err]"
    )
    assert counted[0] < LIMITS.processes and counted[1] == "BlockingIOError"


def test_threads_and_descriptors_are_capped():
    outcomes = evidence(
        """
import os, threading
def threads():
    started = []
    while len(started) < 10000:
        t = threading.Thread(target=threading.Event().wait, daemon=True)
        t.start()
        started.append(t)
def files():
    return [os.open("/dev/null", os.O_RDONLY) for _ in range(100000)]
def f(x):
    return {"threads": attempt(threads), "files": attempt(files)}
"""
    )
    assert all(failed(o) for o in outcomes.values()), outcomes


def test_the_disk_is_a_small_tmpfs():
    outcomes = evidence(
        """
import os
def one_big_file():
    with open("big", "wb") as fh:
        while True:
            fh.write(b"x" * 2**20)
def many_files():
    n = 0
    while n < 64:
        with open(f"part{n}", "wb") as fh:
            fh.write(b"x" * 7 * 2**20)
        n += 1
def f(x):
    return {"big": attempt(one_big_file), "many": attempt(many_files)}
"""
    )
    assert "File too large" in outcomes["big"]  # RLIMIT_FSIZE
    assert "No space left on device" in outcomes["many"]  # the tmpfs's size


def test_millions_of_tiny_files_end_with_the_cpu_limit():
    limits = SandboxLimits(cpu_seconds=3, wall_seconds=10)
    result, seconds = timed(
        "import os\ni = 0\nwhile True:\n    open(f'f{i}', 'w').close()\n    i += 1", limits
    )
    assert result.crashed or result.load_error or result.timed_out
    assert seconds < limits.wall_seconds * LOAD_ALLOWANCE + 5  # 3 s of CPU: longer when busy


def test_huge_output_is_capped_and_an_honest_answer_still_counts():
    code = (
        "import sys\nprint('x' * 10**8)\nsys.stderr.write('y' * 10**7)\n"
        "sys.stdout.buffer.write(b'z' * 10**7)\ndef f(x):\n    return x * 2"
    )
    result = run_code(code, "f", [[2]], LIMITS)
    assert result.matches(["4"]) == [True]  # printing is allowed; it just is not kept
    assert len(result.printed) < 20_000, len(result.printed)
    assert f"[{10**8 + 1 + 2 * 10**7 - 12 * 1024} more characters not kept]" in result.printed
    flood = "import os\nos.write(1, b'x' * 10**6)\ndef f(x):\n    return x * 2"
    result = run_code(flood, "f", [[2]], LIMITS)  # past sys.stdout: the parent caps it
    assert result.matches(["4"]) == [True] and "more bytes not kept" in result.printed


def test_flooding_the_result_channel_or_returning_a_giant_fails():
    flood = "import os\nfd = os.dup(1)\nfor fd in range(3, 10):\n    try:\n        os.write(fd, b'x' * 10**7)\n    except OSError:\n        pass"
    result = attack(flood)
    assert "result channel" in (result.crashed or "")
    result = attack("def f(x):\n    return 'x' * 10**7")
    assert "too large" in result.calls[0].error


def test_a_sandbox_dies_with_the_process_that_started_it():
    """evoforge killed mid-verification (SIGKILL, no cleanup): bwrap's --die-with-parent takes
    the sandbox down with it (the autouse check then finds nothing left)."""
    script = "from evoforge.sandbox import run_code\nrun_code('import time\\ntime.sleep(600)', 'f', [[1]])"
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO))
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            "runner.py" in " ".join(p.cmdline()) for p in sandbox_processes()
        ):
            time.sleep(0.05)
        inside = sandbox_processes()  # bwrap (host root when evoforge is) and the runner
        assert any("runner.py" in " ".join(p.cmdline()) for p in inside)
    finally:
        parent.kill()
        parent.wait()
    # orphans are no longer this process's descendants: follow the ones seen before the kill
    gone, alive = psutil.wait_procs(inside, timeout=5)
    assert not alive, [(p.pid, p.name()) for p in alive]
