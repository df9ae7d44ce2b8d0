"""sync: the servers load the round's weights in place (no restart), checked by a greedy probe."""

from __future__ import annotations

import os
import time

from evoforge.agents.serving.types import GenRequest, Sampling
from evoforge.round.nodes import StageResult, stage
from evoforge.round.runtime import Runtime
from evoforge.round.state import RunState
from evoforge.storage.store import RoundStore

PROBE_TASKS = 8
PROBE_TOKENS = 32
"""Enough greedy tokens to tell two sets of weights apart, few enough to cost a second or two."""


def probe(rt: Runtime) -> list[str]:
    """Greedy answers to fixed held-out prompts: the fingerprint of the served weights."""
    tasks = rt.env.tasks("heldout", PROBE_TASKS, rt.config.seed)
    reqs = [GenRequest(t.messages, Sampling.greedy(PROBE_TOKENS), id=t.id) for t in tasks]
    return [r.texts[0] for r in rt.servers.actor.generate(reqs)]


@stage()
def sync(rt: Runtime, state: RunState, store: RoundStore) -> StageResult:
    r = state["round"]
    if store.training_skipped():
        return StageResult(counts={"skipped": True})
    if not store.probe_kept.exists():
        store.probe_kept.write(probe(rt))
    dest = rt.model_dir(r)
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.rename(store.trained_model, dest)  # same filesystem: atomic, no copy of the weights
    start = time.time()
    rt.servers.actor.load_weights(str(dest))
    if store.trained_refiner.exists() and rt.servers.refiner is not rt.servers.actor:
        rt.servers.refiner.load_weights(str(store.trained_refiner))
    secs = round(time.time() - start, 3)
    candidate = probe(rt)
    kept = store.probe_kept.read()
    changed = sum(a != b for a, b in zip(kept, candidate, strict=True))
    return StageResult(
        counts={"load_seconds": secs},
        metrics={"sync_load_seconds": secs, "probe_changed": changed},
        update={"serving": rt.serving_label(r)},
    )
