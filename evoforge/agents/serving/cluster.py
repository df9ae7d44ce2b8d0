"""Ray: start a local cluster (dashboard on 127.0.0.1) or join ``ray_address``."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlparse

from evoforge.errors import EvoforgeError

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


def connect(
    address: str = "", dashboard_host: str = "127.0.0.1", num_cpus: int | None = None
) -> ClusterInfo:
    """Join ``address`` or start a local cluster; idempotent within a process."""
    import ray

    global _CONTEXT
    started = False
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
                raise EvoforgeError(
                    f"cannot join the Ray cluster at ray_address='{address}' ({e}); "
                    "check the address or leave it empty for a local cluster"
                ) from None
        else:
            # Logical CPU slots: serving actors and the trainer take turns on the cores, so the
            # local cluster offers at least 4 slots even on a 2-core machine.
            cpus = num_cpus or max(os.cpu_count() or 1, 4)
            _CONTEXT = ray.init(
                namespace=NAMESPACE,
                num_cpus=cpus,
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


def shutdown() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()
