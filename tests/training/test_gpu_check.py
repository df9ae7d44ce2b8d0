"""scripts/gpu_check.py: one line per check, non-zero exit on any failure; its logic dry-run on
the CPU (the GPU run itself needs a machine with one)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers.runs import REPO

SCRIPT = str(REPO / "scripts" / "gpu_check.py")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, SCRIPT, *args], cwd=REPO, capture_output=True, text=True, timeout=900
    )


def test_a_failed_check_is_one_line_and_a_nonzero_exit(tmp_path):
    p = _run("--model", str(tmp_path / "missing"), "--device", "cpu")
    assert p.returncode == 1
    lines = [line for line in p.stdout.splitlines() if line.startswith(("ok", "FAIL"))]
    assert lines and lines[0].startswith("FAIL model") and "gpu_check: FAILED" in p.stdout


@pytest.mark.slow
def test_dry_run_on_cpu_passes_every_check():
    p = _run("--model", "tiny", "--device", "cpu")
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    checks = [line.split()[1] for line in p.stdout.splitlines() if line.startswith("ok ")]
    assert checks == ["model", "gpu", "engine", "sft", "dpo", "weights", "lm"], p.stdout
    assert "all passed" in p.stdout
