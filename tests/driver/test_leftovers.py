"""What a killed driver left (its recorded processes, its temp dir) is cleaned by the next driver
of the run directory, and nothing else is: a reused pid, another machine's record."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time

import pytest

from evoforge.driver import leftovers


@pytest.fixture
def driver():
    """A stand-in driver with one child (a test must not record pytest's own children: in a
    suite they are the session's Ray cluster, which clean() would stop)."""
    proc = subprocess.Popen(["sh", "-c", "sleep 300 & wait"])
    deadline = time.time() + 10
    while not leftovers.descendants(proc.pid) and time.time() < deadline:
        time.sleep(0.05)
    yield proc
    for pid in leftovers.descendants(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.kill()
    proc.wait()


def child_of(driver) -> int:
    (pid,) = leftovers.descendants(driver.pid)
    return pid


def alive(pid: int) -> bool:
    return leftovers.identity(pid) is not None


def test_the_recorded_processes_and_temp_dir_are_cleaned_in_one_line(tmp_path, driver):
    temp = tempfile.mkdtemp(prefix=leftovers.PREFIX)
    child = child_of(driver)
    leftovers.record(tmp_path, temp, started_here=True, driver=driver.pid)
    rec = json.loads((tmp_path / leftovers.RECORD).read_text())
    assert [p["cmdline"] for p in rec["processes"]] == [["sleep", "300"]]
    line = leftovers.clean(tmp_path)
    assert line == (
        f"cleaned up after the run's killed driver (pid {rec['driver']}): stopped 1 process(es) "
        f"(sleep); removed {temp}"
    )
    deadline = time.time() + 10
    while alive(child) and time.time() < deadline:
        time.sleep(0.05)
    assert not alive(child)
    assert not (tmp_path / leftovers.RECORD).exists()
    assert leftovers.clean(tmp_path) is None  # nothing left to say


def test_a_reused_pid_and_another_machines_record_are_left_alone(tmp_path, driver):
    temp = tempfile.mkdtemp(prefix=leftovers.PREFIX)
    child = child_of(driver)
    leftovers.record(tmp_path, temp, started_here=True, driver=driver.pid)
    path = tmp_path / leftovers.RECORD
    rec = json.loads(path.read_text())
    rec["processes"][0]["start"] -= 1  # the pid now names another process than the recorded one
    path.write_text(json.dumps(rec | {"host": "elsewhere"}))
    assert leftovers.clean(tmp_path) is None
    assert path.exists()  # another machine's: kept
    path.write_text(json.dumps(rec))
    assert leftovers.clean(tmp_path) == (
        f"cleaned up after the run's killed driver (pid {rec['driver']}): removed {temp}"
    )
    time.sleep(0.2)
    assert alive(child)
