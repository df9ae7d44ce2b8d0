"""The run report: RUN_DIR/report.md with a table behind every plot, and RUN_DIR/report/*.png."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from evoforge.driver.report_explore import explore_section, multiturn_section
from evoforge.errors import EvoforgeError
from evoforge.round.stages.pairs import SOURCES
from evoforge.round.state import RENAMED_NODES
from evoforge.storage.manifest import check_run
from evoforge.storage.records import Evaluation
from evoforge.storage.rundir import RunDir, atomic_write_text
from evoforge.storage.store import evaluations, run_store, run_stores


def _evals(rd: RunDir) -> list[Evaluation]:
    return [ev for _, ev in evaluations(rd)]


def _metrics(rd: RunDir) -> list[dict[str, Any]]:
    return [s.metrics.read() for s in run_stores(rd) if s.metrics.exists()]


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


def _delta(c: dict[str, Any] | None) -> tuple[str, str]:
    if not c:
        return "", ""
    lo, hi = c["ci95"]
    return f"{c['delta']:+.3f} [{lo:+.3f}, {hi:+.3f}]", f"{c['p']:.3g}"


def _pass_rows(ev: Evaluation, env: str, h: dict[str, Any]) -> list[str]:
    """One row for the env overall, then one per task group (e.g. seen/unseen phrasings)."""
    cmp = ev.compare or {}
    base, last = cmp.get("baseline", {}).get(env), cmp.get("last_kept", {}).get(env)
    kept = "" if ev.round < 0 else str(ev.kept)
    rows = [
        (
            "all",
            h,
            _delta(base),
            _delta(last),
            [f"[{h['ci95'][0]:.3f}, {h['ci95'][1]:.3f}]", kept, ev.reason or ""],
        )
    ]
    for g, gh in (h.get("by_group") or {}).items():
        gb = (base or {}).get("by_group", {}).get(g)
        gl = (last or {}).get("by_group", {}).get(g)
        rows.append((g, gh, _delta(gb), _delta(gl), ["", "", ""]))
    out = []
    for group, x, (bd, bp), (ld, lp), (ci, k, why) in rows:
        out.append(
            f"| {_label(ev.round)} | {env} | {group} | {x['n']} | {x['strict']:.3f} | "
            f"{x['loose']:.3f} | {ci} | {bd} | {bp} | {ld} | {lp} | {k} | {why} |"
        )
    return out


def _pass_rate_section(evals: list[Evaluation], out_dir: Path) -> list[str]:
    """Held-out pass rate per round and environment, with its plot."""
    lines: list[str] = []
    lines += [
        "## Heldout pass rate (greedy)",
        "",
        "Each round is compared task by task with the baseline and with the last kept round: the "
        "paired difference in strict pass rate, its 95% interval, and McNemar's exact p.",
        "",
        "| round | env | group | n | strict | loose | 95% CI (strict) | vs baseline | p | "
        "vs last kept | p | kept | why |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    series: dict[str, list[tuple[int, float, float, list[float]]]] = defaultdict(list)
    for ev in evals:
        for env, h in ev.heldout.items():
            series[env].append((ev.round, h["strict"], h["loose"], h["ci95"]))
            lines += _pass_rows(ev, env, h)
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


def _type_section(evals: list[Evaluation], out_dir: Path) -> list[str]:
    """Pass rate per task type (main environment), by round."""
    lines: list[str] = []
    main_env = next(iter(evals[0].heldout)) if evals else None
    if main_env:
        types = sorted({t for ev in evals for t in ev.heldout[main_env]["by_type"]})
        lines += [
            f"## Pass rate per type ({main_env}, strict)",
            "",
            "| type | " + " | ".join(_label(ev.round) for ev in evals) + " |",
            "|---|" + "---|" * len(evals),
        ]
        for t in types:
            cells = [ev.heldout[main_env]["by_type"].get(t) for ev in evals]
            lines.append(
                f"| {t} | "
                + " | ".join(f"{c['strict']:.2f} (n={c['n']})" if c else "" for c in cells)
                + " |"
            )

        def draw_types(ax):
            width = 0.8 / max(1, len(evals))
            for i, ev in enumerate(evals):
                vals = [ev.heldout[main_env]["by_type"].get(t, {}).get("strict", 0) for t in types]
                ax.bar(
                    [j + i * width for j in range(len(types))],
                    vals,
                    width=width,
                    label=_label(ev.round),
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
    """What each round made (samples, pairs by source, search, the judge) and their plots."""
    rounds = [m["round"] for m in metrics]
    lines: list[str] = []
    sources = SOURCES
    cols = {
        "tasks": lambda m: m.get("tasks"),
        "sample pass": lambda m: m.get("sample_pass_rate"),
        "mixed": lambda m: m.get("tasks_mixed"),
        "no pass": lambda m: m.get("tasks_no_pass"),
        "trees": lambda m: m.get("trees"),
        "guided solved": lambda m: (m.get("explore") or {}).get("solved"),
        "accepted": lambda m: m.get("accepted"),
        **{f"pairs {s}": (lambda m, s=s: m.get("pairs_by_source", {}).get(s)) for s in sources},
        "rft rows": lambda m: sum((m.get("rft_examples") or {}).values()),
        "judge kappa": lambda m: (m.get("judge") or {}).get("kappa"),
        "judge weight": lambda m: (m.get("judge") or {}).get("weight"),
    }
    lines += [
        "## Rounds",
        "",
        "| round | " + " | ".join(cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for m in metrics:
        cells = ["" if (v := f(m)) is None else str(v) for f in cols.values()]
        lines.append(f"| {m['round']} | " + " | ".join(cells) + " |")

    def draw_counts(ax):
        bottom = [0] * len(rounds)
        for s in sources:
            vals = [m.get("pairs_by_source", {}).get(s, 0) for m in metrics]
            ax.bar(rounds, vals, bottom=bottom, label=f"pairs {s}", width=0.6)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        ax.plot(
            rounds, [m.get("accepted") or 0 for m in metrics], "ko-", label="accepted refinements"
        )
        ax.set_xticks(rounds)
        ax.set_xlabel("round")
        ax.set_title("Pairs by source")
        ax.legend(fontsize=8)

    lines += ["", f"![pairs]({_plot(out_dir / 'pairs.png', draw_counts)})", ""]

    def draw_judge(ax):
        kappa = [(m.get("judge") or {}).get("kappa") for m in metrics]
        ax.plot(rounds, [k if k is not None else float("nan") for k in kappa], "o-", label="kappa")
        ax.plot(
            rounds,
            [(m.get("judge") or {}).get("weight") or 0 for m in metrics],
            "s--",
            label="weight",
        )
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_ylim(-1, 1)
        ax.set_xticks(rounds)
        ax.set_xlabel("round")
        ax.set_title("Judge against the verifier: Cohen's kappa and its weight (0 = benched)")
        ax.legend(fontsize=8)

    lines += [f"![judge]({_plot(out_dir / 'judge.png', draw_judge)})", ""]
    return lines


def _tree_section(rd: RunDir, metrics: list[dict[str, Any]], out_dir: Path) -> list[str]:
    """Tree width per depth, from each round's tree.jsonl."""
    lines: list[str] = []
    widths: dict[int, dict[int, int]] = {}
    for m in metrics:
        counts: dict[int, int] = defaultdict(int)
        trees = run_store(rd, m["round"]).tree
        for tree in trees.read() if trees.exists() else []:
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


def _node(key: str) -> str:
    """The node of a seconds key (``name`` or ``name@level``), by its current name."""
    name = key.split("@")[0]
    return RENAMED_NODES.get(name, name)


def _seconds_section(metrics: list[dict[str, Any]], out_dir: Path) -> list[str]:
    """Seconds per node, stacked per round."""
    rounds = [m["round"] for m in metrics]
    lines: list[str] = []
    node_names = []
    for m in metrics:
        for k in m.get("seconds", {}):
            base = _node(k)
            if base not in node_names:
                node_names.append(base)
    secs = {
        m["round"]: {
            n: sum(v for k, v in m.get("seconds", {}).items() if _node(k) == n) for n in node_names
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
    check_run(rd.path)  # every file the run recorded, before any is read or the report written
    out_dir = rd.path / "report"
    out_dir.mkdir(exist_ok=True)
    lines = [f"# evoforge run {rd.path.name}", ""]
    try:
        evals, metrics = _evals(rd), _metrics(rd)
        lines += _pass_rate_section(evals, out_dir)
        lines += _type_section(evals, out_dir)
        if metrics:
            lines += _rounds_section(metrics, out_dir)
            lines += explore_section(metrics) + multiturn_section(metrics)
            lines += _tree_section(rd, metrics, out_dir)
            lines += _seconds_section(metrics, out_dir)
    except (KeyError, TypeError, ValueError) as e:  # a file edited by hand, or of another version
        raise EvoforgeError(
            f"{rd.path}: an eval.json, metrics.json or tree.jsonl lacks what the report reads "
            f"({type(e).__name__}: {e}); restore the round files from a copy"
        ) from e
    out = rd.path / "report.md"
    atomic_write_text(out, "\n".join(lines) + "\n")
    return str(out)
