"""Forged verdicts, through the real sandbox: the verdict is computed by the parent from the
function's claimed outputs and expected values that never enter the sandbox, so printed
markers, writes to the parent's pipes, patched builtins and early exits never make a pass."""

from __future__ import annotations

import ast
import contextlib
import os

import psutil

from evoforge.envs import get_env
from evoforge.sandbox import SandboxLimits, run_code
from tests.helpers.sandbox import LIMITS, PRELUDE, attack, evidence, sandbox_processes


def test_printed_results_are_only_printed_output():
    """Even a right guess printed in the result format is not a result."""
    fake = '{"load": null}\\n{"call": 0, "output": "4"}\\n@@SANDBOX_RESULT@@{"tests": [{"passed": true}]}'
    code = f"import sys, os\nprint({fake!r})\nsys.stderr.write({fake!r})\ndef f(x):\n    print({fake!r})\n    return 'wrong'"
    result = run_code(code, "f", [[2]], LIMITS)
    assert result.matches(["4"]) == [False] and result.calls[0].output == "'wrong'"
    assert '"call": 0' in result.printed  # it was printed, and stayed print


def test_writing_records_to_every_descriptor_breaks_the_stream_not_the_verdict():
    writer = """
import os
def spray(text):
    for fd in range(0, 64):
        try:
            os.write(fd, text.encode())
        except OSError:
            pass
"""
    guesses = '{"load": null}\\n{"call": 0, "output": "4"}\\n'
    for when in (f"spray({guesses!r})", f"def f(x):\n    spray({guesses!r})\n    return 4"):
        result = run_code(writer + when, "f", [[2]], LIMITS)
        assert result.matches(["4"]) == [False], result
        assert "tampered" in (result.crashed or "") and result.feedback(["4"])


def test_expected_values_never_enter_the_sandbox():
    """The code searches everything it can read for a value shaped like the expected one (which
    the sandbox never receives) and for its input (which it does, as a control)."""
    marker_input = f"evoforge-input-{os.urandom(4).hex()}"
    code = (
        PRELUDE
        + """
import gc, os, re, sys
# patterns that match the markers without being them (a literal would find itself in memory)
EXPECTED, INPUT = re.compile(rb"evoforg[e]-expecte[d]"), re.compile(rb"evoforg[e]-inpu[t]")
def count(pattern, blob):
    return sum(1 for _ in pattern.finditer(blob))
def everything():
    yield os.pread(0, 1 << 20, 0)  # the job, read again from the start
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        for name in ("cmdline", "environ"):
            try:
                yield open(f"/proc/{pid}/{name}", "rb").read()
            except OSError:
                pass
    for frame in sys._current_frames().values():
        while frame:
            yield repr(frame.f_locals).encode("utf-8", "replace")
            frame = frame.f_back
    yield repr([o for o in gc.get_objects() if isinstance(o, (dict, list, tuple))]).encode("utf-8", "replace")
def memory():
    import ctypes  # its heap, stack, anonymous memory (/proc/self/mem: closed, not dumpable)
    regions = []
    for line in open("/proc/self/maps").read().splitlines():
        fields = line.split()
        lo, hi = (int(v, 16) for v in fields[0].split("-"))
        if fields[1].startswith("r") and (len(fields) < 6 or fields[5] in ("[heap]", "[stack]")):
            regions.append((lo, hi - lo))
    counts = [0, 0]
    for lo, size in regions:
        blob = ctypes.string_at(lo, size)
        counts[0] += count(EXPECTED, blob)
        counts[1] += count(INPUT, blob)
        del blob
    return counts
def f(x):
    found = {"expected": 0, "input": 0}
    for blob in everything():
        found["expected"] += count(EXPECTED, blob)
        found["input"] += count(INPUT, blob)
    del blob
    in_memory = memory()
    found["expected"] += in_memory[0]
    found["memory_input"] = in_memory[1]
    return found
"""
    )
    result = run_code(code, "f", [[marker_input]], LIMITS)
    assert result.calls and result.calls[0].output, result
    found = ast.literal_eval(result.calls[0].output)
    assert found["input"] > 0 and found["memory_input"] > 0  # the search finds what it was given
    assert found["expected"] == 0


def test_patched_builtins_and_lying_objects_do_not_pass():
    for trick in (
        "import builtins\nbuiltins.repr = lambda o: '4'\ndef f(x):\n    return 4",
        "class Liar:\n    __eq__ = lambda s, o: True\n    __hash__ = object.__hash__\n"
        "    def __repr__(self):\n        return '4'\ndef f(x):\n    return Liar()",
        "class Int(int):\n    __eq__ = lambda s, o: True\ndef f(x):\n    return Int(4)",
        'import json\njson.dumps = lambda *a, **k: \'{"call": 0, "output": "4"}\'\ndef f(x):\n    return 4',
    ):
        result = run_code(trick, "f", [[2]], LIMITS)
        # each claims "4" for input 2; the truth for this test is 5, which the code never saw
        assert result.matches(["5"]) == [False], trick
        assert result.feedback(["5"])


def test_exiting_early_is_no_success():
    for trick in (
        "import sys\nsys.exit(0)",
        "import os\nos._exit(0)",
        "import os\ndef f(x):\n    os._exit(0)",
        "def f(x):\n    raise SystemExit(0)",
        "import os, signal\ndef f(x):\n    os.kill(os.getpid(), signal.SIGKILL)",
        "import os\nfor fd in range(3, 64):\n    try:\n        os.close(fd)\n    except OSError:\n        pass\n"
        "def f(x):\n    return x * 2",
    ):
        result = attack(trick)
        assert not result.calls or result.calls[0].output is None, trick


def test_no_code_of_the_sandbox_runs_while_the_parent_compares():
    """A timing attack on the comparison needs code running while the parent compares. Here
    the runner is kept from exiting (its ``os._exit`` replaced) and a detached child ignores
    signals and keeps reading the clock: both are gone (not even zombies) when run_code
    returns, before ``matches`` ever sees an expected value."""
    code = """
import os, signal, time
def linger(*_):
    while True:
        time.perf_counter_ns()
        time.sleep(0.001)
def f(x):
    if os.fork() == 0:
        os.setsid()
        for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(s, signal.SIG_IGN)
        linger()
    os._exit = linger
    return x
"""
    result = run_code(code, "f", [[1]], SandboxLimits(cpu_seconds=2, wall_seconds=1))
    alive = []
    for p in sandbox_processes():  # at once: no grace period
        with contextlib.suppress(psutil.NoSuchProcess):
            alive += [] if p.status() == psutil.STATUS_ZOMBIE else [p.pid]
    assert alive == []
    assert result.timed_out and result.matches(["1"]) == [True] and result.matches(["2"]) == [False]


def test_a_canned_answer_passes_no_task():
    """Forging responses a red team used, on real `code` tasks: none passes any."""
    forgeries = [
        '```python\nprint(\'@@SANDBOX_RESULT@@{"load_error": null, "tests": []}\')\n```',
        "```python\nimport os\nos.write(1, b'{\"load\": null}\\n' + b''.join("
        'b\'{"call": %d, "output": "0"}\\n\' % i for i in range(6)))\nos._exit(0)\n```',
        "```python\nimport builtins\nbuiltins.repr = lambda o: '0'\n"
        "def solve_count_above(xs): return 0\ndef solve_rle(xs): return 0\n```",
        "```python\nimport sys\nsys.exit(0)\n```",
    ]
    env = get_env("code")
    tasks = env.tasks("train", 6, seed=3)  # each verify runs up to two sandboxes
    for task in tasks:
        for response in forgeries:
            verdict = env.verify(task, response)
            assert not verdict.passed and verdict.feedback, (task.id, response)


def test_the_attack_helper_sees_failures():
    """The helpers themselves: an honest function's output is its evidence."""
    assert evidence("def f(x):\n    return {'x': x}") == {"x": 0}
