"""Soak: 5 rounds with the tiny model on a cluster the run starts itself, under hostile
conditions that must not end it or leak from it.

- Resident memory of the driver and of the serving actor (which lives through every round and
  reloads weights in place each time) must stay bounded, and after the run exits none of its
  processes (driver, Ray's daemons, actors) may be left. The figures go to
  test-artifacts/soak.json for the closing note.
- Observability never kills a run: a run directory named in another language (metric tags), an
  ASCII-only stderr, stdout closed under the run, a dashboard that does not start in time; and
  without a terminal, long work still prints a line every few seconds.
- The local cluster listens on the loopback interface only (the metrics export port included),
  Ray's auth token is its owner's only, and nothing the run created is left in the temporary
  directory after it exits.

One run for both: the conditions change what the run prints and where it keeps its temporary
files, not what it holds in memory (the samples are RSS of the driver and of the server actor).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import stat
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest

from evoforge.storage.rundir import read_json, read_jsonl
from tests.helpers.runs import REPO, TINY_RUN, cli, running

pytestmark = pytest.mark.slow

MiB = 1 << 20


class Sampler(threading.Thread):
    """Every 0.25 s: RSS of the driver and of each server actor; every process ever seen."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.samples: list[tuple[float, int, int]] = []  # (time, driver rss, server rss)
        self.seen: dict[int, str] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
                server = 0
                for p in procs:
                    name = " ".join(p.cmdline()[:1])
                    self.seen.setdefault(p.pid, name)
                    if name.startswith("ray::ServerActor"):
                        server += p.memory_info().rss
                self.samples.append((time.time(), self.root.memory_info().rss, server))
            except psutil.Error:
                pass  # a process ended between listing and reading; the next sample has it
            time.sleep(0.25)

    def at(self, t: float) -> tuple[int, int]:
        """The last sample taken before time ``t``."""
        before = [s for s in self.samples if s[0] <= t and s[2] > 0]
        return before[-1][1], before[-1][2]


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


def test_five_rounds_memory_bounded_and_nothing_left_after_exit(tmp_path, short_tmpdir):
    run_dir = tmp_path / "运行-ü"
    proc = cli(
        ["run", *TINY_RUN, "rounds=5", "progress_interval_s=1", f"run_dir={run_dir}"],
        env={
            "TMPDIR": str(short_tmpdir),
            "PYTHONIOENCODING": "ascii",
            "RAY_DASHBOARD_STARTUP_TIMEOUT_S": "0",  # Ray gives up on the dashboard at once
            "EVOFORGE_DEBUG_DELAY": "sync@0=5",
        },
        start_new_session=True,
    )
    sampler = Sampler(proc.pid)
    sampler.start()
    try:
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
        assert proc.wait(timeout=900) == 0, ("".join(err) + rest)[-3000:]
    finally:
        sampler.stop.set()
        sampler.join()
        if proc.poll() is None:  # a failed check above: the run and its own cluster go
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    text = "".join(err) + rest
    assert "Traceback" not in text
    assert "ray dashboard: not available (it did not start); the run goes on" in text
    beats = [x for x in rest.splitlines() if x.startswith("[round 0] sync: working")]
    assert len(beats) >= 3, rest[-2000:]
    meta = read_json(run_dir / "meta.json")
    assert meta["finished"] is True and meta["run_id"].startswith("运行-ü-")

    ends = [e["time"] for e in read_jsonl(run_dir / "events.jsonl") if e["node"] == "promote"]
    assert len(ends) == 5
    assert {e["node"] for e in read_jsonl(run_dir / "events.jsonl")} >= {"train", "promote"}
    rss = [sampler.at(t) for t in ends]
    driver = [d / MiB for d, _ in rss]
    server = [s / MiB for _, s in rss]
    # Round 0 warms caches (imports, allocator pools); growth is measured from its end.
    report = {
        "driver_rss_mib_after_each_round": [round(x, 1) for x in driver],
        "server_rss_mib_after_each_round": [round(x, 1) for x in server],
        "driver_growth_mib_round0_to_round4": round(driver[-1] - driver[0], 1),
        "server_growth_mib_round0_to_round4": round(server[-1] - server[0], 1),
        "processes_seen": len(sampler.seen),
    }
    (REPO / "test-artifacts").mkdir(exist_ok=True)
    (REPO / "test-artifacts" / "soak.json").write_text(json.dumps(report, indent=2) + "\n")
    assert driver[-1] - driver[0] < 100, report
    assert server[-1] - server[0] < 100, report

    deadline = time.time() + 30
    while (alive := running(procs)) and time.time() < deadline:
        time.sleep(0.5)
    assert alive == [], alive
    deadline = time.time() + 30
    while (left := [p for p in sampler.seen if psutil.pid_exists(p)]) and time.time() < deadline:
        time.sleep(0.5)
    alive = [
        f"{p} {sampler.seen[p]}"
        for p in left
        if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    ]
    assert alive == [], f"processes left after the run exited: {alive}"
    # torch keeps its compile cache in TMPDIR/torchinductor_<user>, shared by every process on
    # the machine that imports it (a cache like ~/.cache, not something a run creates)
    left_files = sorted(
        str(p.relative_to(short_tmpdir))
        for p in short_tmpdir.iterdir()
        if not p.name.startswith("torchinductor_")
    )
    assert left_files == [], left_files[:20]  # Ray's session, datasets' caches, mp's dirs...
