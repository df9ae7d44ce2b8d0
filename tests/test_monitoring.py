"""Node gauges are set again on an interval until their run ends (Ray drops a gauge ~20 s after
its last set), and the shipped monitoring files are valid; the real export is tested against
Prometheus in test_telemetry.py."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections import Counter

import pytest
import ray

from evoforge import telemetry
from evoforge.monitoring import DASHBOARD, PROMETHEUS_CONFIG


class Recorder:
    """Stands in for a Ray metric: counts every set by (name, tags)."""

    def __init__(self, name: str, sets: Counter) -> None:
        self.name, self.sets = name, sets

    def set(self, value: float, tags: dict[str, str]) -> None:
        self.sets[(self.name, tuple(sorted(tags.items())))] += 1


def test_gauges_are_set_again_until_the_run_ends(monkeypatch):
    sets: Counter = Counter()
    monkeypatch.setattr(telemetry, "_metric", lambda kind, name, *a: Recorder(name, sets))
    monkeypatch.setattr(telemetry, "KEEPALIVE_S", 0.05)
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    telemetry.record_node("run-a", -1, "baseline", 2.0, 1.0, {"strict": 0.5, "reason": "x"})
    telemetry.record_node("run-b", 0, "train", 3.0, 0.0, {"loss": 0.7, "skipped": False})
    assert telemetry.live_series("run-a") == 3 and telemetry.live_series("run-b") == 4
    time.sleep(0.5)
    baseline = ("evoforge_node_seconds", (("node", "baseline"), ("round", "-1"), ("run", "run-a")))
    assert sets[baseline] >= 4, sets  # set again and again, long after the node finished
    telemetry.end_run("run-a")
    assert telemetry.live_series("run-a") == 0 and telemetry.live_series("run-b") == 4
    time.sleep(0.2)
    before = sets[baseline]
    time.sleep(0.3)
    assert sets[baseline] == before  # an ended run's gauges are left to expire
    loss = (
        "evoforge_node_count",
        (("name", "loss"), ("node", "train"), ("round", "0"), ("run", "run-b")),
    )
    assert sets[loss] >= 4
    telemetry.end_run("run-b")
    time.sleep(0.3)
    assert telemetry._keeper is None  # nothing left to keep: the thread ended


def test_shipped_prometheus_config_is_valid():
    if shutil.which("promtool") is None:
        pytest.skip("promtool (Debian's prometheus package) is not installed")
    out = subprocess.run(
        ["promtool", "check", "config", str(PROMETHEUS_CONFIG)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_dashboard_queries_only_evoforge_metrics_of_the_selected_run():
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 12
    for expr in exprs:
        assert "ray_evoforge_" in expr and '{run=~"$run"' in expr, expr
    names = {v["name"] for v in dashboard["templating"]["list"]}
    assert names == {"datasource", "run"}
