"""How a run reaches a Ray cluster, and how its driver keeps SIGTERM while a local one stops."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from evoforge.agents.serving.cluster import _loopback_only


def listener(host: str) -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind((host, 0))
    s.listen()
    return s, s.getsockname()[1]


def test_a_cluster_listening_on_loopback_only_is_joined_as_loopback():
    from ray._private.services import get_node_ip_address

    if ipaddress.ip_address(get_node_ip_address()).is_loopback:
        pytest.skip("this machine has no network address besides loopback")
    only_loopback, port = listener("127.0.0.1")
    everywhere, port_all = listener("0.0.0.0")
    with only_loopback, everywhere:
        assert _loopback_only(f"127.0.0.1:{port}")
        assert _loopback_only(f"localhost:{port}")
        assert not _loopback_only(f"127.0.0.1:{port_all}")  # Ray's own rewrite reaches it
        assert not _loopback_only(f"{get_node_ip_address()}:{port_all}")
        assert not _loopback_only("auto")


SIGTERMS_DURING_SHUTDOWN = """
import os, signal, threading, time
from evoforge.agents.serving import cluster

info = cluster.connect("", "127.0.0.1", temp_dir="")
assert info.started_here
got = []
signal.signal(signal.SIGTERM, lambda s, f: got.append(s))

def sender():
    for _ in range(30):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)

t = threading.Thread(target=sender)
t.start()
cluster.shutdown()
t.join()
during = len(got)  # signals sent before the handler ran merge into one: at most 30
os.kill(os.getpid(), signal.SIGTERM)  # and one after it
time.sleep(0.2)
print("alive", during, len(got))
"""


def test_sigterm_during_shutdown_of_a_local_cluster_reaches_the_drivers_handler():
    """Ray resets SIGTERM to SIG_DFL at the C level when a driver with its crash handler
    disconnects; a driver that owns SIGTERM must not die of one sent while the cluster stops."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", SIGTERMS_DURING_SHUTDOWN],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    alive, during, total = proc.stdout.split()
    assert alive == "alive" and 1 <= int(during) <= 30 and int(total) == int(during) + 1
