"""Local Ray clusters told they have 0, 1, 2 and 8 GPUs (engines on CPU), started once each in
one process (tests.helpers.layouts) for every check below:

- `evoforge plan` prints the placement, CPU slots, GPU shares and memory; and on 1 GPU,
  `evoforge run` with serving.placement=separate is refused in one line before its run directory
  is written (it was refused after config.yaml and meta.json existed, and the directory could
  then neither run nor resume).
- With 1, 2 and 8 GPUs the planned layout schedules every server replica and the trainer beside
  them: none waits forever. On 1 GPU the trainer shares the servers' GPU (before placement was
  planned, it waited for a whole GPU the server held, and the run hung at train).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers.runs import REPO

pytestmark = pytest.mark.slow
BASE = ["model=tiny", "backend=hf", "serving.vllm_start_timeout_s=120"]


@pytest.fixture(scope="module")
def clusters() -> dict:
    """The plan transcripts by header and the layouts by GPU count, from one process that starts
    the four fake-GPU clusters in turn (imports paid once, each cluster started once)."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.helpers.layouts",
            *BASE,
            "0",
            "1:layout",
            "2:layout",
            "8:layout,serving.replicas=3",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    print(out.stdout)
    parts: dict[str, str] = {}
    for block in out.stdout.split("== ")[1:]:
        head, _, body = block.partition("\n")
        parts[head] = body
    layouts = {}
    for line in out.stdout.splitlines():
        if line.startswith("layout "):
            gpus, _, data = line.removeprefix("layout ").partition(": ")
            layouts[int(gpus)] = json.loads(data)
    return {"transcript": parts, "layouts": layouts}


@pytest.mark.parametrize(
    "gpus, lines",
    [
        ("0", ["placement: cpu (no GPUs in the cluster)", "cpu slots: 2 held at once"]),
        (
            "1",
            [
                "placement: colocate on 1 GPU(s)",
                "gpu shares: 1 held at once (0.5 serving",
                "1 training worker(s) x 0.5) of 1",
            ],
        ),
        ("2", ["placement: separate on 2 GPU(s)", "gpu shares: 2 held at once (1 serving"]),
        ("8", ["placement: separate on 8 GPU(s)", "gpu shares: 2 held at once", "of 8"]),
    ],
)
def test_plan_on_declared_gpus(clusters, gpus, lines):
    text = clusters["transcript"][f"plan {gpus} GPU(s)"]
    assert "cluster: local cluster of this process: 12 CPU slot(s)" in text, text
    for line in lines + ["memory: tiny (", "plan: ok (nothing written)", "exit 0"]:
        assert line in text, text


def test_run_refused_before_its_directory_is_written(clusters):
    text = clusters["transcript"]["run 1 GPU(s) separate"]
    lines = text.strip().splitlines()
    assert lines[0].startswith("error: placement separate needs 2 GPUs"), text
    assert lines[-1] == "exit 2; run directory written: False", text


@pytest.mark.parametrize(
    "gpus, expect",
    [
        (1, {"mode": "colocate", "replicas": 1, "free_gpus_serving": 0.5}),
        (2, {"mode": "separate", "replicas": 1, "free_gpus_serving": 1.0}),
        (8, {"mode": "separate", "replicas": 3, "free_gpus_serving": 5.0}),
    ],
    ids=["1gpu", "2gpus", "8gpus"],
)
def test_every_actor_is_scheduled(clusters, gpus, expect):
    got = clusters["layouts"][gpus]
    assert {k: got[k] for k in expect} == expect, got
    assert got["answers"] == got["replicas"]
    assert got["free_gpus_training"] == pytest.approx(
        0.0 if gpus == 1 else expect["free_gpus_serving"] - 1
    )
    assert got["slept"] is False
    if gpus == 8:
        assert got["wide_answers"] == 1 and got["free_gpus_wide"] == pytest.approx(3.0)
