"""Real tiny runs under hostile conditions that must not end them or leak from them.

(Observability that never kills a run, the local cluster on loopback only, nothing left in the
temporary directory or running after exit: tests/system/test_soak.py, on the soak's own run.)

- Two runs whose directories have the same name share a cluster without taking each other's
  servers; each joined it (`ray_address=`: the test session's), printed its dashboard and left
  it running.
"""

from __future__ import annotations

import time

import pytest

from evoforge.storage.rundir import read_json
from tests.helpers.runs import TINY_RUN, cli

pytestmark = pytest.mark.slow


def paused(proc) -> str:
    """The stderr of ``proc`` up to its EVOFORGE_DEBUG_DELAY pause, that line included."""
    seen = []
    while not (line := proc.stderr.readline()).startswith("evoforge debug: pausing"):
        assert line, f"ended early: rc={proc.wait()} {''.join(seen)[-3000:]}"
        seen.append(line)
    return "".join(seen) + line


def test_runs_in_directories_of_the_same_name_keep_their_own_servers(ray_cluster, tmp_path):
    """Before run ids were unique, the second run's start freed "its" actor names by killing
    the first run's servers. The name is not ASCII and holds a space: it reaches file paths,
    actor names, task names and metric tags."""
    name = "rün ✓"
    args = [
        "run",
        *TINY_RUN,
        "rounds=1",
        "search.max_depth=1",
        f"ray_address={ray_cluster.address}",
    ]
    first = cli(
        [*args, f"run_dir={tmp_path / 'a' / name}"], env={"EVOFORGE_DEBUG_DELAY": "critique@0=25"}
    )
    early = {first: paused(first)}
    second = cli(
        [*args, f"run_dir={tmp_path / 'b' / name}"], env={"EVOFORGE_DEBUG_DELAY": "plan@0=5"}
    )
    early[second] = paused(second)
    ids = [read_json(tmp_path / d / name / "meta.json")["run_id"] for d in "ab"]
    assert ids[0] != ids[1]
    import ray

    for run_id in ids:  # both runs' servers are alive side by side
        assert ray.get_actor(f"evoforge/{run_id}/policy/0", namespace="evoforge")
    for p in (first, second):
        _, rest = p.communicate(timeout=600)
        err = early[p] + rest
        assert p.returncode == 0, err[-3000:]
        assert "server_restarts" not in err  # neither run lost a server to the other
        assert f"ray dashboard: {ray_cluster.dashboard_url}" in err  # the joined cluster's
    for d in "ab":
        assert read_json(tmp_path / d / name / "meta.json")["finished"] is True
        assert (tmp_path / d / name / "report.md").is_file()
    assert ray.is_initialized() and ray.cluster_resources()  # the joined cluster was left running


def test_a_verifier_that_hangs_mid_run_is_one_line_and_the_run_exits(ray_cluster, tmp_path):
    """The verifier hangs in the driver, which joins the session's cluster: what the run
    started there goes with it."""
    run_dir = tmp_path / "hang"
    args = [*TINY_RUN, "env=tests.helpers.plugins:HangsOnModelAnswers", "verify_timeout_s=2"]
    proc = cli(
        ["run", *args, "rounds=1", f"run_dir={run_dir}", f"ray_address={ray_cluster.address}"],
        start_new_session=True,
    )
    _, err = proc.communicate(timeout=300)
    last = err.strip().splitlines()[-1]
    assert proc.returncode == 2, err[-3000:]
    assert last.startswith("error: environment 'bad': verify() did not return within 2 s on task")
    assert read_json(run_dir / "meta.json")["finished"] is False
    import ray

    server = f"evoforge/{read_json(run_dir / 'meta.json')['run_id']}/policy/0"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            ray.get_actor(server, namespace="evoforge")
        except ValueError:
            break  # gone
        time.sleep(1)
    else:
        raise AssertionError(f"{server} outlived the run")
