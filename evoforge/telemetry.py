"""Custom metrics on the Ray dashboard (``ray.util.metrics``), exported by Ray's metrics agent.

- serving, recorded inside each server actor and tagged run/role/round/node: requests, generated
  tokens, batch sizes;
- the round, recorded by the driver after every node and tagged run/round/node: seconds, and each
  numeric count the node reports (tree nodes expanded, judge votes and abstentions, accepted
  refinements, pairs, verifier pass rate, judge-verifier agreement, train loss, ...).

Ray exports them with a ``ray_`` prefix, e.g. ``ray_evoforge_node_seconds``.

Ray drops a gauge's series about 20 s after its last ``set()``; a run's node gauges are set once
per node, so a thread of the driver sets every one of them again every ``KEEPALIVE_S`` seconds
until the run ends (``end_run``) or the driver leaves Ray: a scrape at any moment of a run sees
every node that finished. evoforge/monitoring/ has a Grafana dashboard and a Prometheus config.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

_METRICS: dict[str, Any] = {}
BATCH_BOUNDARIES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
log = logging.getLogger("evoforge")
_warned: set[str] = set()
KEEPALIVE_S = 5.0
"""Seconds between two sets of a live gauge: well under Ray's export interval and its ~20 s
expiry of a gauge not set since."""
_live: dict[tuple[str, str, tuple[str, ...], tuple[tuple[str, str], ...]], float] = {}
"""Gauges of runs still going: (name, description, tag keys, tags) -> value."""
_live_lock = threading.Lock()
_keeper: threading.Thread | None = None


def tag(value: object) -> str:
    """A tag value Ray's exporter accepts: printable ASCII (a run directory named in any language
    is percent-encoded, e.g. "运行" -> "%E8%BF%90%E8%A1%8C")."""
    return quote(str(value), safe=" !#$&'()*+,-./:;<=>?@[]^_`{|}~")


def _safely(what: str, record: Callable[[], None]) -> None:
    """Record a metric; a failure is logged once per metric and never ends a run."""
    try:
        record()
    except Exception as e:  # noqa: BLE001 - observability must not stop the work it observes
        if what not in _warned:
            _warned.add(what)
            log.warning("metric %s not recorded (%s: %s)", what, type(e).__name__, e)


def _metric(kind: str, name: str, description: str, tags: tuple[str, ...]):
    if name not in _METRICS:
        from ray.util import metrics

        if kind == "counter":
            _METRICS[name] = metrics.Counter(name, description=description, tag_keys=tags)
        elif kind == "gauge":
            _METRICS[name] = metrics.Gauge(name, description=description, tag_keys=tags)
        else:
            _METRICS[name] = metrics.Histogram(
                name, description=description, boundaries=BATCH_BOUNDARIES, tag_keys=tags
            )
    return _METRICS[name]


def record_generation(
    label: str, run: str, role: str, requests: int, sequences: int, tokens: int
) -> None:
    """One engine call of a server actor; ``label`` is "round<N>/<node>" (empty outside a run's graph)."""
    round_, _, node = label.partition("/")
    tags = {
        "run": tag(run),
        "role": tag(role),
        "round": tag(round_.removeprefix("round") or "-"),
        "node": tag(node or "-"),
    }
    keys = ("run", "role", "round", "node")
    for name, doc, value in (
        ("evoforge_requests", "Generation requests served", requests),
        ("evoforge_tokens_generated", "Completion tokens generated", tokens),
    ):
        if value > 0:  # Ray's Counter refuses an increment of 0 (a batch of empty answers)
            _safely(
                name, lambda n=name, d=doc, v=value: _metric("counter", n, d, keys).inc(v, tags)
            )
    _safely(
        "evoforge_batch_size",
        lambda: _metric(
            "histogram", "evoforge_batch_size", "Sequences per engine call", keys
        ).observe(sequences, tags),
    )


def record_node(
    run: str, round_: int, node: str, seconds: float, engine_seconds: float, counts: dict[str, Any]
) -> None:
    """A finished graph node: its seconds, those inside the engines, every numeric count."""
    tags = {"run": tag(run), "round": tag(round_), "node": tag(node)}
    keys = ("run", "round", "node")
    values = {
        "evoforge_node_seconds": ("Seconds the node took", seconds),
        "evoforge_node_engine_seconds": (
            "Seconds of the node spent inside model-server engines",
            engine_seconds,
        ),
    }
    for name, (doc, value) in values.items():
        _gauge(name, doc, keys, tags, value)
    for name, value in counts.items():
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int | float) and math.isfinite(value):
            _gauge(
                "evoforge_node_count",
                "Counts a node reported (tag name)",
                (*keys, "name"),
                tags | {"name": tag(name)},
                float(value),
            )


def _gauge(name: str, doc: str, keys: tuple[str, ...], tags: dict[str, str], value: float) -> None:
    """Set a gauge now and keep it set until its run ends."""
    _safely(name, lambda: _metric("gauge", name, doc, keys).set(value, tags))
    with _live_lock:
        _live[(name, doc, keys, tuple(sorted(tags.items())))] = value
    _start_keeper()


def _start_keeper() -> None:
    global _keeper
    with _live_lock:
        if _keeper is not None:
            return
        _keeper = threading.Thread(target=_keep, name="evoforge-metrics", daemon=True)
        _keeper.start()


def _keep() -> None:
    """Set every live gauge again every KEEPALIVE_S; ends when none is left or Ray is gone."""
    import ray

    global _keeper
    while True:
        time.sleep(KEEPALIVE_S)
        with _live_lock:
            if not ray.is_initialized():
                _live.clear()
            live = list(_live.items())
            if not live:
                _keeper = None  # the next gauge set starts a new keeper
                return
        for (name, doc, keys, tags), value in live:
            _safely(name, lambda n=name, d=doc, k=keys, t=tags, v=value: _set(n, d, k, t, v))


def _set(name: str, doc: str, keys: tuple[str, ...], tags, value: float) -> None:
    _metric("gauge", name, doc, keys).set(value, dict(tags))


def live_series(run: str | None = None) -> int:
    """How many gauge series are kept set (of ``run``, or of every run)."""
    with _live_lock:
        return sum(1 for k in _live if run is None or ("run", tag(run)) in k[3])


def end_run(run: str) -> None:
    """A run ended: its gauges are no longer set again (Ray drops them ~20 s later, after a
    scrape has had time to see the last node's)."""
    with _live_lock:
        for key in [k for k in _live if ("run", tag(run)) in k[3]]:
            del _live[key]
