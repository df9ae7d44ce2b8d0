"""Small configs that run a whole loop with the tiny model in seconds."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

TINY_RUN = [
    "model=tiny",
    "backend=hf",
    "env=evoforge.envs.parity:ParityEnv",  # by module:attr, as a user's plugin would be
    "tasks_per_round=6",
    "generation.max_tokens=12",
    "generation.temperature=1.0",
    "generation.samples=2",  # with 2 samples some tasks have no pass: the search has work
    "critic.votes=2",
    "critic.calibration_answers=4",
    "critic.max_tokens=12",
    "refiner.max_tokens=12",
    "search.max_depth=2",
    "search.children=2",
    "search.value=both",  # the judge is measured (4 answers) and, at chance, benched
    "explore.kinds=",  # off: guidance solves the few all-failing tasks and would leave the
    # search nothing to do; tests that explore say so (EXPLORE)
    "eval.heldout_tasks=8",
    "eval.guard_env=",
    "eval.max_tokens=12",
    "train.batch_size=2",
    "serving.max_model_len=1024",
    "eval.patience=0",
]


def cli(args: list[str], env: dict | None = None, **kw) -> subprocess.Popen:
    """Start `python -m evoforge.cli ...` in the repo, with tests importable."""
    full_env = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.Popen(
        [sys.executable, "-m", "evoforge.cli", "--quiet", *args],
        cwd=REPO,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def run_args(run_dir: Path, address: str) -> list[str]:
    """`evoforge run` of the crash tests' 2-round tiny run on the cluster at ``address``."""
    return ["run", *TINY_RUN, "rounds=2", f"run_dir={run_dir}", f"ray_address={address}"]


def wait_for_pause(proc) -> None:
    """Read stderr until the run says it paused at the EVOFORGE_DEBUG_DELAY point."""
    seen: list[str] = []
    while True:
        line = proc.stderr.readline()
        if not line:
            tail = "".join(seen[-40:])
            raise AssertionError(f"run ended before the pause point: rc={proc.wait()}\n{tail}")
        seen.append(line)
        if line.startswith("evoforge debug: pausing"):
            return


def pause_and_kill(proc) -> None:
    """SIGKILL the process group of ``proc`` (started with start_new_session) at its pause."""
    wait_for_pause(proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def evoforge_actors(prefix: str = "evoforge/") -> list[str]:
    """The names of the live evoforge actors (those under ``prefix``, e.g. one run's) on this
    process's Ray cluster."""
    from ray.util.state import list_actors

    alive = list_actors(address=ray_address(), filters=[("state", "=", "ALIVE")], limit=1000)
    return [a.name for a in alive if (a.name or "").startswith(prefix)]


def wait_no_evoforge_actors(timeout: float = 60, prefix: str = "evoforge/") -> list[str]:
    """Wait until no evoforge actor under ``prefix`` is alive; those still alive at the end."""
    deadline = time.time() + timeout
    while (left := evoforge_actors(prefix)) and time.time() < deadline:
        time.sleep(0.25)
    return left


def running(procs) -> list[str]:
    """The command lines of those psutil processes still running (zombies are not)."""
    import psutil

    out = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(" ".join(p.cmdline()[:2]))
    return out


MULTITURN_RUN = [a for a in TINY_RUN if not a.startswith("env=")] + [
    "env=tests.helpers.multiturn:ParityChatEnv",  # two turns; a random model passes 1 in 4
    "generation.samples=3",
    "generation.max_turns=3",
    "train.max_length=1024",
    "rounds=1",
]
"""A one-round multi-turn run with the tiny model that has work at every node (pairs, training)."""

EXPLORE = ["explore.kinds=feedback,hint,prefix", "explore.samples=1"]
"""Guided exploration on, one guided sample per task and kind."""

TOOLS_RUN = (
    [a for a in TINY_RUN if not a.startswith(("env=", "eval.heldout_tasks="))]
    + EXPLORE
    + [
        "env=tools",
        "tasks_per_round=4",
        "generation.max_turns=2",
        "eval.heldout_tasks=7",  # one task of each type
        "search.max_tasks=8",  # the general default: `tools` turns the search off by its own
        "train.max_length=1024",
        "rounds=1",
    ]
)
"""A one-round run of the tiny model on the built-in ``tools`` environment (it never calls a tool
right, so the round searches every task and has nothing to train on)."""


def ray_address() -> str:
    """This process's Ray cluster, named explicitly: Ray's state API refuses to guess when other
    clusters run on the same machine."""
    import ray

    return ray.get_runtime_context().gcs_address
