"""Ray: start a local cluster (dashboard on 127.0.0.1) or join ``ray_address``.

Inside a Ray job (``ray job submit``), Ray sets RAY_ADDRESS: a run with an empty ``ray_address``
joins the job's cluster, so its actors and tasks belong to the job. Otherwise an empty address
starts a new local cluster, never one that ``ray start`` left running on the machine.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlparse

from evoforge.errors import EvoforgeError, storage_error

NAMESPACE = "evoforge"
log = logging.getLogger("evoforge")
_CONTEXT = None  # what ray.init returned in this process


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


def connect(
    address: str = "",
    dashboard_host: str = "127.0.0.1",
    num_cpus: int | None = None,
    num_gpus: int | None = None,
) -> ClusterInfo:
    """Join ``address`` (or the job's cluster) or start a local cluster; idempotent within a
    process. ``num_gpus`` declares GPUs to a local cluster (how GPU layouts are tested on CPU)."""
    import ray

    global _CONTEXT
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
                _CONTEXT = ray.init(address=address, namespace=NAMESPACE, log_to_driver=False)
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
            # Logical CPU slots: serving actors and the trainer take turns on the cores, so the
            # local cluster offers at least 4 slots even on a 2-core machine.
            cpus = num_cpus or max(os.cpu_count() or 1, 4)
            _CONTEXT = ray.init(
                address="local",  # a new cluster: never join one `ray start` left running
                namespace=NAMESPACE,
                num_cpus=cpus,
                num_gpus=num_gpus,
                include_dashboard=True,
                dashboard_host=dashboard_host,
                log_to_driver=False,
                logging_level=logging.ERROR,
            )
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


def shutdown() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


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
