"""Statistics against known values."""

import math

import pytest

from evoforge.stats import cohen_kappa, mcnemar_exact, paired_comparison, wilson


def test_wilson_interval():
    lo, hi = wilson(41, 200)
    assert lo == pytest.approx(0.155, abs=0.002) and hi == pytest.approx(0.266, abs=0.002)
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 1.0 and wilson(0, 0) == [0.0, 0.0]


def test_mcnemar_exact_known_values():
    # two-sided binomial test of the smaller discordant count; (13, 16) is the 0.71 of a
    # 16-lost, 13-gained comparison
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 5) == 1.0
    assert mcnemar_exact(10, 0) == pytest.approx(2 / 2**10)
    assert mcnemar_exact(13, 16) == pytest.approx(0.7111, abs=1e-4)  # 16 lost, 13 gained
    assert mcnemar_exact(30, 12) == pytest.approx(0.00792, abs=1e-4)
    assert mcnemar_exact(12, 30) == mcnemar_exact(30, 12)
    # the exact tail, from its definition
    n, k = 25, 7
    want = 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    assert mcnemar_exact(k, n - k) == pytest.approx(want)


def test_paired_comparison():
    before = {f"t{i}": i < 40 for i in range(200)}  # 0.20
    after = {f"t{i}": (i < 30) or (40 <= i < 70) for i in range(200)}  # lost 10, gained 30
    c = paired_comparison(before, after)
    assert (c["n"], c["before"], c["after"], c["gained"], c["lost"]) == (200, 0.2, 0.3, 30, 10)
    assert c["delta"] == pytest.approx(0.1)
    lo, hi = c["ci95"]
    assert lo < 0.1 < hi and lo > 0  # significant: the interval excludes 0
    assert c["p"] == pytest.approx(mcnemar_exact(30, 10), abs=1e-6) and c["p"] < 0.01
    same = paired_comparison(before, before)
    assert same["delta"] == 0 and same["p"] == 1.0 and same["ci95"] == [0.0, 0.0]
    all_gained = paired_comparison({i: False for i in range(22)}, {i: True for i in range(22)})
    assert all_gained["p"] == pytest.approx(2 * 0.5**22, rel=1e-3)  # stored, not rounded to 0
    assert paired_comparison({"a": True}, {"b": True})["n"] == 0


def test_cohen_kappa():
    truth = [True] * 10 + [False] * 10
    assert cohen_kappa(truth, truth) == 1.0
    assert cohen_kappa([not t for t in truth], truth) == -1.0
    assert cohen_kappa([True] * 20, truth) == 0.0  # always yes: chance level
    # 2x2 table a=20 b=5 c=10 d=15: po=0.7, pe=0.5 -> 0.4
    judge = [True] * 20 + [True] * 5 + [False] * 10 + [False] * 15
    truth = [True] * 20 + [False] * 5 + [True] * 10 + [False] * 15
    assert cohen_kappa(judge, truth) == pytest.approx(0.4)
    assert cohen_kappa([], []) is None and cohen_kappa([True], [True]) is None
