"""sandbox: one ``run_code`` call (a fresh bubblewrap sandbox) against the same code run in a
bare interpreter process without any isolation, per call, interleaved so that both sides see the
same machine load. What the isolation adds to each verification of the ``code`` environment."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from typing import Any

from evoforge.sandbox import run_code

CODE = "def f(x):\n    return x * 2"


def _ours() -> float:
    start = time.perf_counter()
    result = run_code(CODE, "f", [[2]])
    seconds = time.perf_counter() - start
    assert result.matches(["4"]) == [True], result
    return seconds


def _bare() -> float:
    start = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-I", "-S", "-c", f"{CODE}\nprint(repr(f(2)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - start
    assert run.stdout.strip() == "4", run.stdout
    return seconds


def bench_sandbox(model: str, backend: str, size: str) -> dict[str, Any]:
    """``model`` and ``backend`` are not used: no model is involved."""
    calls = 30 if size == "full" else 3
    _ours(), _bare()  # warm the page cache for both
    ours, bare = [], []
    for _ in range(calls):
        ours.append(_ours())
        bare.append(_bare())
    ours_s, bare_s = statistics.median(ours), statistics.median(bare)
    return {
        "calls": calls,
        "evoforge": {
            "name": "run_code: a fresh bwrap sandbox per call",
            "median_seconds": round(ours_s, 4),
            "max_seconds": round(max(ours), 4),
        },
        "baseline": {
            "name": "the same code in a bare `python -I -S` process, no isolation",
            "median_seconds": round(bare_s, 4),
            "max_seconds": round(max(bare), 4),
        },
        "ratio": bare_s / ours_s,
        "target": 0.25,
        "table": [
            {
                "sandbox_ms": round(ours_s * 1000, 1),
                "bare_ms": round(bare_s * 1000, 1),
                "ratio": round(bare_s / ours_s, 2),
            }
        ],
    }
