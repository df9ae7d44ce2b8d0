import pytest

from evoforge.loops.stages.promote import decide
from evoforge.stats import wilson


def test_wilson_interval():
    lo, hi = wilson(41, 200)
    assert (
        lo < 0.205 < hi
        and lo == pytest.approx(0.155, abs=0.002)
        and hi == pytest.approx(0.266, abs=0.002)
    )
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 1.0 and wilson(0, 0) == [0.0, 0.0]


def ev(main, guard=None):
    h = {"instructions": {"strict": main}}
    if guard is not None:
        h["arithmetic"] = {"strict": guard}
    return {"heldout": h}


def test_promotion_rule():
    assert decide(ev(0.25), ev(0.20), "instructions", "", 0.02).keep
    assert decide(ev(0.25), ev(0.20), "instructions", "", 0.02).gain
    d = decide(ev(0.19), ev(0.20), "instructions", "", 0.02)
    assert d.keep and not d.gain  # inside the tolerance: kept, but no gain
    d = decide(ev(0.15), ev(0.20), "instructions", "", 0.02)
    assert not d.keep and "fell" in d.reason
    d = decide(ev(0.30, guard=0.1), ev(0.20, guard=0.5), "instructions", "arithmetic", 0.02)
    assert not d.keep and "forgetting" in d.reason
