"""Statistics and verdict logic of the rate checks (verify/rates/stats.py), on synthetic data with known answers."""

import math

import numpy as np
import pytest

from verify.rates import stats

T = np.array([2.0**k for k in range(6, 13)])


def lognormal_curves(slope, n_seeds=200, spread=0.3, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    return scale * T[:, None] ** slope * np.exp(rng.normal(0.0, spread, (T.size, n_seeds)))


# ----------------------------------------------------------------------------- seed statistics and the fit
def test_parse_statistic_accepts_mean_and_quantiles():
    assert stats.parse_statistic("mean") == ("mean", None)
    assert stats.parse_statistic("q0.99") == ("quantile", 0.99)
    assert stats.parse_statistic("q.9") == ("quantile", 0.9)


@pytest.mark.parametrize("bad", ["median", "q1.5", "q0", "q1", "q-0.1", ""])
def test_parse_statistic_rejects_with_the_argument_named(bad):
    with pytest.raises(ValueError, match="statistic"):
        stats.parse_statistic(bad)


def test_parse_statistic_type_error():
    with pytest.raises(TypeError, match="statistic"):
        stats.parse_statistic(0.9)


def test_seed_statistic_matches_numpy():
    Y = lognormal_curves(-0.5)
    np.testing.assert_array_equal(stats.seed_statistic(Y, "mean"), Y.mean(axis=1))
    np.testing.assert_array_equal(stats.seed_statistic(Y, "q0.9"), np.quantile(Y, 0.9, axis=1))


def test_loglog_fit_recovers_an_exact_power_law():
    slope, intercept = stats.loglog_fit(T, 3.0 * T**-0.5)
    assert abs(slope + 0.5) <= 1e-12
    assert abs(intercept - math.log(3.0)) <= 1e-12


def test_loglog_fit_is_vectorized_over_leading_axes():
    y = np.stack([2.0 * T**-1.0, 5.0 * T**-0.25])
    slope, _ = stats.loglog_fit(T, y)
    np.testing.assert_allclose(slope, [-1.0, -0.25], rtol=0, atol=1e-12)


@pytest.mark.parametrize("y", [np.r_[1.0, 0.0, np.ones(5)], np.r_[1.0, -1.0, np.ones(5)], np.r_[np.nan, np.ones(6)]])
def test_loglog_fit_rejects_non_positive_values(y):
    with pytest.raises(ValueError, match="positive"):
        stats.loglog_fit(T, y)


def test_loglog_fit_needs_two_distinct_horizons():
    with pytest.raises(ValueError, match="horizons"):
        stats.loglog_fit([4.0, 4.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="horizons"):
        stats.loglog_fit([4.0], [1.0])


# ----------------------------------------------------------------------------- bootstrap intervals
def test_bootstrap_interval_covers_the_true_slope_and_is_narrow():
    fit = stats.bootstrap_loglog_slope(T, lognormal_curves(-0.5), n_resamples=500)
    assert fit.ci[0] < -0.5 < fit.ci[1]
    assert fit.width < 0.05
    assert fit.method == "BCa"
    assert fit.n_seeds == 200


def test_bootstrap_interval_is_reproducible_from_its_seed():
    Y = lognormal_curves(-0.5)
    a = stats.bootstrap_loglog_slope(T, Y, n_resamples=300, seed=7)
    b = stats.bootstrap_loglog_slope(T, Y, n_resamples=300, seed=7)
    c = stats.bootstrap_loglog_slope(T, Y, n_resamples=300, seed=8)
    assert a.ci == b.ci
    assert a.ci != c.ci


def test_bootstrap_interval_widens_with_fewer_seeds():
    wide = stats.bootstrap_loglog_slope(T, lognormal_curves(-0.5, n_seeds=10), n_resamples=500)
    narrow = stats.bootstrap_loglog_slope(T, lognormal_curves(-0.5, n_seeds=400), n_resamples=500)
    assert wide.width > 3 * narrow.width


def test_deterministic_cell_gives_a_zero_width_interval():
    Y = np.repeat((2.0 * T**-1.0)[:, None], 4, axis=1)
    fit = stats.bootstrap_loglog_slope(T, Y)
    assert fit.method == "deterministic"
    assert fit.ci == (fit.slope, fit.slope)
    assert abs(fit.slope + 1.0) <= 1e-12


def test_quantile_statistic_fits_the_quantile_curve():
    Y = lognormal_curves(-0.5, n_seeds=400)
    fit = stats.bootstrap_loglog_slope(T, Y, "q0.9", n_resamples=300)
    expected, _ = stats.loglog_fit(T, np.quantile(Y, 0.9, axis=1))
    assert fit.slope == pytest.approx(expected, abs=1e-12)
    assert fit.ci[0] <= fit.slope <= fit.ci[1]


@pytest.mark.parametrize("kwargs, match", [({"confidence": 1.0}, "confidence"), ({"n_resamples": 10}, "n_resamples"),
                                           ({"method": "jackknife"}, "method")])
def test_bootstrap_arguments_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        stats.bootstrap_loglog_slope(T, lognormal_curves(-0.5, n_seeds=8), **kwargs)


def test_bootstrap_rejects_bad_shapes_and_diverged_values():
    with pytest.raises(ValueError, match="rows"):
        stats.bootstrap_loglog_slope(T, lognormal_curves(-0.5)[:-1])
    with pytest.raises(ValueError, match="2 seeds"):
        stats.bootstrap_loglog_slope(T, lognormal_curves(-0.5)[:, :1])
    Y = lognormal_curves(-0.5)
    Y[3, 5] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        stats.bootstrap_loglog_slope(T, Y)


def test_paired_difference_removes_the_common_noise():
    rng = np.random.default_rng(3)
    common = np.exp(rng.normal(0.0, 0.5, (T.size, 100)))
    Ya = T[:, None] ** -0.7 * common
    Yb = T[:, None] ** -0.5 * common
    paired = stats.bootstrap_slope_difference(T, Ya, Yb, paired=True, n_resamples=300)
    unpaired = stats.bootstrap_slope_difference(T, Ya, Yb, paired=False, n_resamples=300)
    assert paired.estimate == pytest.approx(-0.2, abs=1e-12)
    assert paired.width < 1e-9  # the per-seed noise cancels exactly
    assert unpaired.width > 0.01
    assert unpaired.ci[0] < -0.2 < unpaired.ci[1]


def test_paired_difference_needs_the_same_seed_count():
    with pytest.raises(ValueError, match="paired"):
        stats.bootstrap_slope_difference(T, lognormal_curves(-0.5, 10), lognormal_curves(-0.5, 12), paired=True)


def test_log_ratio_interval():
    a = lognormal_curves(-0.5, seed=1)[-1]
    b = 2.0 * lognormal_curves(-0.5, seed=2)[-1]
    est = stats.bootstrap_log_ratio(a, b, paired=False, n_resamples=500)
    assert est.ci[0] < math.log(0.5) < est.ci[1]


def test_statistic_interval_and_constant_sample():
    v = lognormal_curves(-0.5)[0]
    est = stats.bootstrap_statistic(v, n_resamples=500)
    assert est.ci[0] < v.mean() < est.ci[1]
    const = stats.bootstrap_statistic(np.full(5, 2.0))
    assert const.method == "deterministic" and const.ci == (2.0, 2.0)


def test_quantile_exponent_separates_sub_gaussian_from_markov_tails():
    rng = np.random.default_rng(0)
    light = 1.0 + np.abs(rng.normal(size=1000))  # q grows like sqrt(log(1/δ))
    heavy = 1.0 / rng.uniform(size=1000)  # P(X > x) = 1/x: q_(1−δ) = 1/δ exactly
    levels = (0.5, 0.9, 0.99)
    e_light = stats.bootstrap_quantile_exponent(light, levels, n_resamples=300)
    e_heavy = stats.bootstrap_quantile_exponent(heavy, levels, n_resamples=300)
    assert e_light.ci[1] < 0.3
    assert e_heavy.ci[0] < 1.0 < e_heavy.ci[1] or abs(e_heavy.estimate - 1.0) < 0.05


def test_quantile_band_levels_are_validated():
    lo, hi = stats.quantile_band(lognormal_curves(-0.5))
    assert np.all(lo < hi)
    with pytest.raises(ValueError, match="levels"):
        stats.quantile_band(lognormal_curves(-0.5), (0.9, 0.1))


# ----------------------------------------------------------------------------- verdicts
@pytest.mark.parametrize(
    "ci, kwargs, outcome",
    [
        ((-0.55, -0.45), {"low": -0.6, "high": -0.4}, "PASS"),
        ((-0.35, -0.30), {"low": -0.6, "high": -0.4}, "FAIL"),
        ((-0.90, -0.70), {"low": -0.6, "high": -0.4}, "FAIL"),
        ((-0.45, -0.35), {"low": -0.6, "high": -0.4}, "INCONCLUSIVE"),
        ((-0.70, -0.50), {"low": -0.6, "high": -0.4}, "INCONCLUSIVE"),
        ((-0.70, -0.55), {"high": -0.45}, "PASS"),
        ((-0.40, -0.30), {"high": -0.45}, "FAIL"),
        ((-0.10, 0.05), {"low": -0.25}, "PASS"),
        ((-0.55, -0.35), {"low": -0.25}, "FAIL"),
        ((-0.50, -0.50), {"low": -0.6, "high": -0.4}, "PASS"),
    ],
)
def test_judge_interval_rule(ci, kwargs, outcome):
    assert stats.judge_interval(ci, **kwargs).outcome == outcome


def test_a_wide_interval_is_inconclusive_but_a_wide_miss_still_fails():
    wide_inside = stats.judge_interval((-1.9, -0.6), high=-0.45, max_width=0.3)
    assert wide_inside.outcome == "INCONCLUSIVE" and "too wide" in wide_inside.reason
    wide_outside = stats.judge_interval((0.1, 1.5), low=-0.6, high=-0.4, max_width=0.3)
    assert wide_outside.outcome == "FAIL"


def test_judge_interval_reasons_name_the_interval_and_the_claim():
    out = stats.judge_interval((-0.52, -0.48), low=-0.6, high=-0.4, what="slope")
    assert "[-0.520, -0.480]" in out.reason and "-0.600 <= slope <= -0.400" in out.reason


@pytest.mark.parametrize("kwargs, match", [({}, "target"), ({"low": 1.0, "high": 0.0}, "low"),
                                           ({"high": 0.0, "max_width": 0.0}, "max_width")])
def test_judge_interval_validates_its_target(kwargs, match):
    with pytest.raises(ValueError, match=match):
        stats.judge_interval((-1.0, 0.0), **kwargs)


def test_judge_interval_rejects_a_non_finite_interval():
    with pytest.raises(ValueError, match="ci"):
        stats.judge_interval((math.nan, 0.0), high=0.0)
    with pytest.raises(ValueError, match="ci"):
        stats.judge_interval((1.0, 0.0), high=0.0)


def test_outcome_values_are_checked():
    with pytest.raises(ValueError, match="outcome"):
        stats.Outcome("MAYBE", "")


@pytest.mark.parametrize("tag", ["P", "D", "BG", "[C]", "V", "M"])
def test_gate_asserts_verified_and_background_claims(tag):
    v = stats.gate(stats.Outcome("PASS", "ok"), tag)
    assert v.asserted and v.verdict == "PASS"


@pytest.mark.parametrize("tag", ["U", "S", "[A]", "F", "T"])
@pytest.mark.parametrize("outcome, shown", [("PASS", "CONSISTENT"), ("FAIL", "INCONSISTENT"), ("INCONCLUSIVE", "INCONCLUSIVE")])
def test_gate_never_passes_a_reconstructed_claim(tag, outcome, shown):
    v = stats.gate(stats.Outcome(outcome, "why"), tag)
    assert not v.asserted
    assert v.verdict == shown
    assert v.outcome == outcome
    assert "not asserted" in v.reason


def test_gate_rejects_unknown_tags():
    with pytest.raises(ValueError, match="provenance"):
        stats.gate(stats.Outcome("PASS", "why"), "X")
