"""Security: a loopback dashboard behind Ray's token, code named only as module:attr, and model
output that reaches code only inside the sandbox."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import psutil
import pytest

from evoforge.cli import main
from evoforge.envs.registry import get_env
from evoforge.errors import EvoforgeError


def test_dashboard_listens_on_loopback_only_and_wants_the_token(ray_cluster):
    url = urlparse(ray_cluster.dashboard_url)
    assert url.hostname == "127.0.0.1"
    listening = [
        c.laddr
        for c in psutil.net_connections("tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port == url.port
    ]
    assert listening and all(a.ip == "127.0.0.1" for a in listening), listening
    if not Path("~/.ray/auth_token").expanduser().is_file():
        pytest.skip("this Ray build runs without token auth")
    with pytest.raises(urllib.error.HTTPError) as info:  # no Authorization header
        urllib.request.urlopen(f"{ray_cluster.dashboard_url}/api/v0/actors", timeout=10)
    assert info.value.code in (401, 403)


@pytest.mark.parametrize(
    "spec",
    ["tests.helpers.raising_plugin", "__import__('os').system('true')", "os.system"],
)
def test_config_names_code_only_as_module_attr(spec, capsys):
    """A value without ``module:attr`` is a name to look up, never something to import or run."""
    assert main(["run", f"env={spec}"]) == 2
    assert "unknown environment" in capsys.readouterr().err
    assert "tests.helpers.raising_plugin" not in sys.modules


HOSTILE = [
    "__import__('os').system('touch {marker}')",
    "```python\nimport os\nos.system('touch {marker}')\n```",
    '{{"a": __import__("os").system("touch {marker}")}}',
    "\\boxed{{__import__('os').system('touch {marker}')}}",
    "The answer is eval(\"open('{marker}', 'w')\")",
]


@pytest.mark.parametrize("env_name", ["instructions", "arithmetic", "code"])
def test_hostile_model_output_runs_nowhere_outside_the_sandbox(env_name, tmp_path):
    env = get_env(env_name)
    marker = tmp_path / "pwned"
    for task in env.tasks("train", 3, seed=0):
        for template in HOSTILE:
            response = template.format(marker=marker)
            try:
                verdict = env.verify(task, response)
            except EvoforgeError:
                continue  # a refused answer is fine; a marker file is not
            assert not verdict.passed or env_name == "instructions"
            assert not marker.exists(), f"{env_name} ran model output: {response!r}"
