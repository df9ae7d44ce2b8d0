"""The report's tables of what reached past sampling: guided exploration per round, the new
training rows by task type, and (multi-turn environments) the model's own tool use against its
tool use under guidance."""

from __future__ import annotations

from typing import Any


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, dict):
        return ", ".join(f"{k} {n}" for k, n in v.items()) or "-"
    return str(v)


def explore_section(metrics: list[dict[str, Any]]) -> list[str]:
    """Guided exploration and the novelty of each round's training rows."""
    if not any("explore" in m for m in metrics):
        return []
    lines = [
        "## Guided exploration and new data",
        "",
        "Tasks no sample passed were sampled again with guidance; a passing guided answer is "
        "trained on against the plain prompt. Rows a kept round already trained on are dropped.",
        "",
        "| round | explored | guided samples | guided pass rate | solved | solved by kind "
        "| guided pairs | new rows by type | repeats dropped |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in metrics:
        e, rows = m.get("explore") or {}, m.get("training_rows") or {}
        cells = [
            e.get("tasks"),
            e.get("samples"),
            e.get("pass_rate"),
            e.get("solved"),
            e.get("solved_by_kind"),
            (m.get("pairs_by_source") or {}).get("guided"),
            rows.get("new_by_type"),
            sum((rows.get("repeated") or {}).values()) if rows else None,
        ]
        lines.append(f"| {m['round']} | " + " | ".join(_cell(c) for c in cells) + " |")
    return lines + [""]


def multiturn_section(metrics: list[dict[str, Any]]) -> list[str]:
    """Per round: turns and tool calls per sample, the model's own and under guidance apart;
    failed calls by kind; how trajectories ended."""
    if not any("trajectories" in m for m in metrics):
        return []
    lines = [
        "## Tool use",
        "",
        "| round | samples | turns / sample | own calls / sample | samples that called "
        "| guided calls / sample | failed calls by kind | ended |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in metrics:
        own = m.get("trajectories") or {}
        guided = (m.get("explore") or {}).get("trajectories") or {}
        cells = [
            own.get("samples"),
            own.get("turns_per_sample"),
            own.get("tool_calls_per_sample"),
            own.get("calling_samples"),
            guided.get("tool_calls_per_sample"),
            own.get("errors"),
            own.get("ended"),
        ]
        lines.append(f"| {m['round']} | " + " | ".join(_cell(c) for c in cells) + " |")
    return lines + [""]
