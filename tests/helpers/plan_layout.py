"""`evoforge plan` on a local Ray cluster told it has N GPUs (12 CPU slots): ``transcript(gpus)``
prints the plan's transcript under a ``== plan N GPU(s)`` header, then, on 1 GPU, what
`evoforge run` with ``serving.placement=separate`` says and whether it wrote its run directory
(tests.helpers.layouts calls it on the cluster it started)."""

from __future__ import annotations

import os
import tempfile

BASE = ["model=tiny", "env=parity", "eval.guard_env=", "serving.max_model_len=1024", "backend=hf"]


def transcript(gpus: int) -> None:
    from evoforge.cli import main as cli

    print(f"== plan {gpus} GPU(s)", flush=True)
    print(f"$ evoforge plan {' '.join(BASE)}", flush=True)
    code = cli(["plan", *BASE])
    print(f"exit {code}", flush=True)
    if gpus == 1:
        run_dir = os.path.join(tempfile.mkdtemp(), "run")
        print("== run 1 GPU(s) separate", flush=True)
        code = cli(["--quiet", "run", *BASE, "serving.placement=separate", f"run_dir={run_dir}"])
        print(f"exit {code}; run directory written: {os.path.exists(run_dir)}", flush=True)
