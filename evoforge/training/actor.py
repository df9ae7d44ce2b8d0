"""The trainer actor of a run: started when a round trains, released right after.

Named like the servers (``evoforge/<run>/trainer/0``) so the dashboard shows it; it asks for a
GPU when the cluster has one. Released after each round's training: its optimizer state and
activations (GBs) go back to the machine while the servers generate.
"""

from __future__ import annotations

from typing import Any

from evoforge.agents.serving import cluster
from evoforge.training.trainer import Trainer


class TrainerActor:
    """A handle on the run's trainer actor; ``train`` starts it on first use."""

    def __init__(self, run_id: str, threads: int) -> None:
        self.run_id, self.threads = run_id, threads
        self._actor = None

    def train(self, label: str, *args: Any) -> dict[str, Any]:
        """``Trainer.train(*args)`` inside the actor, as a Ray task named ``label``."""
        return cluster.get(self._start().train.options(name=label).remote(*args))

    def _start(self):
        import ray

        if self._actor is None:
            gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
            name = f"evoforge/{self.run_id}/trainer/0"
            cluster.claim_name(name)
            self._actor = (
                ray.remote(Trainer)
                .options(name=name, num_cpus=1, num_gpus=gpus)
                .remote(self.threads)
            )
        return self._actor

    def stop(self) -> None:
        """Release the actor (and the memory it holds)."""
        import ray

        if self._actor is not None:
            ray.kill(self._actor)
            self._actor = None
