"""verify/rates/power.py and the checks' guards: alternatives, their schedules, the power gate, window
stationarity and theorem premises."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from verify.rates.cells import build, mars_b5_constants, mars_tight_from
from verify.rates.checks import evaluate_check, evaluate_checks, mars_b5_violations
from verify.rates.execute import horizon_eta, mars_theory_eta, run_cell
from verify.rates.power import SCHEDULE_OFFSETS, alternative_grid, claimed_exponent, summarize_power
from verify.rates.spec import Alternative, Check, mutant_alternative
from verify.rates.sweep import power_checks

CELLS, CHECKS = build("quick")
BY_CELL = {c.key: c for c in CELLS}
BY_CHECK = {c.key: c for c in CHECKS}


def test_claimed_exponents():
    assert claimed_exponent({"kind": "constant", "eta": 1.0}) == 0.0
    assert claimed_exponent({"kind": "inverse_sqrt_horizon", "eta0": 1.0}) == 0.5
    assert claimed_exponent({"kind": "mars_theory", "eta0": 1.0, "s": 8.0, "c": 33.0}) == pytest.approx(1 / 3)


@pytest.mark.parametrize("check_key", ["sgd/slope", "adagrad_norm/noisy-slope", "mars_adamw/slope"])
def test_schedule_alternatives_change_only_the_exponent(check_key):
    check = BY_CHECK[check_key]
    cell = BY_CELL[check.cells[0]]
    alt_cells, plan = alternative_grid(CELLS, [check])
    schedules = [(alt, alt_check) for alt, alt_check in plan[check_key] if alt.kind == "schedule"]
    p_star = claimed_exponent(cell.schedule)
    expected = sorted(round(p_star + s * (check.resolution + o), 6) for o in SCHEDULE_OFFSETS for s in (-1, 1))
    assert sorted(alt.exponent for alt, _ in schedules) == expected
    by_key = {c.key: c for c in alt_cells}
    T0 = check.window[0]
    for alt, alt_check in schedules:
        new = by_key[alt_check.cells[0]]
        assert new.algorithm == cell.algorithm and new.hyper == cell.hyper and new.problem == cell.problem
        if new.schedule["kind"] == "horizon_power":  # one run per horizon of the window, η matched at its start
            assert new.horizons == tuple(T for T in cell.horizons if check.window[0] <= T <= check.window[1])
            claimed = cell.schedule.get("eta", None) if cell.schedule["kind"] == "constant" else horizon_eta(cell.schedule, T0)
            assert horizon_eta(new.schedule, T0) == pytest.approx(claimed)
            assert horizon_eta(new.schedule, 4 * T0) == pytest.approx(claimed * 4.0 ** (-alt.exponent))
        else:  # anytime: η_t keeps its value at t = T0
            assert mars_theory_eta(new.schedule)(T0) == pytest.approx(mars_theory_eta(cell.schedule)(T0))
            assert new.schedule["q"] == alt.exponent


def test_alternatives_that_are_cells_of_the_grid_are_not_run_twice():
    check = BY_CHECK["mars_adamw/slope"]
    _, plan = alternative_grid(CELLS, [check])
    gamma0 = next(alt_check for alt, alt_check in plan[check.key] if alt.key == "gamma0")
    assert gamma0.cells == ("mars_adamw/p1-exact-g0",)
    sgdm = next(alt_check for alt, alt_check in plan[check.key] if alt.key == "sgdm-same-schedule")
    assert sgdm.cells == ("sgdm/p1-mars-schedule",)


def _alt(key, kind="schedule", **kw):
    if kind == "schedule":
        kw.setdefault("exponent", 0.35)
    return Alternative(key=key, kind=kind, label=key, **kw)


def test_power_summary_requires_every_rejection_and_a_method_specific_bug():
    check = BY_CHECK["sgd/slope"]
    fail, passing = {"outcome": "FAIL", "reason": "outside", "estimate": -0.3}, {"outcome": "PASS", "reason": "in",
                                                                                   "estimate": -0.5}
    specific = mutant_alternative("sgd_stale_gradient_sum")
    frozen = mutant_alternative("sgd_frozen_after_first_step")
    good = summarize_power(check, [(_alt("p1"), fail), (specific, fail)])
    assert good["powered"] and good["method_mutants_rejected"] == ["sgd_stale_gradient_sum"]
    missed = summarize_power(check, [(_alt("p1"), passing), (specific, fail)])
    assert not missed["powered"] and missed["not_rejected"] == ["p1"] and "p1" in missed["why"]
    only_frozen = summarize_power(check, [(_alt("p1"), fail), (frozen, fail)])
    assert not only_frozen["powered"] and "method-specific" in only_frozen["why"]
    unmeasured = summarize_power(check, [(_alt("p1"), None), (specific, fail)])
    assert not unmeasured["measured"] and not unmeasured["powered"]
    inconclusive = summarize_power(check, [(_alt("p1"), {"outcome": "INCONCLUSIVE", "reason": "wide", "estimate": 0.1}),
                                           (specific, fail)])
    assert not inconclusive["powered"]  # an alternative is rejected only by a FAIL


def _row(key, horizons, values, schedule=None, hyper=None, constants=None):
    values = np.asarray(values, float)
    return {"key": key, "horizons": list(horizons), "seeds": list(range(values.shape[1])),
            "values": {"avg_sq_grad": values.tolist()},
            "spec": {"schedule": schedule or {"kind": "constant", "eta": 1.0}, "hyper": hyper or {},
                     "noise": ["isotropic", {}], "problem": ["separable", {}], "metrics": ["avg_sq_grad"]},
            "constants": {"L": 1.0, "delta": 1.0, "variance": 1.0, "shape": [4], **(constants or {})}}


def _power_law(horizons, exponents, seeds=16, seed=0):
    """R_T with local slope ``exponents[i]`` between horizons i and i+1, and 1 % seed noise."""
    rng = np.random.default_rng(seed)
    logs = [0.0]
    for i in range(1, len(horizons)):
        logs.append(logs[-1] + exponents[i - 1] * math.log(horizons[i] / horizons[i - 1]))
    base = np.exp(logs)[:, None]
    return base * (1 + 0.01 * rng.standard_normal((len(horizons), seeds)))


def test_a_drifting_window_is_inconclusive_not_a_pass():
    T = [2**k for k in range(8, 13)]
    check = Check(key="k", algorithm="sgd", theorem="sgd_horizon", kind="slope", cells=("c",), low=-0.58, high=-0.42,
                  mutants=("sgd_stale_gradient_sum",))
    steady = evaluate_check(check, {"c": _row("c", T, _power_law(T, [-0.5] * 4))}, n_resamples=200)
    assert steady["verdict"] == "PASS" and steady["stationarity"]["stationary"]
    drifting = evaluate_check(check, {"c": _row("c", T, _power_law(T, [-0.62, -0.56, -0.44, -0.38]))}, n_resamples=200)
    assert -0.58 < drifting["estimate"] < -0.42  # the whole-window slope alone would pass
    assert drifting["verdict"] == "INCONCLUSIVE" and "not stationary" in drifting["reason"]


def _mars_row(**schedule_changes):
    constants = mars_b5_constants(1.0)
    schedule = {"kind": "mars_theory", "eta0": constants["eta0"], "s": constants["s"], "c": constants["c"],
                "beta2": 0.99, **schedule_changes}
    T = [2**k for k in range(12, 17)]
    return _row("m", T, _power_law(T, [-2 / 3] * 4), schedule=schedule,
                hyper={"gamma": 1.0, "preconditioner": "identity", "estimator": "exact"}, constants={"L_sample": 1.0})


def test_mars_premises_follow_theorem_b5():
    assert mars_b5_violations(_mars_row()) == []
    assert any("c = 1" in v for v in mars_b5_violations(_mars_row(c=1.0)))
    assert any("s = 2" in v for v in mars_b5_violations(_mars_row(s=2.0)))
    assert any("η_1" in v for v in mars_b5_violations(_mars_row(eta0=2.0)))
    assert any("q" in v or "1/3" in v for v in mars_b5_violations(_mars_row(q=0.5)))
    check = Check(key="m", algorithm="mars_adamw", theorem="mars_theorem_b5", kind="slope", cells=("m",),
                  low=-2 / 3 - 0.1, high=-2 / 3 + 0.1, mutants=("mars_exact_aliased",))
    assert evaluate_check(check, {"m": _mars_row()}, n_resamples=200)["verdict"] == "PASS"
    violated = evaluate_check(check, {"m": _mars_row(c=1.0)}, n_resamples=200)
    assert violated["verdict"] == "INCONCLUSIVE" and "hypotheses fail" in violated["reason"]
    early = evaluate_check(replace(check, tight_from=10**6), {"m": _mars_row()}, n_resamples=200)
    assert early["verdict"] == "INCONCLUSIVE" and "pre-asymptotic" in early["reason"]


def test_mars_tight_regime_starts_after_millions_of_steps():
    constants = mars_b5_constants(1.0)
    assert constants == {"s": 8.0, "c": 33.0, "eta0": pytest.approx(0.5 * 9 ** (1 / 3))}
    eta = mars_theory_eta({"eta0": constants["eta0"], "s": constants["s"]})
    crossing = mars_tight_from(1.0, 1.0, constants, within=1 / 6)  # x_t = 1: the two times are equal
    assert constants["c"] * eta(crossing) <= 1.0 < constants["c"] * eta(crossing - 1)
    assert crossing > 4096 * (constants["s"] + 1) * 0.9
    t = mars_tight_from(1.0, 1.0, constants)  # the floor's exponent within 0.05 of −2/3: x_t <= 0.176
    x = constants["c"] * eta(t)
    assert -1 / 3 - (1 / 3) / (1 + x) <= -2 / 3 + 0.05 + 1e-12
    assert t > 10**6


def test_unpowered_checks_are_reported_and_powered_ones_asserted():
    T = [2**k for k in range(8, 13)]
    check = Check(key="k", algorithm="sgd", theorem="sgd_horizon", kind="slope", cells=("c",), low=-0.58, high=-0.42,
                  mutants=("sgd_stale_gradient_sum",))
    good = _row("c", T, _power_law(T, [-0.5] * 4))
    alt = Alternative(key="p+0.350", kind="schedule", label="p", exponent=0.35)
    plan = {"k": [(alt, replace(check, key="k@p", cells=("c@p",))),
                  (mutant_alternative("sgd_stale_gradient_sum"), replace(check, key="k@m", cells=("c@m",)))]}
    rows = {"c": good, "c@m": _row("c@m", T, _power_law(T, [0.5] * 4))}
    for slope, asserted in ((-0.36, True), (-0.47, False)):
        rows["c@p"] = _row("c@p", T, _power_law(T, [slope] * 4))
        [res] = evaluate_checks([check], rows, n_resamples=200, power_plan=plan)
        assert res["asserted"] is asserted and res["power"]["measured"]
        assert res["verdict"] == ("PASS" if asserted else "CONSISTENT")
        if not asserted:
            assert "no power" in res["reason"] and "p+0.350" in res["reason"]


def test_every_assertable_check_declares_a_method_specific_mutant():
    from verify.rates.power import is_method_specific

    for grid in ("quick", "full"):
        cells, checks = build(grid)
        for check in power_checks(checks):
            assert any(is_method_specific(m) for m in check.mutants), check.key


def test_the_sgd_slope_rejects_other_schedules_on_a_reduced_cell():
    """The committed quick-grid power run, shrunk: SGD in the ABC basin with η ∝ T^(-p), p = 0.35, 0.65."""
    check = replace(BY_CHECK["sgd/slope"], window=(2**8, 2**10))
    cell = replace(BY_CELL["sgd/mq-iso"], horizons=(2**8, 2**9, 2**10), seeds=8)
    alt_cells, plan = alternative_grid([cell], [check])
    wanted = [a for a in alt_cells if a.key.endswith(("p+0.350", "p+0.650"))]
    rows = {c.key: run_cell(c) for c in [cell] + wanted}
    good = evaluate_check(check, rows, n_resamples=300)
    assert good["verdict"] == "PASS", good["reason"]
    for alt, alt_check in plan[check.key]:
        if alt.key in ("p+0.350", "p+0.650"):
            bad = evaluate_check(alt_check, rows, n_resamples=300)
            assert bad["outcome"] == "FAIL", (alt.key, bad["reason"])
