"""`evoforge plan` on local Ray clusters told they have N GPUs: ``python -m
tests.helpers.plan_layout N ...`` starts one cluster per N in turn (12 CPU slots), prints the
plan's transcript under a ``== plan N GPU(s)`` header, then, on 1 GPU, what `evoforge run` with
``serving.placement=separate`` says and whether it wrote its run directory."""

from __future__ import annotations

import os
import sys
import tempfile

BASE = ["model=tiny", "env=parity", "eval.guard_env=", "serving.max_model_len=1024", "backend=hf"]


def main(gpus: int) -> None:
    from evoforge.agents.serving import cluster
    from evoforge.cli import main as cli

    try:
        cluster.connect(num_cpus=12, num_gpus=gpus)
    except Exception:  # noqa: BLE001 - Ray's node start timed out on a loaded machine: once more
        cluster.shutdown()
        cluster.connect(num_cpus=12, num_gpus=gpus)
    try:
        print(f"== plan {gpus} GPU(s)", flush=True)
        print(f"$ evoforge plan {' '.join(BASE)}", flush=True)
        code = cli(["plan", *BASE])
        print(f"exit {code}", flush=True)
        if gpus == 1:
            run_dir = os.path.join(tempfile.mkdtemp(), "run")
            print("== run 1 GPU(s) separate", flush=True)
            code = cli(
                ["--quiet", "run", *BASE, "serving.placement=separate", f"run_dir={run_dir}"]
            )
            print(f"exit {code}; run directory written: {os.path.exists(run_dir)}", flush=True)
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    sys.stderr = sys.stdout  # the one-line errors in order with the plan's lines
    for n in sys.argv[1:]:
        main(int(n))
