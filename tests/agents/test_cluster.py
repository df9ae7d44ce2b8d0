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


def test_a_local_cluster_that_does_not_start_in_time_is_one_line(monkeypatch):
    """Ray gives its raylet a fixed 30 s to register; on an overloaded machine ray.init raises a
    bare Exception, which must not reach the user as a traceback."""
    import ray

    from evoforge.agents.serving import cluster
    from evoforge.errors import EvoforgeError

    def slow_start(**kwargs):
        raise Exception(
            "The current node timed out during startup. This could happen because some of the "
            "raylet failed to startup or the GCS has become overloaded."
        )

    # ray.shutdown is stubbed too: the real one would stop the session's cluster, which this
    # process started (tests/conftest.py) when an earlier test asked for it.
    stopped = []
    monkeypatch.setattr(ray, "init", slow_start)
    monkeypatch.setattr(ray, "shutdown", lambda: stopped.append(True))
    with pytest.raises(
        EvoforgeError, match=r"^the local Ray cluster did not start: .*ray_address=$"
    ):
        cluster._start_local(4, None, "127.0.0.1", "")
    assert stopped == [True]  # what did start (the GCS) is stopped


def test_a_server_killed_for_memory_names_the_knob_of_its_engine():
    """Ray's OutOfMemoryError (its memory monitor) and an actor's death notice with the monitor's
    text both count; the knob is the one that sizes that engine's memory."""
    from dataclasses import replace

    from ray.exceptions import ActorDiedError, OutOfMemoryError

    import evoforge
    from evoforge.agents.serving.memory import (
        killed_for_memory,
        memory_detail,
        memory_hint,
        short_of_memory,
    )
    from evoforge.agents.serving.pool import ServerSpec

    spec = ServerSpec.from_config(evoforge.load_config(None, ["model=tiny"]), "/m", "vllm")
    assert killed_for_memory(OutOfMemoryError("Task was killed due to the node running low"))
    died = ActorDiedError()
    died.error_msg = "Worker exit detail: Task was killed due to the node running low on memory."
    assert killed_for_memory(died)
    assert not killed_for_memory(ActorDiedError())
    assert memory_hint(spec, gpu=True).startswith("lower serving.vllm_memory_fraction (vLLM's")
    assert memory_hint(spec, gpu=False) == (
        "lower serving.vllm_kv_cache_gib (vLLM-CPU's KV cache space, now 3 GiB)"
    )
    assert memory_hint(replace(spec, backend="hf"), gpu=False).startswith(
        "lower serving.hf_batch_size"
    )
    full = ValueError(
        "No available memory for the cache blocks. Try increasing `gpu_memory_utilization`"
    )
    assert short_of_memory(full) and not killed_for_memory(full)
    assert memory_hint(spec, gpu=True, error=full).startswith("raise serving.vllm_memory_fraction")
    assert memory_detail(RuntimeError(f"Traceback ...\n  line\n{full}\nmore")) == str(full)
