"""Running an attack through the real bubblewrap sandbox, and reading what it achieved.

An attack is code that defines ``f(x)``. Its verdict is checked against an expected value it
cannot know (it must fail, with feedback); what ``f`` returns is its evidence: usually a dict
from technique to outcome, each outcome built inside the sandbox by ``attempt`` (the PRELUDE).
"""

from __future__ import annotations

import ast
import os
import secrets

import psutil

from evoforge.sandbox import SandboxLimits, SandboxResult, run_code
from evoforge.sandbox.bwrap import RUNNER_INSIDE

NOBODY = 65534
LIMITS = SandboxLimits(cpu_seconds=2, wall_seconds=4, memory_mb=256)
UNKNOWABLE = repr(f"evoforge-expected-{secrets.token_hex(8)}")
PRELUDE = '''
def attempt(action):
    """'ok: <result>' when ``action()`` worked, else the error it raised."""
    try:
        return "ok: " + repr(action())[:400]
    except BaseException as e:
        return f"{type(e).__name__}: {e}"[:400]
'''


def attack(code: str, inputs=((0,),), limits: SandboxLimits = LIMITS) -> SandboxResult:
    """Run ``PRELUDE + code`` and check that the verdict fails with feedback."""
    result = run_code(PRELUDE + code, "f", [list(a) for a in inputs], limits)
    expected = [UNKNOWABLE] * len(inputs)
    assert result.matches(expected) == [False] * len(inputs)
    assert result.feedback(expected)
    return result


def evidence(code: str, limits: SandboxLimits = LIMITS):
    """What ``f(0)`` returned, as a Python value (the attack must get that far)."""
    result = attack(code, limits=limits)
    assert result.calls and result.calls[0].output is not None, (
        result.load_error,
        result.calls,
        result.crashed,
        result.printed[-500:],
    )
    return ast.literal_eval(result.calls[0].output)


def failed(outcome: str) -> bool:
    return not outcome.startswith("ok")


def sandbox_processes() -> list[psutil.Process]:
    """Processes of a sandbox still alive: bwrap or the runner among this process's descendants
    (not Ray's, which a session may have started), and (as root) anything running as the
    sandbox's host uid, orphans included."""
    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.name() == "bwrap" or RUNNER_INSIDE in " ".join(p.cmdline()):
                found.append(p)
        except psutil.NoSuchProcess:
            pass
    if os.geteuid() == 0:
        for p in psutil.process_iter(["uids"]):
            if p.info["uids"] and NOBODY in (p.info["uids"].real, p.info["uids"].effective):
                found.append(p)
    return found
