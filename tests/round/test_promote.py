from dataclasses import replace

from evoforge.round.stages.promote import decide
from evoforge.storage.records import Evaluation


def ev(main, guard=None):
    h = {"instructions": {"strict": main}}
    if guard is not None:
        h["arithmetic"] = {"strict": guard}
    return Evaluation(round=0, heldout=h)


def test_promotion_rule():
    assert decide(ev(0.25), ev(0.20), "instructions", "", 0.02).keep
    assert decide(ev(0.25), ev(0.20), "instructions", "", 0.02).gain
    d = decide(ev(0.19), ev(0.20), "instructions", "", 0.02)
    assert d.keep and not d.gain  # inside the tolerance: kept, but no gain
    d = decide(ev(0.15), ev(0.20), "instructions", "", 0.02)
    assert not d.keep and "fell" in d.reason
    d = decide(ev(0.30, guard=0.1), ev(0.20, guard=0.5), "instructions", "arithmetic", 0.02)
    assert not d.keep and "forgetting" in d.reason


def test_a_fall_counts_only_when_significant():
    def cand(main, guard, p_main, p_guard):
        cmp = {"last_kept": {"instructions": {"p": p_main}, "arithmetic": {"p": p_guard}}}
        return replace(ev(main, guard), compare=cmp)

    last = ev(0.25, guard=0.025)
    # the demo's case: one guard task of 40 lost (0.025 -> 0), p = 1: noise, kept
    d = decide(cand(0.252, 0.0, 0.02, 1.0), last, "instructions", "arithmetic", 0.02)
    assert d.keep
    d = decide(cand(0.252, 0.0, 0.02, 0.01), last, "instructions", "arithmetic", 0.02)
    assert not d.keep and "p=0.01" in d.reason and "forgetting" in d.reason
    assert decide(cand(0.20, None, 0.3, None), ev(0.25), "instructions", "", 0.02).keep
    d = decide(cand(0.20, None, 0.001, None), ev(0.25), "instructions", "", 0.02)
    assert not d.keep and "fell" in d.reason
    # a negative tolerance asks for a gain of that much, significant or not
    assert not decide(cand(0.25, None, 1.0, None), ev(0.25), "instructions", "", -0.01).keep


def test_significance_gate():
    def cand(strict, p):
        cmp = {"last_kept": {"instructions": {"p": p, "delta": strict - 0.2}}}
        return replace(ev(strict), compare=cmp)

    last = ev(0.20)
    assert decide(cand(0.24, 0.30), last, "instructions", "", 0.02).keep  # off by default
    d = decide(cand(0.24, 0.30), last, "instructions", "", 0.02, require_significance=True)
    assert not d.keep and not d.gain and "not a significant gain" in d.reason
    d = decide(cand(0.30, 0.004), last, "instructions", "", 0.02, require_significance=True)
    assert d.keep and d.gain and "p=0.004" in d.reason
    d = decide(cand(0.30, 0.04), last, "instructions", "", 0.02, True, alpha=0.01)
    assert not d.keep


def test_patience_rule():
    from evoforge.round.stages.promote import next_patience

    assert next_patience(True, 3, 2, 0, 5) == (0, "")
    assert next_patience(False, 0, 2, 0, 5) == (1, "")
    assert next_patience(False, 1, 2, 1, 5)[1].startswith("2 rounds without a gain")
    assert next_patience(False, 1, 2, 4, 5) == (2, "")  # last round: nothing to stop
    assert next_patience(False, 9, 0, 1, 5) == (10, "")  # patience 0: never stops
