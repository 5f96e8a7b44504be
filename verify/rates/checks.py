r"""Evaluate :class:`~verify.rates.spec.Check` claims on stored rows.

Kinds:

``slope``  the log-log slope of one cell's seed statistic over the ``window`` of horizons, with
           its seed-bootstrap interval, against ``[low, high]``. With ``high_from_bound`` the
           upper end is the theorem bound's own log-log slope over the same window
           (:func:`bound_window_slope`) plus ``slack``: an Õ-bound with a log factor is flatter
           than its exponent on a finite window (log T/√T has local slope −1/2 + 1/ln T).
``bound``  an explicit-constant theorem: at every horizon of the window the seed statistic's
           interval must lie under the bound evaluated on the problem's constants (L, Δ, the
           noise variance σ² = E‖ξ‖²) and the schedule's η; the theorem's step-size condition
           (η ≤ 1/L) is checked first (violated: INCONCLUSIVE, the bound does not apply).
``gap``    slope(cell 0) − slope(cell 1) over the common window, paired bootstrap when both
           cells ran on the same seeds; ``require_disjoint`` also asks that the two cells' own
           slope intervals do not overlap (MARS experiment B's pass criterion).
``order``  log(stat(cell 0)/stat(cell 1)) at the window's largest horizon (an ordering or a
           ratio), paired when the seeds are the same.
``dim``    the log-log slope of a seed statistic at the largest horizon across cells of increasing
           dimension d (seeds resampled independently per cell).
``delta``  the δ-dependence of the (1−δ)-quantiles at the window's largest horizon: the slope of
           log q against log(1/δ) over ``levels`` (:func:`~verify.rates.stats.bootstrap_quantile_exponent`).

Every outcome goes through :func:`verify.verdicts.gate` with the theorem's provenance (or the
check's override), so reconstructed claims are reported, never passed.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import sympy as sp

from . import stats
from .spec import Check
from .store import row_values
from verify.verdicts import Outcome, category_of, error_verdict, gate

from .theorems import SYMBOLS, Theorem, theorem

__all__ = ["evaluate_check", "evaluate_checks", "bound_window_slope", "DEFAULT_RESAMPLES"]

DEFAULT_RESAMPLES = 2000


def _window_index(horizons: list[int], window: tuple[int, int] | None) -> list[int]:
    if window is None:
        return list(range(len(horizons)))
    lo, hi = window
    idx = [i for i, T in enumerate(horizons) if lo <= T <= hi]
    if len(idx) < 2:
        raise ValueError(f"window {window} keeps fewer than 2 of the horizons {horizons}")
    return idx


def bound_window_slope(th: Theorem, T1: float, T2: float, values: Mapping[str, float] | None = None,
                       noiseless: bool = False) -> tuple[float, str]:
    """The bound's own log-log slope between T1 and T2, and how it was obtained.

    When :math:`d\\log(\\text{bound})/d\\log T` involves only T (a product of constants and a
    function of T), the slope is exact whatever the constants are. Otherwise it depends on
    unknown constants, and the asymptotic exponent is returned instead.
    """
    T = SYMBOLS["T"]
    expr = th.bound.subs({SYMBOLS["sigma"]: 0, SYMBOLS["sigma_21"]: 0}) if noiseless else th.bound
    log_derivative = sp.simplify(sp.diff(sp.log(expr), T) * T)
    known = {SYMBOLS[k]: v for k, v in (values or {}).items() if k in SYMBOLS}
    log_derivative = log_derivative.subs(known)
    if log_derivative.free_symbols <= {T}:
        # the constants only scale the bound: any admissible value (1/2 keeps q_r < 1) gives the same slope
        placeholder = {s: sp.Rational(1, 2) for s in expr.free_symbols - {T} - set(known)}
        f = sp.lambdify(T, sp.log(expr.subs(known).subs(placeholder)), "math")
        slope = (f(T2) - f(T1)) / (math.log(T2) - math.log(T1))
        if math.isfinite(slope):
            return slope, "the bound's slope over the window"
    return float(th.exponent(noiseless)), "the bound's asymptotic exponent (its window slope depends on unknown constants)"


def _noiseless(row: dict) -> bool:
    return float(row["constants"].get("variance", 0.0)) == 0.0 and not row["constants"].get("stochastic", False)


def _base(check: Check, th: Theorem) -> dict[str, Any]:
    return {
        "key": check.key, "algorithm": check.algorithm, "kind": check.kind, "cells": list(check.cells),
        "metric": check.metric, "statistic": check.statistic, "theorem": th.key, "theorem_title": th.title,
        "source": th.source, "provenance": check.provenance or th.provenance,
        "category": category_of(check.provenance or th.provenance),
        "claim": check.claim, "notes": check.notes, "figure": check.figure, "mutant": check.mutant,
        "assess": check.assess,
    }


def _finish(out: dict, outcome: Outcome, estimate: float, ci, expected: str) -> dict:
    if not out.get("assess", True):
        outcome = Outcome("MEASURED", f"measured, not judged (no planted bug breaks this claim); {outcome.reason}")
    verdict = gate(outcome, out["provenance"]).to_dict()
    out.update(estimate=float(estimate), ci=[float(ci[0]), float(ci[1])], expected=expected, **verdict)
    return out


def _target_text(low, high) -> str:
    if low is not None and high is not None:
        return f"[{low:+.3f}, {high:+.3f}]"
    return f">= {low:+.3f}" if low is not None else f"<= {high:+.3f}"


def _slope(check: Check, th: Theorem, rows: Mapping[str, dict], n_resamples: int, seed: int) -> dict:
    row = rows[check.cells[0]]
    T_all = row["horizons"]
    idx = _window_index(T_all, check.window)
    T = np.asarray(T_all, dtype=float)[idx]
    Y = row_values(row, check.metric)[idx]
    fit = stats.bootstrap_loglog_slope(T, Y, check.statistic, n_resamples=n_resamples, seed=seed)
    low, high = check.low, check.high
    how = ""
    if check.high_from_bound:
        values = {"d": float(np.prod(row["constants"]["shape"]))}
        if row["spec"]["schedule"]["kind"] == "mars_theory":
            values["s"] = float(row["spec"]["schedule"]["s"])
        bound_slope, how = bound_window_slope(th, T[0], T[-1], values, noiseless=_noiseless(row))
        high = bound_slope + check.slack
        how = f"; upper end = {how} ({bound_slope:+.3f}) + slack {check.slack:.2f}"
    outcome = stats.judge_interval(fit.ci, low=low, high=high, max_width=check.max_width, what="slope")
    out = _base(check, th)
    out["fit"] = fit.to_dict()
    out["window"] = [int(T[0]), int(T[-1])]
    expected = f"slope {_target_text(low, high)}{how}"
    return _finish(out, outcome, fit.slope, fit.ci, expected)


def _bound_values(row: dict, T: int) -> dict[str, float]:
    c = row["constants"]
    sched = row["spec"]["schedule"]
    values = {"L": float(c["L"]), "Delta": float(c["delta"]), "sigma": math.sqrt(float(c.get("variance", 0.0))), "T": T}
    if sched["kind"] == "constant":
        values["eta"] = float(sched["eta"])
    elif sched["kind"] == "one_over_L":
        values["eta"] = 1.0 / float(c["L"])
    elif sched["kind"] == "inverse_sqrt_horizon":
        values["eta0"] = float(sched["eta0"])
        values["eta"] = float(sched["eta0"]) / math.sqrt(T)
    return values


def _bound(check: Check, th: Theorem, rows: Mapping[str, dict], n_resamples: int, seed: int) -> dict:
    if not th.explicit:
        raise ValueError(f"check {check.key}: theorem {th.key} has no explicit constants")
    row = rows[check.cells[0]]
    T_all = row["horizons"]
    idx = _window_index(T_all, check.window)
    Y = row_values(row, check.metric)
    out = _base(check, th)
    points, worst_ratio, fails, straddles, violated = [], -math.inf, [], [], []
    for i in idx:
        T = int(T_all[i])
        values = _bound_values(row, T)
        if values["eta"] * values["L"] > 1.0 + 1e-12:
            violated.append(T)
        bound = th.evaluate({k: v for k, v in values.items() if SYMBOLS[k] in th.bound.free_symbols})
        est = stats.bootstrap_statistic(Y[i], check.statistic, n_resamples=n_resamples, seed=seed + i)
        ratio = est.estimate / bound
        worst_ratio = max(worst_ratio, ratio)
        points.append({"T": T, "estimate": est.estimate, "ci": list(est.ci), "bound": bound, "ratio": ratio})
        if est.ci[0] > bound:
            fails.append(T)
        elif est.ci[1] > bound:
            straddles.append(T)
    out["points"] = points
    out["window"] = [int(T_all[idx[0]]), int(T_all[idx[-1]])]
    expected = f"{check.statistic} of {check.metric} <= {th.bound} at every T in the window"
    if violated:
        outcome = Outcome("INCONCLUSIVE", f"the theorem needs η <= 1/L, violated at T = {violated}: the bound does not apply")
    elif fails:
        outcome = Outcome("FAIL", f"the measured {check.statistic} lies above the bound at T = {fails} "
                                        f"(largest ratio measured/bound {worst_ratio:.3g})")
    elif straddles:
        outcome = Outcome("INCONCLUSIVE", f"the interval straddles the bound at T = {straddles}")
    else:
        outcome = Outcome("PASS", f"under the bound at every T of the window (largest ratio measured/bound "
                                        f"{worst_ratio:.3g})")
    return _finish(out, outcome, worst_ratio, (worst_ratio, worst_ratio), expected)


def _same_seeds(a: dict, b: dict) -> bool:
    return a["seeds"] == b["seeds"] and a["spec"]["noise"] == b["spec"]["noise"] and a["spec"]["problem"] == b["spec"]["problem"]


def _common_window(check: Check, a: dict, b: dict) -> tuple[np.ndarray, list[int], list[int]]:
    common = [T for T in a["horizons"] if T in b["horizons"]]
    if check.window is not None:
        common = [T for T in common if check.window[0] <= T <= check.window[1]]
    if len(common) < 2:
        raise ValueError(f"check {check.key}: the cells share fewer than 2 horizons in the window")
    return np.asarray(common, float), [a["horizons"].index(T) for T in common], [b["horizons"].index(T) for T in common]


def _gap(check: Check, th: Theorem, rows: Mapping[str, dict], n_resamples: int, seed: int) -> dict:
    a, b = rows[check.cells[0]], rows[check.cells[1]]
    T, ia, ib = _common_window(check, a, b)
    Ya, Yb = row_values(a, check.metric)[ia], row_values(b, check.metric)[ib]
    paired = _same_seeds(a, b)
    diff = stats.bootstrap_slope_difference(T, Ya, Yb, check.statistic, paired=paired, n_resamples=n_resamples, seed=seed)
    fa = stats.bootstrap_loglog_slope(T, Ya, check.statistic, n_resamples=n_resamples, seed=seed + 1)
    fb = stats.bootstrap_loglog_slope(T, Yb, check.statistic, n_resamples=n_resamples, seed=seed + 2)
    outcome = stats.judge_interval(diff.ci, low=check.low, high=check.high, max_width=check.max_width, what="slope gap")
    if check.require_disjoint and outcome.outcome == "PASS" and not (fa.ci[1] < fb.ci[0] or fb.ci[1] < fa.ci[0]):
        outcome = Outcome("INCONCLUSIVE", f"{outcome.reason}, but the two slope intervals overlap "
                                                f"({[round(v, 3) for v in fa.ci]} and {[round(v, 3) for v in fb.ci]})")
    out = _base(check, th)
    out.update(fits=[fa.to_dict(), fb.to_dict()], paired=paired, window=[int(T[0]), int(T[-1])])
    expected = f"slope({check.cells[0]}) − slope({check.cells[1]}) {_target_text(check.low, check.high)}" + (
        " with disjoint slope intervals" if check.require_disjoint else "")
    return _finish(out, outcome, diff.estimate, diff.ci, expected)


def _order(check: Check, th: Theorem, rows: Mapping[str, dict], n_resamples: int, seed: int) -> dict:
    a, b = rows[check.cells[0]], rows[check.cells[1]]
    T, ia, ib = _common_window(check, a, b)
    va, vb = row_values(a, check.metric)[ia[-1]], row_values(b, check.metric)[ib[-1]]
    paired = _same_seeds(a, b)
    est = stats.bootstrap_log_ratio(va, vb, check.statistic, paired=paired, n_resamples=n_resamples, seed=seed)
    outcome = stats.judge_interval(est.ci, low=check.low, high=check.high, max_width=check.max_width, what="log ratio")
    out = _base(check, th)
    out.update(paired=paired, T=int(T[-1]))
    expected = f"log({check.statistic}[{check.cells[0]}] / {check.statistic}[{check.cells[1]}]) at T = {int(T[-1])} " \
               f"{_target_text(check.low, check.high)}"
    return _finish(out, outcome, est.estimate, est.ci, expected)


def _delta(check: Check, th: Theorem, rows: Mapping[str, dict], n_resamples: int, seed: int) -> dict:
    row = rows[check.cells[0]]
    idx = _window_index(row["horizons"], check.window)
    values = row_values(row, check.metric)[idx[-1]]
    levels = [stats.parse_statistic(s)[1] for s in check.levels]
    est = stats.bootstrap_quantile_exponent(values, levels, n_resamples=n_resamples, seed=seed)
    outcome = stats.judge_interval(est.ci, low=check.low, high=check.high, max_width=check.max_width,
                                   what="d log q/d log(1/δ)")
    out = _base(check, th)
    q = {s: float(np.quantile(values, lv)) for s, lv in zip(check.levels, levels)}
    out.update(T=int(row["horizons"][idx[-1]]), quantiles=q)
    expected = f"d log q_(1−δ) / d log(1/δ) over δ ∈ {[round(1 - lv, 4) for lv in levels]} {_target_text(check.low, check.high)}"
    return _finish(out, outcome, est.estimate, est.ci, expected)


def _dim(check: Check, th: Theorem, rows: Mapping[str, dict], n_resamples: int, seed: int) -> dict:
    cells = [rows[k] for k in check.cells]
    dims = [float(np.prod(r["constants"]["shape"])) for r in cells]
    T = [r["horizons"][_window_index(r["horizons"], check.window)[-1]] for r in cells]
    if len(set(T)) != 1:
        raise ValueError(f"check {check.key}: the cells' largest horizons in the window differ ({T})")
    samples = [row_values(r, check.metric)[r["horizons"].index(T[0])] for r in cells]
    est = stats.bootstrap_loglog_slope_across(dims, samples, check.statistic, n_resamples=n_resamples, seed=seed)
    outcome = stats.judge_interval(est.ci, low=check.low, high=check.high, max_width=check.max_width, what="d-exponent")
    out = _base(check, th)
    out.update(T=int(T[0]), dims=dims, values=[float(stats.seed_statistic(v, check.statistic)) for v in samples])
    expected = f"exponent of d in {check.statistic}[{check.metric}] at T = {T[0]} {_target_text(check.low, check.high)}"
    return _finish(out, outcome, est.estimate, est.ci, expected)


_KINDS = {"slope": _slope, "bound": _bound, "gap": _gap, "order": _order, "delta": _delta, "dim": _dim}


def _diverged(check: Check, rows: Mapping[str, dict]) -> list[str]:
    out = []
    for key in check.cells:
        values = row_values(rows[key], check.metric)
        if not np.all(np.isfinite(values)):
            out.append(f"{key} ({int((~np.isfinite(values)).sum())} non-finite values)")
    return out


def evaluate_check(check: Check, rows: Mapping[str, dict], *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict:
    """The result of one check (a plain dict; see the module docstring). Missing rows raise ``KeyError``.

    A cell whose metric holds NaN/Inf (a diverged run) fails its claim: no rate can be fitted and the
    quantity the theorem bounds is not even finite.
    """
    for key in check.cells:
        if key not in rows:
            raise KeyError(f"check {check.key}: no stored row for cell {key!r}")
    th = theorem(check.theorem)
    diverged = _diverged(check, rows)
    if diverged:
        out = _base(check, th)
        outcome = Outcome("FAIL", f"the run diverged: {', '.join(diverged)}")
        return _finish(out, outcome, math.nan, (math.nan, math.nan), "a finite metric")
    return _KINDS[check.kind](check, th, rows, n_resamples, seed)


def evaluate_checks(checks, rows: Mapping[str, dict], *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> list[dict]:
    """Every check whose cells are stored; a check that cannot be evaluated is reported with its error."""
    out = []
    for i, check in enumerate(checks):
        if not all(k in rows for k in check.cells):
            continue
        try:
            out.append(evaluate_check(check, rows, n_resamples=n_resamples, seed=seed + 7919 * i))
        except (ValueError, KeyError) as exc:
            th = theorem(check.theorem)
            res = _base(check, th)
            res.update(error_verdict(f"{type(exc).__name__}: {exc}", res["provenance"],
                                     asserted=th.assertable and check.assess).to_dict(),
                       estimate=math.nan, ci=[math.nan, math.nan], expected="")
            out.append(res)
    return out
