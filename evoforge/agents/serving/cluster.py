"""Ray: start a local cluster (dashboard on 127.0.0.1) or join ``ray_address``.

Inside a Ray job (``ray job submit``), Ray sets RAY_ADDRESS: a run with an empty ``ray_address``
joins the job's cluster, so its actors and tasks belong to the job. Otherwise an empty address
starts a new local cluster, never one that ``ray start`` left running on the machine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from evoforge.errors import EvoforgeError, storage_error

NAMESPACE = "evoforge"
log = logging.getLogger("evoforge")
_CONTEXT = None  # what ray.init returned in this process
_STARTED_HERE = False  # whether this process started the cluster it is connected to
MAX_RAY_TEMP_DIR = 50
"""Longest temp_dir a local cluster keeps its session in: Ray's unix sockets live ~60 characters
deeper, and a socket path may have at most 107. A longer one leaves the session in Ray's default
place, and the run removes the session's directory at exit instead."""


@dataclass(frozen=True)
class ClusterInfo:
    """How to reach the cluster a run uses."""

    address: str
    dashboard_url: str
    started_here: bool
    gpus: float
    session_dir: str

    def token_hint(self) -> str:
        """Where the dashboard's auth token is, when Ray wrote one (token auth)."""
        for path in (
            os.path.join(self.session_dir, "auth_token"),
            os.path.expanduser("~/.ray/auth_token"),
        ):
            if os.path.isfile(path):
                return f"auth token: cat {path}"
        return "auth token: none required by this cluster"


def reachable(address: str, timeout: float = 3.0) -> bool:
    """A quick TCP probe so an unreachable address fails in seconds, not after Ray's retries."""
    if address in ("auto", "local"):
        return True
    target = urlparse(address if "://" in address else f"tcp://{address}")
    if not target.hostname or not target.port:
        return True  # let Ray parse unusual forms itself
    try:
        with socket.create_connection((target.hostname, target.port), timeout=timeout):
            return True
    except OSError:
        return False


def job_address() -> str:
    """The cluster of the Ray job this process runs in (RAY_ADDRESS), or empty."""
    return os.environ.get("RAY_ADDRESS", "")


def local_cpus() -> int:
    """CPU slots of a local cluster. Logical: serving actors and the trainer take turns on the
    cores, so a local cluster offers at least 4 slots even on a 2-core machine."""
    return max(os.cpu_count() or 1, 4)


def local_slots(address: str) -> float | None:
    """CPU slots of the local cluster a run with ``address`` would use: a new one's, or those of
    the one this process started already (a second run in a notebook or a test session); None
    when it would join a cluster that may be larger or autoscale."""
    if address or job_address():
        return None
    ray = sys.modules.get("ray")  # imported only if someone connected already
    if ray is None or not ray.is_initialized():
        return float(local_cpus())
    if not _STARTED_HERE:
        return None
    return float(ray.cluster_resources().get("CPU", 0))


def connect(
    address: str = "",
    dashboard_host: str = "127.0.0.1",
    num_cpus: int | None = None,
    num_gpus: int | None = None,
    temp_dir: str = "",
) -> ClusterInfo:
    """Join ``address`` (or the job's cluster) or start a local cluster; idempotent within a
    process. ``num_gpus`` declares GPUs to a local cluster (how GPU layouts are tested on CPU).

    ``temp_dir``: a directory of the run's own, removed by the run at exit. A local cluster keeps
    its session (logs, sockets) there, and actors get it as TMPDIR, so the temporary files of
    libraries inside actors (``datasets`` caches, ``multiprocessing``) go with it even when an
    actor is killed. A joined cluster keeps its own temp dirs: its nodes need not have this
    directory, and a Ray job's runtime environment is the job's."""
    import ray

    global _CONTEXT, _STARTED_HERE
    started = False
    address = address or job_address()
    if not ray.is_initialized():
        started = not address
        # Ray warns at start that token auth is on; we print the token's location ourselves.
        logging.getLogger("ray").setLevel(logging.ERROR)
        if address:
            if not reachable(address):
                raise EvoforgeError(
                    f"cannot reach the Ray cluster at ray_address='{address}'; start it with "
                    "`ray start --head` or leave ray_address empty for a local cluster"
                )
            try:
                loopback = _loopback_node() if _loopback_only(address) else contextlib.nullcontext()
                with _private_files(), loopback, _no_failure_signal_handler():
                    _CONTEXT = ray.init(
                        address=address,
                        namespace=NAMESPACE,
                        log_to_driver=False,
                        logging_level=logging.ERROR,  # the run prints the dashboard line itself
                    )
            except (ConnectionError, RuntimeError, ValueError) as e:
                hint = "check the address or leave it empty for a local cluster"
                if "RAY_AUTH_MODE" not in os.environ:
                    # Ray 2.60 clusters use token auth; a client sends the token only when told.
                    hint = (
                        "if the cluster uses token auth, export RAY_AUTH_MODE=token; else " + hint
                    )
                raise EvoforgeError(
                    f"cannot join the Ray cluster at ray_address='{address}' ({e}); {hint}"
                ) from None
        else:
            cpus = num_cpus or local_cpus()
            _CONTEXT = _start_local(cpus, num_gpus, dashboard_host, temp_dir)
        _STARTED_HERE = started
        _protect_token(_CONTEXT)
        from evoforge.monitoring import provision

        provision((getattr(_CONTEXT, "address_info", None) or {}).get("session_dir", ""))
    ctx = ray.get_runtime_context()
    dashboard = (getattr(_CONTEXT, "dashboard_url", None) or "") if _CONTEXT is not None else ""
    if dashboard and not dashboard.startswith("http"):
        dashboard = f"http://{dashboard}"
    info = getattr(_CONTEXT, "address_info", {}) or {}
    return ClusterInfo(
        address=ctx.gcs_address or address,
        dashboard_url=dashboard,
        started_here=started,
        gpus=float(ray.cluster_resources().get("GPU", 0)),
        session_dir=info.get("session_dir", ""),
    )


@contextmanager
def _private_files():
    """Files Ray creates meanwhile (its auth token, a local cluster's session) are the owner's
    only."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


@contextmanager
def _loopback_node():
    """A local cluster on 127.0.0.1 only: Ray binds its metrics export port (and GCS, raylet,
    workers) to the node's IP, which it takes from the network unless clusters are "disabled"
    as on macOS; so the node's IP is the loopback address while the cluster starts."""
    from ray._private import ray_constants

    old = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = old


def _loopback_only(address: str) -> bool:
    """Whether ``address`` is a cluster on this machine's loopback interface only (a local
    cluster of another run, or of a test session). Ray replaces a 127.0.0.1 address with the
    node's network IP before connecting, where such a cluster does not listen: the driver must
    then take the loopback address as its node IP too, as the cluster did."""
    import ipaddress

    from ray._private.services import get_node_ip_address

    target = urlparse(address if "://" in address else f"tcp://{address}")
    host = target.hostname or ""
    try:
        local = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        local = False
    if not local or not target.port:
        return False
    return not reachable(f"{get_node_ip_address()}:{target.port}", timeout=1.0)


@contextmanager
def _tmpdir(path: str):
    """TMPDIR for the processes started meanwhile (Ray's daemons: the dashboard's forkserver,
    for one, writes its sockets there)."""
    old = os.environ.get("TMPDIR")
    if path:
        os.environ["TMPDIR"] = path
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = old


def _start_local(cpus: int, gpus: int | None, dashboard_host: str, temp_dir: str):
    """ray.init of a new local cluster, never one that `ray start` left running. The dashboard is
    started but not required: one that does not come up in time (Ray waits
    RAY_DASHBOARD_STARTUP_TIMEOUT_S) costs its URL, not the run."""
    import ray

    ray_log = logging.getLogger("ray")
    level = ray_log.level
    ray_log.setLevel(logging.CRITICAL)  # a dashboard that failed to start: we say so in one line
    kwargs: dict[str, Any] = {}
    if temp_dir and len(temp_dir) <= MAX_RAY_TEMP_DIR:
        kwargs["_temp_dir"] = temp_dir
    try:
        with _private_files(), _loopback_node(), _tmpdir(temp_dir), _no_failure_signal_handler():
            return ray.init(
                address="local",
                namespace=NAMESPACE,
                num_cpus=cpus,
                num_gpus=gpus,
                include_dashboard=None,
                dashboard_host=dashboard_host,
                log_to_driver=False,
                logging_level=logging.ERROR,
                runtime_env={"env_vars": {"TMPDIR": temp_dir}} if temp_dir else None,
                **kwargs,
            )
    except Exception as e:
        if "timed out during startup" not in str(e):
            raise
        with contextlib.suppress(Exception):
            ray.shutdown()  # stop what did start (the GCS)
        raise EvoforgeError(
            "the local Ray cluster did not start: its raylet did not register within Ray's 30 s "
            "(is the machine overloaded?); retry when it is less busy, or start one with `ray "
            "start --head` and pass ray_address="
        ) from None
    finally:
        ray_log.setLevel(level)


@contextmanager
def _no_failure_signal_handler():
    """ray.init without Ray's C++ failure signal handler in this driver (workers keep theirs).

    The driver owns SIGTERM (driver/termination.py). Ray installs its crash handler for SIGSEGV,
    ..., SIGTERM when the driver connects and, at ray.shutdown, sets all of them to SIG_DFL at
    the C level, under Python's feet: a SIGTERM during the shutdown (about a second on a local
    cluster) then killed the driver mid-cleanup, without its last line or exit code 143."""
    from ray._private import ray_constants

    before = ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER
    ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = True
    try:
        yield
    finally:
        ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = before


def _protect_token(context) -> None:
    """Ray's auth token files readable by their owner only (Ray writes ~/.ray/auth_token 0644)."""
    session = (getattr(context, "address_info", None) or {}).get("session_dir", "")
    for path in (os.path.join(session, "auth_token"), os.path.expanduser("~/.ray/auth_token")):
        try:
            if os.path.isfile(path) and os.stat(path).st_uid == os.getuid():
                os.chmod(path, 0o600)
        except OSError as e:
            log.warning("cannot make %s private (%s)", path, e)


def claim_name(name: str, timeout: float = 30.0) -> None:
    """Free an actor name that a killed driver of the same run left behind.

    On a long-lived cluster a SIGKILLed driver's actors die a moment after it, and a resume
    started at once would find their names taken. The run directory's lock guarantees that no
    live driver owns this run, so an actor under the run's name is stale: kill it and wait.
    """
    import time

    import ray

    deadline = time.time() + timeout
    while True:
        try:
            stale = ray.get_actor(name, namespace=NAMESPACE)
        except ValueError:
            return  # the name is free
        if time.time() > deadline:
            raise EvoforgeError(
                f"actor name {name} stays taken on the cluster; stop it with `ray kill` or "
                "the dashboard, then resume"
            )
        ray.kill(stale, no_restart=True)
        time.sleep(0.2)


PLACE_TIMEOUT_S = 120.0
"""Seconds an actor may wait for Ray to place it before the run stops with what is missing."""


def wait_placed(actor, name: str, asks: dict[str, float], timeout: float | None = None) -> None:
    """Wait until Ray has placed ``actor`` (a worker of the cluster took it; its constructor may
    still run). Still pending after ``timeout`` seconds: the actor is killed and the run stops
    with one line naming what it asked, what is free and how to free it, instead of waiting
    forever."""
    import time

    import ray

    timeout = PLACE_TIMEOUT_S if timeout is None else timeout
    deadline = time.monotonic() + timeout
    ready = actor.__ray_ready__.remote()
    while True:
        done, _ = ray.wait([ready], timeout=min(1.0, timeout))
        if done or _placed(actor):
            return
        if time.monotonic() >= deadline:
            ray.kill(actor, no_restart=True)
            free = ray.available_resources()
            total = ray.cluster_resources()
            asked = ", ".join(f"{k} {v:g}" for k, v in asks.items() if v)
            have = ", ".join(
                f"{k} {free.get(k, 0.0):g} of {total.get(k, 0.0):g}" for k, v in asks.items() if v
            )
            raise EvoforgeError(
                f"Ray could not place {name} within {timeout:.0f} s: it asks for {asked} and the "
                f"cluster has {have} free; free them (`ray list actors --filter state=ALIVE` "
                "shows who holds them; stop those jobs or actors) or add nodes, then "
                "`evoforge resume` the run"
            )


def _placed(actor) -> bool:
    """Whether Ray leased a worker to ``actor``: GCS records the worker's port and pid once it
    is placed, while its constructor runs (the state is PENDING_CREATION either way)."""
    from ray._private import state

    try:
        info = state.actors(actor_id=actor._actor_id.hex())
    except Exception:  # noqa: BLE001 - unknown: keep waiting for the ready call
        return False
    return info.get("State") == "ALIVE" or bool((info.get("Address") or {}).get("Port"))


def shutdown() -> None:
    """Disconnect (and stop a local cluster this process started)."""
    import ray

    global _CONTEXT, _STARTED_HERE
    if ray.is_initialized():
        main = threading.current_thread() is threading.main_thread()
        handler = signal.getsignal(signal.SIGTERM) if main else None
        ray.shutdown()
        if callable(handler):  # a driver Ray connected before us may have had its C handler reset
            signal.signal(signal.SIGTERM, handler)
    _CONTEXT, _STARTED_HERE = None, False


def remove_session(info: ClusterInfo) -> None:
    """Delete the session directory (logs, sockets) of a local cluster this process started and
    has shut down, and Ray's "latest session" link to it."""
    if info.started_here and info.session_dir:
        remove_session_dir(info.session_dir)


def remove_session_dir(session_dir: str) -> None:
    """Delete a stopped local cluster's session directory and Ray's links to it."""
    import shutil

    shutil.rmtree(session_dir, ignore_errors=True)
    parent = os.path.dirname(session_dir)
    for link in ("session_latest", "prom_metrics_service_discovery.json"):
        path = os.path.join(parent, link)
        if os.path.islink(path) and os.path.realpath(path).startswith(session_dir):
            with contextlib.suppress(OSError):
                os.unlink(path)


def unwrap(error: Exception) -> Exception:
    """Our own errors raised inside an actor come back as themselves, not as RayTaskError; a
    failed write (the trainer saving weights to a full disk) comes back as a StorageError."""
    cause = getattr(error, "cause", None)
    if isinstance(cause, EvoforgeError):
        return cause
    return (storage_error(cause) if isinstance(cause, BaseException) else None) or error


def get(ref):
    """``ray.get`` that raises our own errors from inside an actor as themselves."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as e:
        raise unwrap(e) from None
