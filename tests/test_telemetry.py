"""A tiny run's metrics come back from Ray's metrics export endpoint, and its named actors from the
dashboard's REST API (with Ray's auth token when the cluster uses one). A real Prometheus scrapes
the same run (when Debian's `prometheus` is installed: scripts/test-deps.sh): at the run's end it
holds every node's seconds and counts, and every query of the shipped Grafana dashboard answers."""

from __future__ import annotations

import json
import math
import os
import time
import urllib.request
from pathlib import Path

import pytest

import evoforge
from tests.helpers.prometheus import Prometheus
from tests.helpers.runs import TINY_RUN, ray_address

pytestmark = pytest.mark.slow


def _get(url: str) -> str:
    req = urllib.request.Request(url)
    token_file = os.path.expanduser("~/.ray/auth_token")
    if os.path.isfile(token_file):
        req.add_header("Authorization", f"Bearer {Path(token_file).read_text().strip()}")
    with urllib.request.urlopen(req, timeout=10) as resp:  # loopback only
        return resp.read().decode()


def _export_port() -> int:
    import ray

    return next(n["MetricsExportPort"] for n in ray.nodes() if n["Alive"])


@pytest.fixture(scope="module")
def tiny_run(ray_cluster, tmp_path_factory):
    """One tiny run for every test here, scraped meanwhile by Prometheus when it is installed."""
    tmp = tmp_path_factory.mktemp("telemetry")
    prom = Prometheus(f"127.0.0.1:{_export_port()}", tmp) if Prometheus.available() else None
    try:
        run_dir = tmp / "telemetry-run"
        # No calibration: the judge keeps weight 1 and is called in the search (a benched judge,
        # which a random model's often is, would leave no judge metrics to look for).
        overrides = ["rounds=1", "critic.calibration_answers=0", f"run_dir={run_dir}"]
        start = time.time()
        evoforge.run(evoforge.load_config(None, TINY_RUN + overrides))
        yield {"run_dir": run_dir, "prometheus": prom, "start": start, "end": time.time()}
    finally:
        if prom is not None:
            prom.stop()


def test_metrics_and_actors_visible_on_ray(ray_cluster, tiny_run):
    run_dir = tiny_run["run_dir"]
    run_id = json.loads((run_dir / "meta.json").read_text())["run_id"]
    port = _export_port()
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
        and 'node="select"' in line
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
        "round0/select:policy.generate",
        "round0/train",
    ):
        assert wanted_task in task_names, sorted(n for n in task_names if n.startswith("round"))[
            :20
        ]


def test_dashboard_provisioned_beside_rays(ray_cluster):
    """Connecting put evoforge's dashboard in the session's Grafana dashboards folder, which
    Ray's provisioning (metrics/grafana/provisioning/dashboards/default.yml) points Grafana at."""
    from evoforge.monitoring import DASHBOARD, PROVISIONED_NAME

    folder = Path(ray_cluster.session_dir) / "metrics" / "grafana" / "dashboards"
    assert (folder / PROVISIONED_NAME).read_text() == DASHBOARD.read_text()
    assert (folder / "default_grafana_dashboard.json").is_file()  # Ray's own, beside it
    provisioning = folder.parent / "provisioning" / "dashboards" / "default.yml"
    assert str(folder) in provisioning.read_text()


def _series(result: list[dict], at: float, *labels: str) -> set[tuple[str, ...]]:
    """The label values of the series of a range query that have a sample at ``at``."""
    return {
        tuple(r["metric"].get(k, "") for k in labels)
        for r in result
        if any(abs(float(t) - at) < 1e-6 for t, _ in r["values"])
    }


def test_prometheus_holds_every_node_at_the_end_of_the_run(tiny_run):
    """A gauge set once vanished ~20 s later (a scrape during `train` held no node gauge): kept
    set until the run ends, every node's seconds and counts are in Prometheus at its last node."""
    prom = tiny_run["prometheus"]
    if prom is None:
        pytest.skip("Debian's prometheus is not installed (scripts/test-deps.sh installs it)")
    run_id = json.loads((tiny_run["run_dir"] / "meta.json").read_text())["run_id"]
    events = [
        json.loads(line) for line in (tiny_run["run_dir"] / "events.jsonl").read_text().splitlines()
    ]
    nodes = {(str(e["round"]), e["node"]) for e in events if "node" in e}
    counts = {
        (str(e["round"]), e["node"], k)
        for e in events
        if "node" in e
        for k, v in e.items()
        if k not in ("round", "node", "seconds", "engine_seconds", "ts", "time")
        and isinstance(v, int | float)
        and math.isfinite(v)
    }
    seconds = f'ray_evoforge_node_seconds{{run="{run_id}"}}'
    deadline, at = time.time() + 60, None
    while at is None and time.time() < deadline:  # the last node's gauge reaches Prometheus
        result = prom.query_range(seconds, tiny_run["start"], time.time())
        last = [r for r in result if r["metric"]["node"] == "promote"]
        at = float(last[0]["values"][0][0]) if last else None
        if at is None:
            time.sleep(2)
    assert at is not None, "the last node's seconds never reached Prometheus"
    assert _series(result, at, "round", "node") == nodes
    got = _series(
        prom.query_range(f'ray_evoforge_node_count{{run="{run_id}"}}', at - 1, at + 1),
        at,
        "round",
        "node",
        "name",
    )
    assert counts <= got, sorted(counts - got)
    print(f"prometheus at the last node: {len(nodes)} node series, {len(got)} count series")


def test_every_dashboard_query_answers(tiny_run):
    """Each query of the shipped Grafana dashboard returns data for the tiny run."""
    prom = tiny_run["prometheus"]
    if prom is None:
        pytest.skip("Debian's prometheus is not installed (scripts/test-deps.sh installs it)")
    from evoforge.monitoring import DASHBOARD

    run_id = json.loads((tiny_run["run_dir"] / "meta.json").read_text())["run_id"]
    dashboard = json.loads(DASHBOARD.read_text())
    empty = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = (
                target["expr"]
                .replace("$run", run_id)
                .replace("$__range", "1h")
                .replace("$__rate_interval", "1m")
            )
            if not prom.query(expr):
                empty.append(f"{panel['title']}: {expr}")
    assert not empty, "\n".join(empty)
