"""A real browser on the Ray dashboard during a run: the actors page lists evoforge's actors.

Headless Chromium (Debian's package, installed by `make test`) is driven through the DevTools
protocol so that its requests carry Ray's auth token. The screenshot is kept under
test-artifacts/ as the test's artifact.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers.runs import REPO, TINY_RUN, cli

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO / "test-artifacts"


def _dashboard_url(proc, deadline: float) -> str:
    lines = []
    while time.time() < deadline:
        line = proc.stderr.readline()
        lines.append(line)
        m = re.search(r"ray dashboard: (http://\S+)", line)
        if m:
            return m.group(1)
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"no dashboard URL printed: {''.join(lines)[-2000:]}")


class DevTools:
    """The few DevTools-protocol calls the test needs."""

    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(ws_url, max_size=50_000_000)
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=30))
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise AssertionError(f"{method}: {msg['error']}")
                return msg.get("result", {})


@pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)"
)
def test_dashboard_actors_page_lists_evoforge_actors(tmp_path):
    run_dir = tmp_path / "browser-run"
    # the pause at select keeps the run (and its actors) alive while the browser looks
    proc = cli(
        ["run", *TINY_RUN, "rounds=1", f"run_dir={run_dir}"],
        env={"EVOFORGE_DEBUG_DELAY": "select=40"},
        start_new_session=True,
    )
    profile = tempfile.mkdtemp(prefix="evoforge-chromium-")
    browser = None
    try:
        url = _dashboard_url(proc, time.time() + 180)
        run_id = json.loads((run_dir / "meta.json").read_text())["run_id"]
        time.sleep(8)  # let the run start its server actors
        browser = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "--window-size=1400,1000",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        port_file = Path(profile) / "DevToolsActivePort"
        deadline = time.time() + 30
        while not port_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        targets = json.loads(
            urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read()
        )
        page = DevTools(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
        page.call("Network.enable")
        token_file = Path(os.path.expanduser("~/.ray/auth_token"))
        if token_file.is_file():
            page.call(
                "Network.setExtraHTTPHeaders",
                headers={"Authorization": f"Bearer {token_file.read_text().strip()}"},
            )
        page.call("Page.enable")
        page.call("Page.navigate", url=f"{url}/#/actors")
        text, deadline = "", time.time() + 60
        while time.time() < deadline:
            text = page.call(
                "Runtime.evaluate", expression="document.body.innerText", returnByValue=True
            )["result"].get("value", "")
            if f"evoforge/{run_id}/policy/0" in text:
                break
            time.sleep(2)
        ARTIFACTS.mkdir(exist_ok=True)
        shot = page.call("Page.captureScreenshot", format="png")["data"]
        import base64

        (ARTIFACTS / "dashboard-actors.png").write_bytes(base64.b64decode(shot))
        assert f"evoforge/{run_id}/policy/0" in text, text[:2000]
    finally:
        if browser is not None:
            browser.kill()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)
