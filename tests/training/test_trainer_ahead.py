"""The trainer actor started ahead of a round's training: it imports TRL before it has data,
``train`` uses that actor, ``stop`` releases it; Ray Train workers are never started ahead."""

from __future__ import annotations

import gc
import sys

from evoforge.training.actor import TrainerActor
from tests.helpers.runs import evoforge_actors, wait_no_evoforge_actors


def _imported_and_frozen(trainer) -> tuple[bool, int]:
    return "trl" in sys.modules, gc.get_freeze_count()


def test_a_trainer_started_ahead_imports_and_train_gets_that_actor(ray_cluster, tmp_path):
    import ray

    run = f"ahead-{tmp_path.name}"
    trainer = TrainerActor(run, threads=1)
    trainer.prepare()
    started = trainer._actor
    assert started is not None
    trainer.prepare()  # once started, a second prepare starts nothing
    assert trainer._actor is started
    imported, frozen = ray.get(started.__ray_call__.remote(_imported_and_frozen), timeout=120)
    assert imported and frozen > 10_000  # the imports' objects are out of the collector's walk
    assert trainer._start() is started  # what train calls: placed, the same actor
    assert evoforge_actors(f"evoforge/{run}/") == [f"evoforge/{run}/trainer/0"]
    trainer.stop()
    assert trainer._actor is None
    assert wait_no_evoforge_actors(prefix=f"evoforge/{run}/") == []


def test_ray_train_workers_are_not_started_ahead():
    trainer = TrainerActor("ahead-workers", threads=1, workers=2)
    trainer.prepare()  # no Ray call: this test has no cluster
    assert trainer._actor is None
