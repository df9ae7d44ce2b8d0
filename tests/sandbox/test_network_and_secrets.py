"""No network and no secret, through the real sandbox: the host's listeners hear nothing, and
neither the parent's environment nor a token on disk is readable inside."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import psutil
import pytest

from tests.helpers.sandbox import evidence, failed


@pytest.fixture
def listeners(tmp_path):
    """A TCP, a UDP, a unix-path and an abstract unix socket on the host, all listening."""
    tcp = socket.create_server(("127.0.0.1", 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    path = str(tmp_path / "host.sock")
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(path)
    unix.listen()
    abstract_name = f"\0evoforge-test-{os.getpid()}"
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind(abstract_name)
    abstract.listen()
    for s in (tcp, udp, unix, abstract):
        s.settimeout(0.3)
    yield {
        "tcp": tcp.getsockname()[1],
        "udp": udp.getsockname()[1],
        "path": path,
        "abstract": abstract_name,
    }
    for s in (tcp, unix, abstract):
        with pytest.raises(TimeoutError):  # nobody connected
            s.accept()
    with pytest.raises(TimeoutError):
        udp.recv(16)
    for s in (tcp, udp, unix, abstract):
        s.close()


def host_address() -> str | None:
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return a.address
    return None


def test_no_network_reaches_the_host(listeners):
    host = host_address() or "10.0.0.1"
    outcomes = evidence(
        f"""
import socket
def connect(family, address, kind=socket.SOCK_STREAM):
    s = socket.socket(family, kind)
    s.settimeout(1)
    s.connect(address)
    return s.send(b"pwned")
def f(x):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.settimeout(1)
    return {{
        "tcp": attempt(lambda: connect(socket.AF_INET, ("127.0.0.1", {listeners["tcp"]}))),
        "udp": attempt(lambda: udp.sendto(b"pwned", ("127.0.0.1", {listeners["udp"]})) and udp.recv(1)),
        "host_ip": attempt(lambda: connect(socket.AF_INET, ({host!r}, {listeners["tcp"]}))),
        "unix": attempt(lambda: connect(socket.AF_UNIX, {listeners["path"]!r})),
        "abstract": attempt(lambda: connect(socket.AF_UNIX, {listeners["abstract"]!r})),
        "dns": attempt(lambda: socket.getaddrinfo("pypi.org", 443)),
        "ipv6": attempt(lambda: connect(socket.AF_INET6, ("2606:4700::1", 443))),
        "links": socket.if_nameindex(),
        "netlink": attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).fileno() > 0),
    }}
"""
    )
    assert outcomes.pop("links") == [(1, "lo")]  # its own loopback only
    assert outcomes.pop("netlink") == "ok: True"  # allowed, and it sees only that loopback
    assert all(failed(o) for o in outcomes.values()), outcomes


def test_no_secret_of_the_parent_is_visible(monkeypatch):
    secret = f"evoforge-secret-{os.urandom(6).hex()}"
    monkeypatch.setenv("EVOFORGE_TEST_SECRET", secret)
    monkeypatch.setenv("RAY_AUTH_TOKEN", secret)
    token_file = Path("~/.ray/auth_token").expanduser()
    token = token_file.read_text().strip() if token_file.is_file() else secret
    seen = evidence(
        """
import os
def walk_names(top):
    names = []
    for root, dirs, files in os.walk(top):
        if root.startswith(("/proc", "/dev", "/usr/lib", "/python/lib")):
            dirs.clear()
            continue
        names += [os.path.join(root, n) for n in files]
    return names
def f(x):
    environs = []
    for pid in (p for p in os.listdir("/proc") if p.isdigit()):
        try:
            environs.append(open(f"/proc/{pid}/environ", "rb").read())
        except OSError as e:
            environs.append(type(e).__name__)
    return {
        "env": dict(os.environ), "environs": environs, "home": os.path.expanduser("~"),
        "files": walk_names("/"), "ray": attempt(lambda: open("/root/.ray/auth_token").read()),
    }
"""
    )
    assert secret not in repr(seen) and token not in repr(seen)
    assert seen["env"] == {} and seen["home"] == "~" and failed(seen["ray"])
    assert all(e in (b"", "PermissionError") for e in seen["environs"]), seen["environs"]
    files = [f for f in seen["files"] if not f.startswith("/python/bin/")]  # the interpreter
    assert sorted(files) == ["/etc/ld.so.cache", "/python/runner.py"], seen["files"]
