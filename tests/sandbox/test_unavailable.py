"""Where the isolation cannot be set up, model code is refused with one line that says how to
enable it; never run in a weaker sandbox."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from evoforge.envs import get_env
from evoforge.envs.check import check_env
from evoforge.errors import EvoforgeError
from evoforge.sandbox import SandboxUnavailable, run_code
from tests.helpers.runs import REPO


def test_without_bwrap_code_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SandboxUnavailable) as info:
        run_code("def f(x):\n    return x", "f", [[1]])
    message = str(info.value)
    assert "\n" not in message and "apt-get install bubblewrap" in message
    env = get_env("code")
    task = env.tasks("train", 1, seed=0)[0]
    with pytest.raises(EvoforgeError, match="bubblewrap"):  # an error, not a failed verdict
        env.verify(task, "```python\ndef f(xs):\n    return 0\n```")
    report = check_env(env)  # `evoforge envs check code` passes the fix on
    assert len(report.problems) == 1 and "apt-get install bubblewrap" in report.problems[0]
    assert "instead of raising" not in report.problems[0]


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_without_user_namespaces_code_is_refused():
    """A real refusal: in a user namespace whose limit of nested user namespaces is 0."""
    script = (
        "from evoforge.sandbox import run_code\n"
        "try:\n"
        "    run_code('def f(x):\\n    return x', 'f', [[1]])\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    shell = f'echo 0 > /proc/sys/user/max_user_namespaces && exec {sys.executable} -c "$0"'
    run = subprocess.run(
        ["unshare", "--user", "--map-root-user", "sh", "-c", shell, script],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "Operation not permitted" in run.stderr and "unshare" in run.stderr:
        pytest.skip("user namespaces are not available to the tests here")
    out = run.stdout.strip()
    assert out.startswith("SandboxUnavailable") and "\n" not in out, (out, run.stderr)
    assert "user namespaces" in out and "sysctl" in out


def test_a_missing_host_device_is_named_not_blamed_on_user_namespaces():
    """bwrap's message when /dev/full was gone from a machine (seen here): the fix names it."""
    from evoforge.sandbox.bwrap import hint_for

    problem = (
        "bwrap: Can't bind mount /oldroot/dev/full on /newroot/dev/full: Unable to mount source "
        "on destination: No such file or directory"
    )
    assert hint_for(problem).startswith("/dev/full is missing on this machine")
    assert "user namespaces" in hint_for("bwrap: setting up uid map: Permission denied")
    assert "CONFIG_SECCOMP_FILTER" in hint_for("bwrap: prctl(PR_SET_SECCOMP): Invalid argument")
