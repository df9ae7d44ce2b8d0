"""What a killed driver left (its recorded processes, its temp dir) is cleaned by the next driver
of the run directory, and nothing else is: a reused pid, another machine's record."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time

import pytest

from evoforge.loops import leftovers


@pytest.fixture
def child():
    proc = subprocess.Popen(["sleep", "300"])
    yield proc
    proc.kill()
    proc.wait()


def test_the_recorded_processes_and_temp_dir_are_cleaned_in_one_line(tmp_path, child):
    temp = tempfile.mkdtemp(prefix=leftovers.PREFIX)
    leftovers.record(tmp_path, temp, started_here=True)
    rec = json.loads((tmp_path / leftovers.RECORD).read_text())
    assert [p["cmdline"] for p in rec["processes"]] == [["sleep", "300"]]
    line = leftovers.clean(tmp_path)
    assert line == (
        f"cleaned up after the run's killed driver (pid {rec['driver']}): stopped 1 process(es) "
        f"(sleep); removed {temp}"
    )
    assert child.wait(timeout=10) == -15
    assert not (tmp_path / leftovers.RECORD).exists()
    assert leftovers.clean(tmp_path) is None  # nothing left to say


def test_a_reused_pid_and_another_machines_record_are_left_alone(tmp_path, child):
    temp = tempfile.mkdtemp(prefix=leftovers.PREFIX)
    leftovers.record(tmp_path, temp, started_here=True)
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
    assert child.poll() is None
