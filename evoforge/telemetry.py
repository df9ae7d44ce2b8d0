"""Custom metrics on the Ray dashboard (``ray.util.metrics``), exported by Ray's metrics agent.

- serving, recorded inside each server actor and tagged run/role/round/node: requests, generated
  tokens, batch sizes;
- the round, recorded by the driver after every node and tagged run/round/node: seconds, and each
  numeric count the node reports (tree nodes expanded, judge votes and abstentions, accepted
  refinements, pairs, verifier pass rate, judge-verifier agreement, train loss, ...).

Ray exports them with a ``ray_`` prefix, e.g. ``ray_evoforge_node_seconds``.
"""

from __future__ import annotations

from typing import Any

_METRICS: dict[str, Any] = {}
BATCH_BOUNDARIES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]


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
        "run": run,
        "role": role,
        "round": round_.removeprefix("round") or "-",
        "node": node or "-",
    }
    keys = ("run", "role", "round", "node")
    _metric("counter", "evoforge_requests", "Generation requests served", keys).inc(requests, tags)
    _metric("counter", "evoforge_tokens_generated", "Completion tokens generated", keys).inc(
        tokens, tags
    )
    _metric("histogram", "evoforge_batch_size", "Sequences per engine call", keys).observe(
        sequences, tags
    )


def record_node(
    run: str, round_: int, node: str, seconds: float, engine_seconds: float, counts: dict[str, Any]
) -> None:
    """A finished graph node: its seconds, those inside the engines, every numeric count."""
    tags = {"run": run, "round": str(round_), "node": node}
    _metric(
        "gauge", "evoforge_node_seconds", "Seconds the node took", ("run", "round", "node")
    ).set(seconds, tags)
    _metric(
        "gauge",
        "evoforge_node_engine_seconds",
        "Seconds of the node spent inside model-server engines",
        ("run", "round", "node"),
    ).set(engine_seconds, tags)
    gauge = _metric(
        "gauge",
        "evoforge_node_count",
        "Counts a node reported (tag name)",
        ("run", "round", "node", "name"),
    )
    for name, value in counts.items():
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int | float):
            gauge.set(float(value), tags | {"name": name})
