"""Monitoring files shipped with evoforge: a Grafana dashboard for its metrics and a Prometheus
scrape config (docs/monitoring.md).

``provision`` puts the dashboard where Ray's own Grafana provisioning looks
(``<session>/metrics/grafana/dashboards``, beside Ray's dashboards), so a Grafana started with
Ray's ``grafana.ini`` lists it under the Ray folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
DASHBOARD = HERE / "grafana" / "evoforge.json"
PROMETHEUS_CONFIG = HERE / "prometheus.yml"
PROVISIONED_NAME = "evoforge_grafana_dashboard.json"


def provision(session_dir: str) -> Path | None:
    """Copy the dashboard into a Ray session's Grafana dashboards folder (on the head node);
    where that session is not on this machine, nothing. Never fails a run."""
    if not session_dir or not os.path.isdir(session_dir):
        return None
    target = Path(session_dir) / "metrics" / "grafana" / "dashboards" / PROVISIONED_NAME
    with contextlib.suppress(OSError):
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DASHBOARD, target)
        return target
    return None
