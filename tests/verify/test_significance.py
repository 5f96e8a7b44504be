"""verify/significance.py: Welch's t and TOST decide on planted clear differences and never on identical or
broken samples; the p-values equal scipy's reference implementation."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from verify.significance import equivalence, welch


def test_welch_matches_scipy():
    a, b = [2.01, 2.03, 1.99, 2.02], [2.10, 2.07, 2.12]
    d = welch(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert math.isclose(d.t, ref.statistic, rel_tol=1e-12) and math.isclose(d.p, ref.pvalue, rel_tol=1e-10)


def test_planted_clear_difference_is_significant_and_identical_runs_are_not():
    base = [3.000, 3.010, 2.995]
    lower = [v - 0.2 for v in [3.004, 2.998, 3.007]]
    d = welch(lower, base)
    assert d.significant and d.direction == "lower" and d.p < 0.01
    assert welch(base, lower).direction == "higher"
    same = welch(base, list(base))
    assert not same.significant and same.p == 1.0 and same.direction == "no significant difference"


def test_a_difference_inside_the_seed_noise_is_not_significant():
    a, b = [3.00, 3.05, 2.95], [3.02, 3.07, 2.97]  # shifted by 0.02, spread 0.05
    assert not welch(a, b).significant


def test_zero_variance_samples_are_exact():
    assert welch([1.0, 1.0], [2.0, 2.0]).p == 0.0
    assert welch([1.0, 1.0], [1.0, 1.0]).p == 1.0


@pytest.mark.parametrize("bad", [[1.0], [], [1.0, float("nan")], [1.0, float("inf")]])
def test_too_few_or_non_finite_values_never_give_a_decision(bad):
    with pytest.raises(ValueError):
        welch(bad, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError):
        equivalence([1.0, 2.0, 3.0], bad, margin=0.1)


def test_equivalence_decides_both_ways_and_stays_undecided_on_noise():
    base = [3.000, 3.002, 2.999, 3.001]
    assert equivalence([3.0005, 3.0015, 2.9995, 3.0010], base, margin=0.03).verdict == "equivalent"
    assert equivalence([3.300, 3.302, 3.299, 3.301], base, margin=0.03).verdict == "not equivalent"
    noisy = [2.9, 3.1, 3.05, 2.95]
    assert equivalence(noisy, base, margin=0.03).verdict == "undecided"


def test_bad_alpha_and_margin_are_rejected():
    with pytest.raises(ValueError, match="alpha"):
        welch([1.0, 2.0], [1.0, 2.0], alpha=0.7)
    with pytest.raises(ValueError, match="margin"):
        equivalence([1.0, 2.0], [1.0, 2.0], margin=0.0)
