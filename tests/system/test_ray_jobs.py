"""Runs submitted as Ray jobs to a head node this test starts on 127.0.0.1 (free ports, its own
temp dir, token auth as Ray 2.60 clusters use) and stops again.

A script calling ``evoforge.run()`` is submitted, paused at the start of ``train`` and stopped
with ``ray job stop``; ``evoforge resume`` is then submitted as a second job and finishes the
run. Each job's actors and tasks are listed under that job, the run directory holds every node
once, and the head declares one GPU, so the run goes through the colocated layout (servers and
trainer sharing the GPU) that hung before placement was planned.

While the first job is paused, a real browser looks at the head's Ray dashboard (the URL the run
printed): its actors page lists evoforge's actors. Headless Chromium (Debian's package, installed
by `make test`) is driven through the DevTools protocol so that its requests carry Ray's auth
token; the screenshot is kept under test-artifacts/ as the test's artifact.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
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


@pytest.fixture(scope="module")
def head():
    h = Head()
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture(scope="module")
def paused_job(head, tmp_path_factory) -> tuple[str, Path]:
    """The first job (a script calling ``evoforge.run()``), paused at the start of ``train`` with
    its actors alive; its submission id and run directory."""
    run_dir = tmp_path_factory.mktemp("job") / "run"
    args = [*TINY_RUN, "rounds=1", f"run_dir={run_dir}"]
    first = head.submit(
        "evoforge-run",
        [sys.executable, "-m", "tests.helpers.job_run", *args],
        {"EVOFORGE_DEBUG_DELAY": "train@0=300"},
    )
    head.wait(first, lambda _: "evoforge debug: pausing" in head.logs(first))
    return first, run_dir


class DevTools:
    """The few DevTools-protocol calls the test needs."""

    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(ws_url, max_size=50_000_000)
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO / "test-artifacts"


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)"
)
def test_dashboard_actors_page_lists_evoforge_actors(head, paused_job):
    """Runs before the job test below (file order), while the first job is paused."""
    first, run_dir = paused_job
    log = head.logs(first)
    printed = re.search(r"ray dashboard: (http://\S+)", log)
    assert printed, f"no dashboard URL printed: {log[-2000:]}"
    url = printed.group(1)
    run_id = read_json(run_dir / "meta.json")["run_id"]
    profile = tempfile.mkdtemp(prefix="evoforge-chromium-")
    browser = None
    try:
        browser = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "--window-size=1400,1000",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.time() + 30
        while not port_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        targets = json.loads(
            urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read()
        )
        page = DevTools(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
        page.call("Network.enable")
        token_file = Path(os.path.expanduser("~/.ray/auth_token"))
        if token_file.is_file():
            page.call(
                "Network.setExtraHTTPHeaders",
                headers={"Authorization": f"Bearer {token_file.read_text().strip()}"},
            )
        page.call("Page.enable")
        page.call("Page.navigate", url=f"{url}/#/actors")
        text, deadline = "", time.time() + 60
        while time.time() < deadline:
            text = page.call(
                "Runtime.evaluate", expression="document.body.innerText", returnByValue=True
            )["result"].get("value", "")
            if f"evoforge/{run_id}/policy/0" in text:
                break
            time.sleep(2)
        ARTIFACTS.mkdir(exist_ok=True)
        shot = page.call("Page.captureScreenshot", format="png")["data"]
        (ARTIFACTS / "dashboard-actors.png").write_bytes(base64.b64decode(shot))
        assert f"evoforge/{run_id}/policy/0" in text, text[:2000]
    finally:
        if browser is not None:
            browser.kill()
            browser.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)


def test_job_stopped_mid_run_then_resumed_as_a_job(head, paused_job):
    first, run_dir = paused_job
    python = [sys.executable, "-m"]
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
