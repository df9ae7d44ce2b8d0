"""A tiny run's metrics come back from Ray's metrics export endpoint, and its named actors from the
dashboard's REST API (with Ray's auth token when the cluster uses one)."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path

import pytest

import evoforge
from tests.helpers.runs import TINY_RUN, ray_address

pytestmark = pytest.mark.slow


def _get(url: str) -> str:
    req = urllib.request.Request(url)
    token_file = os.path.expanduser("~/.ray/auth_token")
    if os.path.isfile(token_file):
        req.add_header("Authorization", f"Bearer {Path(token_file).read_text().strip()}")
    with urllib.request.urlopen(req, timeout=10) as resp:  # loopback only
        return resp.read().decode()


def test_metrics_and_actors_visible_on_ray(ray_cluster, tmp_path):
    import ray

    run_dir = tmp_path / "telemetry-run"
    # No calibration: the judge keeps weight 1 and is called in the search (a benched judge, which
    # a random model's often is, would leave no judge metrics to look for).
    overrides = ["rounds=1", "critic.calibration_answers=0", f"run_dir={run_dir}"]
    evoforge.run(evoforge.load_config(None, TINY_RUN + overrides))
    run_id = run_dir.name
    port = next(n["MetricsExportPort"] for n in ray.nodes() if n["Alive"])
    wanted = {
        "ray_evoforge_requests",
        "ray_evoforge_tokens_generated",
        "ray_evoforge_batch_size",
        "ray_evoforge_node_seconds",
        "ray_evoforge_node_count",
    }
    deadline, text = time.time() + 60, ""
    while time.time() < deadline:
        text = _get(f"http://127.0.0.1:{port}/metrics")
        found = {
            name
            for name in wanted
            if any(line.startswith(name) and run_id in line for line in text.splitlines())
        }
        if found == wanted:
            break
        time.sleep(3)
    assert found == wanted, f"missing {wanted - found}"
    assert 'node="expand"' in text and 'name="pairs"' in text
    assert any(
        line.startswith("ray_evoforge_tokens_generated")
        and 'node="judge"' in line
        and 'round="0"' in line
        for line in text.splitlines()
    )

    actors = json.loads(_get(f"{ray_cluster.dashboard_url}/api/v0/actors?limit=1000&detail=true"))
    names = {a.get("name") for a in actors["data"]["result"]["result"]}
    assert f"evoforge/{run_id}/policy/0" in names and f"evoforge/{run_id}/trainer/0" in names

    from ray.util.state import list_tasks

    task_names = {
        t.name
        for t in list_tasks(address=ray_address(), limit=10_000, raise_on_missing_output=False)
    }
    for wanted_task in (
        "round0/generate:policy.generate",
        "round0/expand:policy.generate",
        "round0/judge:policy.generate",
        "round0/train",
    ):
        assert wanted_task in task_names, sorted(n for n in task_names if n.startswith("round"))[
            :20
        ]


def test_joining_a_cluster_prints_its_dashboard(ray_cluster, tmp_path):
    """`ray_address=` joins the running cluster (here the test session's) instead of starting one."""
    from tests.helpers.runs import cli

    proc = cli(
        [
            "run",
            *TINY_RUN,
            "rounds=1",
            "search.max_depth=1",
            f"run_dir={tmp_path / 'joined'}",
            f"ray_address={ray_cluster.address}",
        ]
    )
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    assert f"ray dashboard: {ray_cluster.dashboard_url}" in err
    import ray

    assert ray.is_initialized() and ray.cluster_resources()  # the joined cluster was left running
