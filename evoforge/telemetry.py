"""Custom metrics on the Ray dashboard (``ray.util.metrics``), exported by Ray's metrics agent.

- serving, recorded inside each server actor and tagged run/role/round/node: requests, generated
  tokens, batch sizes;
- the round, recorded by the driver after every node and tagged run/round/node: seconds, and each
  numeric count the node reports (tree nodes expanded, judge votes and abstentions, accepted
  refinements, pairs, verifier pass rate, judge-verifier agreement, train loss, ...).

Ray exports them with a ``ray_`` prefix, e.g. ``ray_evoforge_node_seconds``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

_METRICS: dict[str, Any] = {}
BATCH_BOUNDARIES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
log = logging.getLogger("evoforge")
_warned: set[str] = set()


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
        _safely(name, lambda n=name, d=doc, v=value: _metric("gauge", n, d, keys).set(v, tags))
    for name, value in counts.items():
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int | float) and math.isfinite(value):
            _safely(
                "evoforge_node_count",
                lambda n=name, v=value: _metric(
                    "gauge",
                    "evoforge_node_count",
                    "Counts a node reported (tag name)",
                    (*keys, "name"),
                ).set(float(v), tags | {"name": tag(n)}),
            )
