"""promote: keep the round's weights or roll the servers back to the last kept ones.

The rules are pure functions of the evaluations (:func:`decide`, :func:`next_patience`), testable
without Ray; the stage applies them: a rollback reloads the kept weights in place and checks that
the servers answer exactly as before the sync.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from typing import Any

from evoforge.round.nodes import StageResult, stage
from evoforge.round.runtime import Runtime
from evoforge.round.stages.sync import probe
from evoforge.round.state import RunState
from evoforge.storage.records import Evaluation
from evoforge.storage.store import RoundStore


@dataclass(frozen=True)
class Decision:
    keep: bool
    gain: bool
    reason: str


def _p(candidate: Evaluation, env: str) -> float | None:
    """McNemar's p of the candidate against the last kept round on ``env`` (None: not compared)."""
    return (candidate.compare or {}).get("last_kept", {}).get(env, {}).get("p")


def regressed(new: float, old: float, p: float | None, tolerance: float, alpha: float) -> bool:
    """A fall counts when it exceeds ``tolerance`` and, where the two evaluations were compared
    task by task, is significant (p < alpha): one task of a small guard set is noise, not
    forgetting. A negative tolerance (keep only a gain of that much) is applied as it stands."""
    if new >= old - tolerance:
        return False
    return tolerance < 0 or p is None or p < alpha


def decide(
    candidate: Evaluation,
    last_kept: Evaluation,
    main_env: str,
    guard_env: str,
    tolerance: float,
    require_significance: bool = False,
    alpha: float = 0.05,
) -> Decision:
    """Keep unless the main pass rate (or the guard's) fell significantly, by more than
    ``tolerance``; with ``require_significance``, keep only a gain over the last kept round with
    McNemar p < alpha. A gain counts toward patience only when it is positive (and significant
    when required)."""
    new, old = candidate.heldout[main_env]["strict"], last_kept.heldout[main_env]["strict"]
    p = _p(candidate, main_env)
    sig = f" (p={p:.3g})" if p is not None else ""
    if regressed(new, old, p, tolerance, alpha):
        return Decision(
            False,
            False,
            f"{main_env} strict pass rate fell {old:.3f} -> {new:.3f}{sig} "
            f"(more than tolerance {tolerance})",
        )
    if guard_env and guard_env in candidate.heldout and guard_env in last_kept.heldout:
        g_new = candidate.heldout[guard_env]["strict"]
        g_old = last_kept.heldout[guard_env]["strict"]
        g_p = _p(candidate, guard_env)
        if regressed(g_new, g_old, g_p, tolerance, alpha):
            g_sig = f" (p={g_p:.3g})" if g_p is not None else ""
            return Decision(
                False,
                False,
                f"guard {guard_env} regressed {g_old:.3f} -> {g_new:.3f}{g_sig} (forgetting)",
            )
    significant = p is not None and p < alpha and new > old
    if require_significance and not significant:
        return Decision(
            False,
            False,
            f"{main_env} strict {old:.3f} -> {new:.3f}{sig}: not a significant gain "
            f"(eval.require_significance, alpha {alpha})",
        )
    gain = new > old
    return Decision(
        True,
        gain,
        f"{main_env} strict {old:.3f} -> {new:.3f}{sig}" + ("" if gain else " (no gain)"),
    )


def next_patience(
    gain: bool, no_gain: int, patience: int, round_: int, rounds: int
) -> tuple[int, str]:
    """Rounds without a gain after this one, and why the run stops early ("" = it goes on)."""
    no_gain = 0 if gain else no_gain + 1
    if patience and no_gain >= patience and round_ + 1 < rounds:
        return no_gain, f"{no_gain} rounds without a gain (eval.patience)"
    return no_gain, ""


def _rollback(rt: Runtime, state: RunState) -> dict[str, Any]:
    """Reload the last kept weights in place, delete the rejected ones, check the probe."""
    r = state["round"]
    rt.servers.actor.load_weights(rt.kept_weights(state))
    shutil.rmtree(rt.model_dir(r), ignore_errors=True)
    before = rt.store(state).probe_kept.read()
    after = probe(rt)
    return {"n": len(before), "identical": sum(a == b for a, b in zip(before, after, strict=True))}


@stage()
def promote(rt: Runtime, state: RunState, store: RoundStore) -> StageResult:
    c, r = rt.config, state["round"]
    ev = store.eval.read()
    last = rt.last_kept_store(state).eval.read()
    if ev.unchanged:
        dec = Decision(False, False, store.training_skipped() or "")
    else:
        guard = rt.guard.name if rt.guard else ""
        e = c.eval
        dec = decide(ev, last, rt.env.name, guard, e.tolerance, e.require_significance, e.alpha)
    update: dict[str, Any] = {"round": r + 1}
    if dec.keep:
        update["last_kept"] = r
    elif not ev.unchanged:
        ev = replace(ev, rollback_check=_rollback(rt, state))
        update["serving"] = rt.serving_label(state.get("last_kept", -1))
    no_gain, stop = next_patience(
        dec.gain, state.get("no_gain", 0), c.eval.patience, r, state.get("rounds", 0)
    )
    update["no_gain"] = no_gain
    if stop:
        update["stop"], update["stop_reason"] = True, stop
    if ev.kept is None or ev.rollback_check is not None:
        store.eval.write(replace(ev, kept=dec.keep, reason=dec.reason))
    h = ev.heldout[rt.env.name]
    return StageResult(
        counts={"kept": dec.keep, "strict": h["strict"], "reason": dec.reason},
        metrics={"kept": dec.keep, "promote_reason": dec.reason},
        update=update,
    )
