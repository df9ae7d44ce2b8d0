"""The README's cluster recipe, run as written on a machine that never ran Ray (a fresh HOME: no
``~/.ray/auth_token``): its ``ray`` and ``export`` lines in their order, then a job
submitted with the environment they leave. The head runs on free ports and its own temp dir,
and only its own processes are stopped (``ray stop`` would stop every cluster on the machine)."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.helpers.runs import REPO
from tests.system.test_ray_jobs import RAY, Head, free_ports

pytestmark = pytest.mark.slow


def recipe() -> list[str]:
    """The recipe's lines up to the job submission, comments cut."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Run on a cluster") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    lines = []
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("ray job submit"):
            break
        if line:
            lines.append(line)
    return lines


def test_the_readme_cluster_recipe_works_on_a_fresh_machine(tmp_path):
    lines = recipe()
    assert any(x.startswith("ray start --head") for x in lines), lines
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), PYTHONPATH=str(REPO))
    for key in ("RAY_ADDRESS", "RAY_AUTH_MODE"):
        env.pop(key, None)
    gcs, dash, client, agent, agent_grpc, metrics, env_agent, nm, om = free_ports(9)
    log = tmp_path / "head.log"
    head = Head.__new__(Head)  # only its stop(): this test starts the head the recipe's way
    head.temp = tempfile.mkdtemp(prefix="efr-", dir="/tmp")
    head.proc = None
    try:
        for line in lines:
            if line.startswith("export "):
                key, _, value = line[len("export ") :].partition("=")
                env[key] = value
                continue
            if not line.startswith("ray start --head"):  # a setup step (the token)
                args = shlex.split(line.split(" >", 1)[0])
                assert args[0] == "ray", line
                done = subprocess.run([RAY, *args[1:]], env=dict(env), capture_output=True)
                assert done.returncode == 0, (line, done.stderr[-2000:])
                continue
            extra = [
                "--block", "--node-ip-address=127.0.0.1", f"--port={gcs}",
                f"--dashboard-port={dash}", f"--ray-client-server-port={client}",
                f"--dashboard-agent-listen-port={agent}",
                f"--dashboard-agent-grpc-port={agent_grpc}", f"--metrics-export-port={metrics}",
                f"--runtime-env-agent-port={env_agent}", f"--node-manager-port={nm}",
                f"--object-manager-port={om}", "--num-cpus=1", f"--temp-dir={head.temp}",
            ]  # fmt: skip
            head.proc = subprocess.Popen(
                [RAY, *shlex.split(line)[1:], *extra],
                env=dict(env),  # what was exported so far, as a shell would pass it
                stdout=log.open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        assert head.proc is not None
        deadline = time.time() + 180
        while True:
            assert head.proc.poll() is None, log.read_text()[-3000:]
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", dash)) == 0:
                    break
            assert time.time() < deadline, "the head's dashboard did not come up in 180 s"
            time.sleep(1)
        deadline = time.time() + 300  # a loaded machine: the job agent comes up after it
        while True:
            out = subprocess.run(
                [RAY, "job", "submit", "--address", f"http://127.0.0.1:{dash}", "--",
                 sys.executable, "-c", "print('recipe ok')"],
                env=env, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            text = out.stdout + out.stderr
            if out.returncode == 0 or "Authentication" in text or time.time() > deadline:
                break
            time.sleep(2)  # the job agent may come up after the dashboard
        assert out.returncode == 0 and "recipe ok" in out.stdout, text[-3000:]
        assert (home / ".ray" / "auth_token").is_file()  # the head made the token
    finally:
        if head.proc is not None:
            head.stop()
        else:
            Path(head.temp).rmdir()
