"""Real tiny runs under hostile conditions that must not end them or leak from them.

- Observability never kills a run: a run directory named in another language (metric tags), an
  ASCII-only stderr, stdout closed under the run, a dashboard that does not start in time; and
  without a terminal, long work still prints a line every few seconds.
- The local cluster listens on the loopback interface only (the metrics export port included),
  Ray's auth token is its owner's only, and nothing the run created is left in the temporary
  directory or running after it exits.
- Two runs whose directories have the same name share a cluster without taking each other's
  servers; each joined it (`ray_address=`: the test session's), printed its dashboard and left
  it running.
"""

from __future__ import annotations

import contextlib
import ipaddress
import shutil
import stat
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from evoforge.storage.rundir import read_json, read_jsonl
from tests.helpers.runs import TINY_RUN, cli, running

pytestmark = pytest.mark.slow


def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def listening(procs: list[psutil.Process]) -> list[tuple[str, int, str]]:
    pids = {}
    for p in procs:
        with contextlib.suppress(psutil.Error):  # ended (or a zombie) since it was listed
            pids[p.pid] = " ".join(p.cmdline()[:1])
    return [
        (c.laddr.ip, c.laddr.port, pids[c.pid])
        for c in psutil.net_connections("tcp")
        if c.status == psutil.CONN_LISTEN and c.pid in pids
    ]


def loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip)
    return addr.is_loopback or getattr(addr, "ipv4_mapped", None) in (
        ipaddress.ip_address("127.0.0.1"),
    )


@pytest.fixture
def short_tmpdir():
    """A private, short TMPDIR for one run (Ray keeps its sockets inside the run's temp dir,
    and a unix socket path may have at most 107 characters)."""
    path = Path(tempfile.mkdtemp(prefix="ef", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_hostile_output_conditions_and_a_slow_dashboard_end_nothing(tmp_path, short_tmpdir):
    run_dir = tmp_path / "运行-ü"
    proc = cli(
        ["run", *TINY_RUN, "rounds=1", "progress_interval_s=1", f"run_dir={run_dir}"],
        env={
            "TMPDIR": str(short_tmpdir),
            "PYTHONIOENCODING": "ascii",
            "RAY_DASHBOARD_STARTUP_TIMEOUT_S": "0",  # Ray gives up on the dashboard at once
            "EVOFORGE_DEBUG_DELAY": "sync@0=5",
        },
        start_new_session=True,
    )
    proc.stdout.close()  # "run directory: ..." and the summary go to a closed pipe
    err = []
    while not (line := proc.stderr.readline()).startswith("evoforge debug: pausing"):
        assert line, f"run ended early: rc={proc.wait()} {''.join(err)[-3000:]}"
        err.append(line)
    procs = tree(proc.pid)
    sockets = listening(procs)
    assert len(sockets) >= 3, sockets  # GCS, raylet, metrics agent, ...
    assert [s for s in sockets if not loopback(s[0])] == [], sockets
    token = Path("~/.ray/auth_token").expanduser()
    if token.is_file():
        assert stat.S_IMODE(token.stat().st_mode) == 0o600
    rest = proc.stderr.read()
    assert proc.wait(timeout=600) == 0, ("".join(err) + rest)[-3000:]
    text = "".join(err) + rest
    assert "Traceback" not in text
    assert "ray dashboard: not available (it did not start); the run goes on" in text
    beats = [x for x in rest.splitlines() if x.startswith("[round 0] sync: working")]
    assert len(beats) >= 3, rest[-2000:]
    meta = read_json(run_dir / "meta.json")
    assert meta["finished"] is True and meta["run_id"].startswith("运行-ü-")
    assert {e["node"] for e in read_jsonl(run_dir / "events.jsonl")} >= {"train", "promote"}

    deadline = time.time() + 30
    while (alive := running(procs)) and time.time() < deadline:
        time.sleep(0.5)
    assert alive == [], alive
    # torch keeps its compile cache in TMPDIR/torchinductor_<user>, shared by every process on
    # the machine that imports it (a cache like ~/.cache, not something a run creates)
    left = sorted(
        str(p.relative_to(short_tmpdir))
        for p in short_tmpdir.iterdir()
        if not p.name.startswith("torchinductor_")
    )
    assert left == [], left[:20]  # Ray's session, datasets' caches, multiprocessing's dirs...


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
