"""Theorems as data (verify/rates/theorems.py) and the bound-derived targets of the checks."""

import math

import pytest
import sympy as sp

import algorithms
from verify.rates import cells as grid
from verify.rates.checks import bound_window_slope
from verify.rates.theorems import SYMBOLS, THEOREMS, category_of, t_exponent, theorem

T = SYMBOLS["T"]


@pytest.mark.parametrize(
    "key, noisy, noiseless",
    [
        ("gd_descent", -1, -1),
        ("sgd_constant", 0, -1),  # a constant step leaves the Lησ² floor under noise
        ("sgd_horizon", sp.Rational(-1, 2), sp.Rational(-1, 2)),
        ("adagrad_norm_expectation", sp.Rational(-1, 2), -1),
        ("adagrad_norm_high_probability", sp.Rational(-1, 2), -1),
        ("subset_norm_high_probability", sp.Rational(-1, 2), -1),
        ("mars_theorem_b5", sp.Rational(-2, 3), sp.Rational(-2, 3)),
        ("golore_floor", 0, 0),
    ],
)
def test_exponents_come_from_the_sympy_bound(key, noisy, noiseless):
    th = theorem(key)
    assert th.exponent(False) == noisy
    assert th.exponent(True) == noiseless


def test_t_exponent_ignores_log_factors():
    assert t_exponent(SYMBOLS["C"] * sp.log(T) ** 3 / sp.sqrt(T)) == sp.Rational(-1, 2)
    with pytest.raises(ValueError, match="vanishes"):
        t_exponent(SYMBOLS["sigma"] / T, noiseless=True)


def test_provenance_categories_follow_the_specs_legend():
    assert category_of("P") == category_of("[D]") == "verified"
    assert category_of("BG") == "background"
    for tag in ("U", "S", "A", "F", "T"):
        assert category_of(tag) == "reconstructed"
    for th in THEOREMS.values():
        assert th.assertable == (th.category != "reconstructed")
        assert th.assumptions, th.key
        assert th.schedule.kind in ("constant", "one_over_L", "inverse_sqrt_horizon", "mars_theory")


def test_unverified_statements_are_never_assertable():
    for key in ("subset_norm_high_probability", "subspace_momentum_high_probability", "ldadam_theorem1",
                "golore_floor", "adarankgrad_sumo_template", "sn_dimension_table", "no_theorem_sqrt_analogy"):
        assert not theorem(key).assertable, key


def test_every_registered_algorithm_has_a_theorem_or_an_explicit_none():
    covered = {a for th in THEOREMS.values() for a in th.algorithms}
    assert set(algorithms.REGISTRY) <= covered


def test_explicit_bounds_evaluate_and_shape_only_bounds_refuse():
    th = theorem("sgd_horizon")
    value = th.evaluate({"T": 256, "Delta": 1.0, "L": 1.0, "eta0": 4.0, "sigma": 1.0})
    assert value == pytest.approx((2 / 4 + 4) / 16)
    with pytest.raises(ValueError, match="needed"):
        th.evaluate({"T": 256})
    with pytest.raises(ValueError, match="unknown symbol"):
        th.evaluate({"T": 256, "Delta": 1.0, "L": 1.0, "eta0": 4.0, "sigma": 1.0, "bogus": 1})
    with pytest.raises(ValueError, match="explicit"):
        theorem("adagrad_norm_expectation").evaluate({"T": 10})


def test_unknown_theorem_names_the_known_ones():
    with pytest.raises(ValueError, match="gd_descent"):
        theorem("nope")


def test_to_dict_is_json_ready():
    import json

    for th in THEOREMS.values():
        json.dumps(th.to_dict())


def test_bound_window_slope_of_a_log_factor_is_exact():
    th = theorem("adagrad_coordinate_defossez")  # C d log T / sqrt(T)
    slope, how = bound_window_slope(th, 2**9, 2**13, {"d": 16})
    expected = -0.5 + (math.log(math.log(2**13)) - math.log(math.log(2**9))) / (4 * math.log(2))
    assert slope == pytest.approx(expected, abs=1e-12)
    assert "window" in how


def test_bound_window_slope_falls_back_to_the_exponent_when_constants_matter():
    slope, how = bound_window_slope(theorem("subset_norm_high_probability"), 2**9, 2**13)
    assert slope == -0.5 and "asymptotic" in how
    slope, _ = bound_window_slope(theorem("subset_norm_high_probability"), 2**9, 2**13, noiseless=True)
    assert slope == pytest.approx(-1.0, abs=1e-12)  # H²/T alone: the window slope is exact


def test_bound_window_slope_handles_constants_that_must_stay_below_one():
    slope, how = bound_window_slope(theorem("ldadam_theorem1"), 2**8, 2**11)  # C/((1 - q_r) sqrt T)
    assert slope == pytest.approx(-0.5, abs=1e-12) and "window" in how


def test_grid_checks_name_known_theorems_and_cover_every_algorithm():
    for name in ("quick", "full"):
        cells, checks = grid.build(name)
        assert set(algorithms.REGISTRY) <= grid.algorithms_covered(checks)
        for check in checks:
            theorem(check.theorem)
