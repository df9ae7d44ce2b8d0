"""A local Ray cluster whose CPU slots are all held by an actor: ``python -m
tests.helpers.cpu_holder CPUS`` starts it, tries to start a run's trainer on it (prints
``trainer: <error>`` after a bounded wait, or ``trainer: placed``), prints ``address: GCS`` for
other processes to join, and keeps the cluster until its stdin closes."""

from __future__ import annotations

import sys
import time


def main(cpus: int) -> None:
    import ray

    from evoforge.agents.serving import cluster
    from evoforge.errors import EvoforgeError
    from evoforge.training.actor import TrainerActor

    cluster.connect(num_cpus=cpus, num_gpus=0)

    @ray.remote(num_cpus=cpus)
    class Holder:
        def ping(self) -> bool:
            return True

    holder = Holder.remote()
    ray.get(holder.ping.remote())
    cluster.PLACE_TIMEOUT_S = 5.0
    start = time.monotonic()
    try:
        TrainerActor("held", 1)._start()
        print("trainer: placed", flush=True)
    except EvoforgeError as e:
        print(f"trainer: {e} [{time.monotonic() - start:.0f}s]", flush=True)
    print(f"address: {ray.get_runtime_context().gcs_address}", flush=True)
    sys.stdin.read()
    cluster.shutdown()


if __name__ == "__main__":
    main(int(sys.argv[1]))
