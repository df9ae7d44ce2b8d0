"""The run report: RUN_DIR/report.md with a table behind every plot, and RUN_DIR/report/*.png."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from evoforge.loops.rundir import RunDir, atomic_write_text, read_json, read_jsonl


def _evals(rd: RunDir) -> list[dict[str, Any]]:
    return [read_json(p) for p in rd.eval_paths()]


def _metrics(rd: RunDir) -> list[dict[str, Any]]:
    return [read_json(p) for p in sorted((rd.path / "rounds").glob("*/metrics.json"))]


def _label(r: int) -> str:
    return "base" if r < 0 else str(r)


def matplotlib_colors(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return [cmap(i % 20) for i in range(n)]


def _plot(path: Path, draw) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    draw(ax)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return f"report/{path.name}"


def _pass_rate_section(evals: list[dict[str, Any]], out_dir: Path) -> list[str]:
    """Held-out pass rate per round and environment, with its plot."""
    lines: list[str] = []
    lines += [
        "## Heldout pass rate (greedy)",
        "",
        "| round | env | n | strict | loose | 95% CI (strict) | kept | why |",
        "|---|---|---|---|---|---|---|---|",
    ]
    series: dict[str, list[tuple[int, float, float, list[float]]]] = defaultdict(list)
    for ev in evals:
        for env, h in ev["heldout"].items():
            series[env].append((ev["round"], h["strict"], h["loose"], h["ci95"]))
            lines.append(
                f"| {_label(ev['round'])} | {env} | {h['n']} | {h['strict']:.3f} | {h['loose']:.3f} | "
                f"[{h['ci95'][0]:.3f}, {h['ci95'][1]:.3f}] | {ev.get('kept')} | {ev.get('reason', '')} |"
            )
    if series:

        def draw_pass(ax):
            for env, pts in series.items():
                xs = [p[0] for p in pts]
                ax.errorbar(
                    xs,
                    [p[1] for p in pts],
                    yerr=[[p[1] - p[3][0] for p in pts], [p[3][1] - p[1] for p in pts]],
                    marker="o",
                    capsize=4,
                    label=f"{env} strict",
                )
                ax.plot(xs, [p[2] for p in pts], linestyle="--", marker="x", label=f"{env} loose")
            ax.set_xticks(sorted({p[0] for pts in series.values() for p in pts}))
            ax.set_xticklabels(
                [_label(x) for x in sorted({p[0] for pts in series.values() for p in pts})]
            )
            ax.set_xlabel("round (base = starting model)")
            ax.set_ylabel("pass rate")
            ax.set_title("Heldout pass rate, 95% CI")
            ax.legend(fontsize=8)

        lines += ["", f"![pass rate]({_plot(out_dir / 'pass_rate.png', draw_pass)})", ""]

    return lines


def _type_section(evals: list[dict[str, Any]], out_dir: Path) -> list[str]:
    """Pass rate per task type (main environment), by round."""
    lines: list[str] = []
    main_env = next(iter(evals[0]["heldout"])) if evals else None
    if main_env:
        types = sorted({t for ev in evals for t in ev["heldout"][main_env]["by_type"]})
        lines += [
            f"## Pass rate per type ({main_env}, strict)",
            "",
            "| type | " + " | ".join(_label(ev["round"]) for ev in evals) + " |",
            "|---|" + "---|" * len(evals),
        ]
        for t in types:
            cells = [ev["heldout"][main_env]["by_type"].get(t) for ev in evals]
            lines.append(
                f"| {t} | "
                + " | ".join(f"{c['strict']:.2f} (n={c['n']})" if c else "" for c in cells)
                + " |"
            )

        def draw_types(ax):
            width = 0.8 / max(1, len(evals))
            for i, ev in enumerate(evals):
                vals = [
                    ev["heldout"][main_env]["by_type"].get(t, {}).get("strict", 0) for t in types
                ]
                ax.bar(
                    [j + i * width for j in range(len(types))],
                    vals,
                    width=width,
                    label=_label(ev["round"]),
                )
            ax.set_xticks([j + 0.4 - width / 2 for j in range(len(types))])
            ax.set_xticklabels(types, rotation=70, fontsize=7)
            ax.set_ylabel("strict pass rate")
            ax.set_title("Per type, by round")
            ax.legend(fontsize=8, title="round")

        if types:
            lines += [
                "",
                f"![per type]({_plot(out_dir / 'pass_rate_by_type.png', draw_types)})",
                "",
            ]

    return lines


def _rounds_section(metrics: list[dict[str, Any]], out_dir: Path) -> list[str]:
    """Counts of each round (tasks, trees, pairs, agreement) and their plots."""
    rounds = [m["round"] for m in metrics]
    lines: list[str] = []
    keys = (
        "tasks",
        "failed",
        "trees",
        "nodes_expanded",
        "accepted",
        "pairs",
        "judge_verifier_agreement",
        "max_tree_depth",
        "mean_edit_distance",
    )
    lines += [
        "## Rounds",
        "",
        "| round | " + " | ".join(keys) + " |",
        "|---|" + "---|" * len(keys),
    ]
    for m in metrics:
        lines.append(f"| {m['round']} | " + " | ".join(str(m.get(k, "")) for k in keys) + " |")

    def draw_counts(ax):
        for k in ("failed", "accepted", "pairs"):
            ax.plot(rounds, [m.get(k) or 0 for m in metrics], marker="o", label=k)
        ax.set_xticks(rounds)
        ax.set_xlabel("round")
        ax.set_title("Failed answers, accepted refinements, pairs")
        ax.legend(fontsize=8)

    lines += ["", f"![counts]({_plot(out_dir / 'pairs.png', draw_counts)})", ""]

    def draw_agreement(ax):
        ax.plot(rounds, [m.get("judge_verifier_agreement") or 0 for m in metrics], marker="o")
        ax.set_ylim(0, 1)
        ax.set_xticks(rounds)
        ax.set_xlabel("round")
        ax.set_title("Judge-verifier agreement")

    lines += [f"![agreement]({_plot(out_dir / 'agreement.png', draw_agreement)})", ""]

    return lines


def _tree_section(rd: RunDir, metrics: list[dict[str, Any]], out_dir: Path) -> list[str]:
    """Tree width per depth, from each round's tree.jsonl."""
    lines: list[str] = []
    widths: dict[int, dict[int, int]] = {}
    for m in metrics:
        counts: dict[int, int] = defaultdict(int)
        for tree in read_jsonl(rd.round(m["round"]) / "tree.jsonl"):
            for n in tree["nodes"]:
                counts[n["depth"]] += 1
        widths[m["round"]] = dict(counts)
    depths = sorted({d for c in widths.values() for d in c})
    lines += [
        "## Tree shape (nodes per depth)",
        "",
        "| round | " + " | ".join(f"depth {d}" for d in depths) + " |",
        "|---|" + "---|" * len(depths),
    ]
    for r, c in widths.items():
        lines.append(f"| {r} | " + " | ".join(str(c.get(d, 0)) for d in depths) + " |")

    def draw_trees(ax):
        for r, c in widths.items():
            ax.plot(depths, [c.get(d, 0) for d in depths], marker="o", label=f"round {r}")
        ax.set_xlabel("depth (0 = original answer)")
        ax.set_ylabel("nodes")
        ax.set_title("Tree width per depth")
        ax.legend(fontsize=8)

    if depths:
        lines += ["", f"![trees]({_plot(out_dir / 'trees.png', draw_trees)})", ""]

    return lines


def _seconds_section(metrics: list[dict[str, Any]], out_dir: Path) -> list[str]:
    """Seconds per node, stacked per round."""
    rounds = [m["round"] for m in metrics]
    lines: list[str] = []
    node_names = []
    for m in metrics:
        for k in m.get("seconds", {}):
            base = k.split("@")[0]
            if base not in node_names:
                node_names.append(base)
    secs = {
        m["round"]: {
            n: sum(v for k, v in m.get("seconds", {}).items() if k.split("@")[0] == n)
            for n in node_names
        }
        for m in metrics
    }
    lines += [
        "## Seconds per node",
        "",
        "| round | " + " | ".join(node_names) + " | total |",
        "|---|" + "---|" * (len(node_names) + 1),
    ]
    for r, s in secs.items():
        lines.append(
            f"| {r} | "
            + " | ".join(f"{s[n]:.1f}" for n in node_names)
            + f" | {sum(s.values()):.1f} |"
        )

    def draw_secs(ax):
        bottom = [0.0] * len(rounds)
        colors = matplotlib_colors(len(node_names))
        for n, color in zip(node_names, colors, strict=True):
            vals = [secs[r][n] for r in rounds]
            ax.bar(rounds, vals, bottom=bottom, label=n, color=color, width=0.6)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        ax.set_xticks(rounds)
        ax.set_xlabel("round")
        ax.set_ylabel("seconds")
        ax.set_title("Seconds per node")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))

    lines += ["", f"![seconds]({_plot(out_dir / 'seconds.png', draw_secs)})", ""]

    return lines


def write_report(run_dir: str) -> str:
    """Write RUN_DIR/report.md and its plots; return the report's path."""
    rd = RunDir(run_dir)
    rd.meta()
    out_dir = rd.path / "report"
    out_dir.mkdir(exist_ok=True)
    evals, metrics = _evals(rd), _metrics(rd)
    lines = [f"# evoforge run {rd.path.name}", ""]
    lines += _pass_rate_section(evals, out_dir)
    lines += _type_section(evals, out_dir)
    if metrics:
        lines += _rounds_section(metrics, out_dir)
        lines += _tree_section(rd, metrics, out_dir)
        lines += _seconds_section(metrics, out_dir)
    out = rd.path / "report.md"
    atomic_write_text(out, "\n".join(lines) + "\n")
    return str(out)
