"""`evoforge plan` on local Ray clusters told they have 0, 1, 2 and 8 GPUs (engines on CPU): the
placement, CPU slots, GPU shares and memory it prints; and on 1 GPU, `evoforge run` with
serving.placement=separate is refused in one line before its run directory is written (it was
refused after config.yaml and meta.json existed, and the directory could then neither run nor
resume)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers.runs import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def transcript() -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-m", "tests.helpers.plan_layout", "0", "1", "2", "8"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    print(out.stdout)
    parts: dict[str, str] = {}
    for block in out.stdout.split("== ")[1:]:
        head, _, body = block.partition("\n")
        parts[head] = body
    return parts


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
def test_plan_on_declared_gpus(transcript, gpus, lines):
    text = transcript[f"plan {gpus} GPU(s)"]
    assert "cluster: local cluster of this process: 12 CPU slot(s)" in text, text
    for line in lines + ["memory: tiny (", "plan: ok (nothing written)", "exit 0"]:
        assert line in text, text


def test_run_refused_before_its_directory_is_written(transcript):
    text = transcript["run 1 GPU(s) separate"]
    lines = text.strip().splitlines()
    assert lines[0].startswith("error: placement separate needs 2 GPUs"), text
    assert lines[-1] == "exit 2; run directory written: False", text
