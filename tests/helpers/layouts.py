"""Local Ray clusters told they have N GPUs (12 CPU slots, engines on CPU), one after another in
one process (imports paid once, each cluster started once for every check on it):

    python -m tests.helpers.layouts [key=value ...] N[:layout[,key=value...]] ...

On each cluster: `evoforge plan` (tests.helpers.plan_layout, on the fresh cluster, before
anything holds a slot), then with ``:layout`` the servers and trainer of the ``key=value``
overrides (tests.helpers.gpu_layout), printed as ``layout N: {json}`` under ``== layout N GPU(s)``.
"""

from __future__ import annotations

import json
import sys


def on_cluster(gpus: int, layout_overrides: list[str] | None) -> None:
    from evoforge.agents.serving import cluster
    from tests.helpers.gpu_layout import layout
    from tests.helpers.plan_layout import transcript

    try:
        cluster.connect(num_cpus=12, num_gpus=gpus)
    except Exception:  # noqa: BLE001 - Ray's node start timed out on a loaded machine: once more
        cluster.shutdown()
        cluster.connect(num_cpus=12, num_gpus=gpus)
    try:
        transcript(gpus)
        if layout_overrides is not None:
            print(f"== layout {gpus} GPU(s)", flush=True)
            print(f"layout {gpus}:", json.dumps(layout(gpus, layout_overrides)), flush=True)
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    sys.stderr = sys.stdout  # the one-line errors in order with the plan's lines
    base = [a for a in sys.argv[1:] if "=" in a and ":" not in a]
    for scenario in (a for a in sys.argv[1:] if a not in base):
        gpus, _, extra = scenario.partition(":")
        kind, *more = extra.split(",") if extra else [""]
        assert kind in ("", "layout"), f"unknown scenario {scenario}"
        on_cluster(int(gpus), base + [x for x in more if x] if kind else None)
