"""With 1, 2 and 8 GPUs declared to a local Ray cluster (engines on CPU), the planned layout
schedules every server replica and the trainer beside them: none waits forever. On 1 GPU the
trainer shares the servers' GPU (before placement was planned, it waited for a whole GPU the
server held, and the run hung at train)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers.runs import REPO

pytestmark = pytest.mark.slow
BASE = ["model=tiny", "backend=hf", "serving.vllm_start_timeout_s=120"]


@pytest.fixture(scope="module")
def layouts() -> dict[int, dict]:
    """One process starts the three fake-GPU clusters in turn (imports paid once)."""
    out = subprocess.run(
        [sys.executable, "-m", "tests.helpers.gpu_layout", *BASE, "1", "2", "8:serving.replicas=3"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    found = {}
    for line in out.stdout.splitlines():
        if line.startswith("layout "):
            gpus, _, data = line.removeprefix("layout ").partition(": ")
            found[int(gpus)] = json.loads(data)
    return found


@pytest.mark.parametrize(
    "gpus, expect",
    [
        (1, {"mode": "colocate", "replicas": 1, "free_gpus_serving": 0.5}),
        (2, {"mode": "separate", "replicas": 1, "free_gpus_serving": 1.0}),
        (8, {"mode": "separate", "replicas": 3, "free_gpus_serving": 5.0}),
    ],
    ids=["1gpu", "2gpus", "8gpus"],
)
def test_every_actor_is_scheduled(layouts, gpus, expect):
    got = layouts[gpus]
    assert {k: got[k] for k in expect} == expect, got
    assert got["answers"] == got["replicas"]
    assert got["free_gpus_training"] == pytest.approx(
        0.0 if gpus == 1 else expect["free_gpus_serving"] - 1
    )
    assert got["slept"] is False
    if gpus == 8:
        assert got["wide_answers"] == 1 and got["free_gpus_wide"] == pytest.approx(3.0)
