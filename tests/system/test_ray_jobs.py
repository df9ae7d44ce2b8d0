"""Runs submitted as Ray jobs to a head node this test starts on 127.0.0.1 (free ports, its own
temp dir, token auth as Ray 2.60 clusters use) and stops again.

A script calling ``evoforge.run()`` is submitted, paused at the start of ``train`` and stopped
with ``ray job stop``; ``evoforge resume`` is then submitted as a second job and finishes the
run. Each job's actors and tasks are listed under that job, the run directory holds every node
once, and the head declares one GPU, so the run goes through the colocated layout (servers and
trainer sharing the GPU) that hung before placement was planned.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from evoforge.storage.rundir import read_json, read_jsonl
from tests.helpers.runs import REPO, TINY_RUN

pytestmark = pytest.mark.slow
RAY = str(Path(sys.executable).parent / "ray")


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Head:
    """`ray start --head --block` in its own session, on free ports and its own temp dir (so a
    `ray.init()` elsewhere on the machine does not find it)."""

    def __init__(self) -> None:
        gcs, dash, client, agent, agent_grpc, metrics, env_agent, nm, om = free_ports(9)
        self.temp = tempfile.mkdtemp(prefix="efj-", dir="/tmp")  # short: socket paths
        self.env = dict(os.environ, RAY_AUTH_MODE="token", PYTHONPATH=str(REPO))
        self.env.pop("RAY_ADDRESS", None)
        self.address = f"http://127.0.0.1:{dash}"
        cmd = [
            RAY, "start", "--head", "--block", "--node-ip-address=127.0.0.1",
            f"--port={gcs}", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
            f"--ray-client-server-port={client}", f"--dashboard-agent-listen-port={agent}",
            f"--dashboard-agent-grpc-port={agent_grpc}", f"--metrics-export-port={metrics}",
            f"--runtime-env-agent-port={env_agent}", f"--node-manager-port={nm}",
            f"--object-manager-port={om}", "--num-cpus=6", "--num-gpus=1",
            f"--temp-dir={self.temp}",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.time() + 120
        while self.ray("job", "list", check=False).returncode != 0:
            assert self.proc.poll() is None, "ray start --head exited"
            assert time.time() < deadline, "the head node did not come up in 120 s"
            time.sleep(1)

    def ray(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        out = subprocess.run(
            [RAY, *args[:2], "--address", self.address, *args[2:]],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check:
            assert out.returncode == 0, (args, out.stdout[-2000:], out.stderr[-2000:])
        return out

    def submit(self, sid: str, entrypoint: list[str], env_vars: dict | None = None) -> str:
        runtime = {"env_vars": env_vars or {}}
        self.ray(
            "job", "submit", "--no-wait", f"--submission-id={sid}", f"--working-dir={REPO}",
            f"--runtime-env-json={json.dumps(runtime)}", "--", *entrypoint,
        )  # fmt: skip
        return sid

    def job(self, sid: str) -> dict:
        jobs = json.loads(self.ray("list", "jobs", "--format=json").stdout)
        return next(j for j in jobs if j.get("submission_id") == sid)

    def status(self, sid: str) -> str:
        """PENDING, RUNNING, STOPPED, SUCCEEDED or FAILED."""
        return self.job(sid)["status"]

    def logs(self, sid: str) -> str:
        return self.ray("job", "logs", sid).stdout

    def wait(self, sid: str, done, timeout: float = 400) -> None:
        """Until ``done(status)``; a job that ends otherwise fails the test with its logs."""
        deadline = time.time() + timeout
        while not done(status := self.status(sid)):
            assert status in ("PENDING", "RUNNING"), self.logs(sid)[-3000:]
            assert time.time() < deadline, f"job {sid} timed out:\n{self.logs(sid)[-3000:]}"
            time.sleep(2)

    def listed(self, kind: str, job_id: str) -> list[dict]:
        out = self.ray(
            "list", kind, "--filter", f"job_id={job_id}", "--format=json", "--limit=10000"
        )
        return json.loads(out.stdout)

    def job_id(self, sid: str) -> str:
        return self.job(sid)["job_id"]

    def stop(self) -> None:
        """SIGKILL the head's process group, then any process of this cluster that left it (each
        names the cluster's own temp dir in its command line); `ray stop` would stop every Ray
        cluster on the machine, and a graceful stop takes half a minute."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        for pid in (int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()):
            try:
                cmdline = (Path("/proc") / str(pid) / "cmdline").read_bytes()
            except OSError:
                continue
            if self.temp.encode() in cmdline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.temp, ignore_errors=True)


@pytest.fixture
def head():
    h = Head()
    try:
        yield h
    finally:
        h.stop()


def test_job_stopped_mid_run_then_resumed_as_a_job(head, tmp_path):
    run_dir = tmp_path / "run"
    args = [*TINY_RUN, "rounds=1", f"run_dir={run_dir}"]
    python = [sys.executable, "-m"]
    first = head.submit(
        "evoforge-run",
        [*python, "tests.helpers.job_run", *args],
        {"EVOFORGE_DEBUG_DELAY": "train@0=300"},
    )
    head.wait(first, lambda _: "evoforge debug: pausing" in head.logs(first))
    log = head.logs(first)
    assert "placement: colocate on 1 GPU(s)" in log, log[-3000:]
    head.ray("job", "stop", first)
    assert head.status(first) == "STOPPED"
    assert read_json(run_dir / "meta.json")["finished"] is False

    second = head.submit(
        "evoforge-resume", [*python, "evoforge.cli", "--quiet", "resume", str(run_dir)]
    )
    head.wait(second, lambda status: status == "SUCCEEDED")
    assert read_json(run_dir / "meta.json")["finished"] is True
    assert read_json(run_dir / "rounds/000/train/done.json")["skipped"] is None

    # each node once: the resume continued where the stopped job was, it redid nothing
    nodes = [e["node"] for e in read_jsonl(run_dir / "events.jsonl")]
    assert nodes.count("pairs") == 1 and nodes.count("train") == 1 and nodes[-1] == "promote"

    # the actors and tasks of each job are listed under it
    run = read_json(run_dir / "meta.json")["run_id"]
    first_actors = {a["name"] for a in head.listed("actors", head.job_id(first))}
    second_actors = {a["name"] for a in head.listed("actors", head.job_id(second))}
    assert f"evoforge/{run}/policy/0" in first_actors
    assert {f"evoforge/{run}/policy/0", f"evoforge/{run}/trainer/0"} <= second_actors
    tasks = {t["name"] for t in head.listed("tasks", head.job_id(second))}
    assert "round0/train" in tasks and "round0/evaluate:policy.generate" in tasks
