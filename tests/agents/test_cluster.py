"""How a run reaches a Ray cluster by address (no cluster is started here)."""

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
