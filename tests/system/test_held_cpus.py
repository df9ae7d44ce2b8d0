"""No silent waits on a cluster whose CPU slots are held (by an actor holding them all): a run
joining it is refused before its directory is written, naming the missing slots and how to free
them; and a trainer Ray cannot place is a one-line error after a bounded wait (it stayed
PENDING_CREATION while the run printed `train: working, 181s` and on, forever)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers.runs import REPO, TINY_RUN, cli

pytestmark = pytest.mark.slow


def test_held_cpus_are_one_line_errors(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.cpu_holder", "2"],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        for line in holder.stdout:
            lines.append(line.strip())
            if line.startswith("address: "):
                break
        assert lines and lines[-1].startswith("address: "), holder.stderr.read()[-3000:]
        trainer, address = lines[-2], lines[-1].removeprefix("address: ")
        assert trainer.startswith(
            "trainer: Ray could not place evoforge/held/trainer/0 within 5 s: it asks for CPU 1 "
            "and the cluster has CPU 0 of 2 free"
        ), trainer
        assert "ray list actors" in trainer
        run_dir = tmp_path / "run"
        proc = cli(
            ["run", *TINY_RUN, f"ray_address={address}", f"run_dir={run_dir}"],
            env={"RAY_AUTH_MODE": "token"},  # a local cluster of Ray 2.60 uses token auth
        )
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 2, err[-3000:]
        assert len(err.strip().splitlines()) == 1, err
        last = err.strip()
        assert last.startswith(
            "error: the run's servers and trainer need 2 CPU slots (0 of 2 free)"
        ), err
        assert "ray list actors" in last and not run_dir.exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
