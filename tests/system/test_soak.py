"""Soak: 5 rounds with the tiny model on a cluster the run starts itself.

Resident memory of the driver and of the serving actor (which lives through every round and
reloads weights in place each time) must stay bounded, and after the run exits none of its
processes (driver, Ray's daemons, actors) may be left. The figures go to
test-artifacts/soak.json for the closing note.
"""

from __future__ import annotations

import json
import threading
import time

import psutil
import pytest

from evoforge.storage.rundir import read_jsonl
from tests.helpers.runs import REPO, TINY_RUN, cli

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


def test_five_rounds_memory_bounded_and_nothing_left_after_exit(tmp_path):
    run_dir = tmp_path / "soak"
    proc = cli(["run", *TINY_RUN, "rounds=5", f"run_dir={run_dir}"])
    sampler = Sampler(proc.pid)
    sampler.start()
    _, err = proc.communicate(timeout=900)
    sampler.stop.set()
    sampler.join()
    assert proc.returncode == 0, err[-3000:]

    ends = [e["time"] for e in read_jsonl(run_dir / "events.jsonl") if e["node"] == "promote"]
    assert len(ends) == 5
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
    while (left := [p for p in sampler.seen if psutil.pid_exists(p)]) and time.time() < deadline:
        time.sleep(0.5)
    alive = [
        f"{p} {sampler.seen[p]}"
        for p in left
        if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    ]
    assert alive == [], f"processes left after the run exited: {alive}"
