"""The run report: report.md with the numbers of every round (plots: see issue 6)."""

from __future__ import annotations

from pathlib import Path

from evoforge.loops.rundir import RunDir, atomic_write_text, read_json


def write_report(run_dir: str) -> str:
    """Write RUN_DIR/report.md and return its path."""
    rd = RunDir(run_dir)
    rd.meta()
    lines = [f"# evoforge run {rd.path.name}", ""]
    evals = [rd.baseline / "eval.json"] + sorted((rd.path / "rounds").glob("*/eval.json"))
    lines += [
        "## Heldout pass rate",
        "",
        "| round | env | n | strict | loose | 95% CI | kept |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in evals:
        if not p.exists():
            continue
        ev = read_json(p)
        for env, h in ev["heldout"].items():
            label = "baseline" if ev["round"] < 0 else ev["round"]
            lines.append(
                f"| {label} | {env} | {h['n']} | {h['strict']:.3f} | {h['loose']:.3f} | "
                f"[{h['ci95'][0]:.3f}, {h['ci95'][1]:.3f}] | {ev.get('kept')} |"
            )
    lines += [
        "",
        "## Rounds",
        "",
        "| round | tasks | failed | trees | nodes | accepted | pairs | agreement |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in sorted((rd.path / "rounds").glob("*/metrics.json")):
        m = read_json(p)
        lines.append(
            f"| {m['round']} | {m.get('tasks')} | {m.get('failed')} | {m.get('trees')} | "
            f"{m.get('nodes_expanded')} | {m.get('accepted')} | {m.get('pairs')} | "
            f"{m.get('judge_verifier_agreement')} |"
        )
    out = Path(run_dir) / "report.md"
    atomic_write_text(out, "\n".join(lines) + "\n")
    return str(out)
