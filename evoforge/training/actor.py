"""The trainer of a run: started ahead of a round's training, released right after it.

One worker: a Ray actor named like the servers (``evoforge/<run>/trainer/0``) so the dashboard
shows it. Several (``train.workers``): Ray Train workers (distributed.py). Either asks Ray for
the GPU share the run's placement plan gives training. Released after each round's training:
its optimizer state and activations (GBs) go back to the machine while the servers generate.
A fresh one is started ahead (``prepare``: at the run's start, and after a training when another
round follows) and imports torch, transformers and TRL while the round generates: holding no
weights, it costs the machine about a GB, and a round's training no longer waits seconds for a
process to start and import.
"""

from __future__ import annotations

import os
from typing import Any

from evoforge.agents.serving import cluster
from evoforge.agents.serving.memory import killed_for_memory, memory_detail
from evoforge.errors import EvoforgeError
from evoforge.training.settings import TrainSettings
from evoforge.training.trainer import Trainer, work_dir
from evoforge.training.trl_adapters import PROGRESS_FILE, clear_step_progress


class TrainerOutOfMemory(EvoforgeError):
    """Ray's memory monitor killed the trainer (or a training worker)."""


def _died(error: Exception) -> bool:
    """The actor's process went away (killed, crashed, its node or cluster stopped)."""
    import ray

    return isinstance(error, ray.exceptions.RayActorError | ray.exceptions.NodeDiedError)


class TrainerActor:
    """A handle on the run's trainer; ``train`` starts it on first use."""

    def __init__(self, run_id: str, threads: int, gpus: float = 0.0, workers: int = 1) -> None:
        self.run_id, self.threads, self.gpus, self.workers = run_id, threads, gpus, workers
        """``gpus``: the GPU share of each training worker (the placement plan's); ``workers``:
        train.workers (several: Ray Train starts its own workers when a round trains)."""
        self._actor = None
        self._placed = False

    def prepare(self) -> None:
        """Start the actor now, without waiting, and have it import what training needs; the
        wait for its placement stays in ``train``, where a cluster without room for it is a
        one-line error as before."""
        if self.workers > 1 or self._actor is not None:
            return
        self._start(wait=False).warm.remote()

    def train(self, label: str, *args: Any) -> dict[str, Any]:
        """``Trainer.train(*args)`` as a Ray task named ``label`` (or on Ray Train workers)."""
        settings = args[4]
        # A killed run's step stays in the progress file until the new phase writes its own,
        # minutes later (the actor starts, loads weights, builds the trainer): forget it now.
        clear_step_progress(os.path.join(work_dir(args[2]), PROGRESS_FILE))
        try:
            if isinstance(settings, TrainSettings) and settings.workers > 1:
                from evoforge.training.distributed import train_with_workers

                return train_with_workers(self.run_id, label, args, settings, self.gpus)
            return cluster.get(self._start().train.options(name=label).remote(*args))
        except Exception as e:
            if _died(e) and not killed_for_memory(e):
                self._actor = None
                first = " ".join(str(e).split())[:200]
                raise EvoforgeError(
                    f"the trainer actor died mid-training ({type(e).__name__}: {first}); "
                    "`evoforge resume` the run: training goes on from its last checkpoint"
                ) from None
            if not killed_for_memory(e):
                raise
            self._actor = None  # Ray killed it; the next round starts a new one
            raise TrainerOutOfMemory(
                f"the trainer was killed for want of memory ({memory_detail(e)}); resume the run "
                "with a smaller train.micro_batch_size (examples a pass holds, now "
                f"{settings.micro_batch_size or 'auto'}), or start anew with a smaller "
                f"train.max_length (now {settings.max_length})"
            ) from None

    def _start(self, wait: bool = True):
        import ray

        name = f"evoforge/{self.run_id}/trainer/0"
        if self._actor is None:
            cluster.claim_name(name)
            debug = os.environ.get("EVOFORGE_DEBUG_DELAY")  # crash tests reach into the actor
            self._actor = (
                ray.remote(Trainer)
                .options(
                    name=name,
                    num_cpus=1,
                    num_gpus=self.gpus,
                    runtime_env={"env_vars": {"EVOFORGE_DEBUG_DELAY": debug}} if debug else None,
                )
                .remote(self.threads)
            )
            self._placed = False
        if wait and not self._placed:
            try:
                cluster.wait_placed(self._actor, name, {"CPU": 1, "GPU": self.gpus})
            except EvoforgeError:
                self._actor = None  # wait_placed killed it
                raise
            self._placed = True
        return self._actor

    def stop(self) -> None:
        """Release the actor (and the memory it holds)."""
        import ray

        if self._actor is not None:
            ray.kill(self._actor)
            self._actor = None
