"""Every sandbox test ends with no process of a sandbox left anywhere."""

from __future__ import annotations

import time

import pytest

from tests.helpers.sandbox import sandbox_processes


@pytest.fixture(autouse=True)
def nothing_left_behind():
    yield
    deadline = time.monotonic() + 3
    while (left := sandbox_processes()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"processes left behind: {[(p.pid, p.name()) for p in left]}"
