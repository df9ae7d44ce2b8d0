"""A script that starts a run from Python, as a user submits one with `ray job submit`:
``python -m tests.helpers.job_run key=value ...``."""

from __future__ import annotations

import sys

import evoforge

if __name__ == "__main__":
    result = evoforge.run(evoforge.load_config(None, sys.argv[1:]), quiet=True)
    print("finished:", result.run_dir)
