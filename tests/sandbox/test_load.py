"""A busy machine does not fail an honest answer: the code's wall clock stretches by the time it
waited for a CPU. The machine is made busy for real: CPU burners pinned to the one CPU the
sandbox runs on."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time

import pytest

from evoforge.sandbox import SandboxLimits, run_code
from evoforge.sandbox.layout import interpreter, library_dirs

BURNERS = 7
WORK_CPU_S = 0.2


def work_for(seconds: float) -> int:
    """An n for which sum(range(n)) takes about ``seconds`` of CPU here."""
    n, start = 2_000_000, time.process_time()
    sum(range(n))
    return int(n * seconds / max(time.process_time() - start, 1e-3))


@contextlib.contextmanager
def one_busy_cpu():
    """This process and the sandboxes it starts pinned to one CPU, with BURNERS processes
    spinning on it: the sandbox gets at most 1/(BURNERS + 1) of a CPU."""
    library_dirs(interpreter())  # found once per process, before the CPU gets busy
    mask = os.sched_getaffinity(0)
    cpu = min(mask)
    # each in a session of its own, as the sandbox is: autogroup scheduling shares the CPU
    # between sessions first
    burners = [
        subprocess.Popen([sys.executable, "-c", "while 1: pass"], start_new_session=True)
        for _ in range(BURNERS)
    ]
    try:
        for p in burners:
            os.sched_setaffinity(p.pid, {cpu})
        os.sched_setaffinity(0, {cpu})
        yield
    finally:
        os.sched_setaffinity(0, mask)
        for p in burners:
            p.kill()
            p.wait()


MEASURABLE = os.path.exists("/proc/self/schedstat") and os.path.exists(
    f"/proc/self/task/{os.getpid()}/children"
)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity")
@pytest.mark.skipif(not MEASURABLE, reason="a kernel without schedstat or children in /proc")
def test_an_honest_answer_on_a_busy_cpu_still_counts():
    n = work_for(WORK_CPU_S)
    expected = repr(sum(range(n)))
    # at 1/8 of a CPU its 0.2 s of CPU take at least 1.6 s: past a plain 1 s wall clock
    limits = SandboxLimits(cpu_seconds=5, wall_seconds=1.0)
    with one_busy_cpu():
        start = time.monotonic()
        result = run_code("def f(n):\n    return sum(range(n))", "f", [[n]], limits)
        seconds = time.monotonic() - start
    assert result.matches([expected]) == [True], (result, seconds)
    assert not result.timed_out


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity")
def test_a_sleeper_on_a_busy_cpu_still_ends_at_its_wall_clock():
    limits = SandboxLimits(cpu_seconds=5, wall_seconds=1.0)
    with one_busy_cpu():
        start = time.monotonic()
        result = run_code("import time\ndef f(x):\n    time.sleep(60)", "f", [[1]], limits)
        seconds = time.monotonic() - start
    assert result.timed_out and seconds < 30, seconds  # sleeping is not waiting for a CPU
