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

__all__ = ["evaluate_check", "evaluate_checks", "evaluate_alternative", "gate_result", "margin_in_se", "stationarity", "bound_window_slope", "DEFAULT_RESAMPLES"]

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
        "claim": check.claim, "notes": check.notes, "figure": check.figure, "mutants": list(check.mutants),
        "assess": check.assess, "resolution": check.resolution, "one_sided": check.one_sided,
        "tight_from": check.tight_from,
    }


_Z95 = 1.959963984540054


def margin_in_se(estimate: float, ci, low: float | None, high: float | None) -> float | None:
    """Distance from the estimate to the nearest end of the target, in bootstrap standard errors
    (SE = CI width / (2·1.96)); negative outside the target, ±inf for a zero-width interval."""
    if not math.isfinite(estimate) or (low is None and high is None):
        return None
    gaps = [g for g in ((estimate - low) if low is not None else None, (high - estimate) if high is not None else None)
            if g is not None]
    nearest = min(gaps)
    se = (float(ci[1]) - float(ci[0])) / (2 * _Z95)
    if not se > 0:
        return math.copysign(math.inf, nearest) if nearest else 0.0
    return nearest / se


def _finish(out: dict, outcome: Outcome, estimate: float, ci, expected: str, target=(None, None)) -> dict:
    """Record the statistical outcome; the verdict comes from :func:`gate_result` (after power is known)."""
    out.update(estimate=float(estimate), ci=[float(ci[0]), float(ci[1])], expected=expected, outcome=outcome.outcome,
               reason=outcome.reason, target=[target[0], target[1]],
               margin_se=margin_in_se(float(estimate), ci, *target) if outcome.outcome != "MEASURED" else None)
    return out


def gate_result(out: dict, power: dict | None = None) -> dict:
    """Apply the provenance rule, the check's ``assess`` flag and its measured power to a result."""
    outcome = Outcome(out["outcome"], out["reason"])
    if not out.get("assess", True):
        why = out.get("notes") or "no planted bug was found that breaks this claim"
        outcome = Outcome("MEASURED", f"measured, not judged ({why}); {outcome.reason}")
    because = ""
    assess = True
    if power is not None:
        out["power"] = power
        if power["measured"] and not power["powered"]:
            assess, because = False, f"no power: {power['why']}"
    out.update(gate(outcome, out["provenance"], assess=assess, not_assessed_because=because).to_dict())
    return out


def _target_text(low, high) -> str:
    if low is not None and high is not None:
        return f"[{low:+.3f}, {high:+.3f}]"
    return f">= {low:+.3f}" if low is not None else f"<= {high:+.3f}"


def _halves(n: int) -> tuple[slice, slice] | None:
    """The first and the last ceil(n/2) points of a window of n horizons (sharing the middle when n is odd)."""
    if n < 3:
        return None
    h = (n + 1) // 2
    return slice(0, h), slice(n - h, n)


def stationarity(T: np.ndarray, centers: np.ndarray, tolerance: float | None) -> dict[str, Any] | None:
    """Local slopes of the two halves of the window; stationary when they differ by at most ``tolerance``."""
    halves = _halves(len(T))
    if halves is None or tolerance is None:
        return None
    first = float(stats.loglog_fit(T[halves[0]], centers[halves[0]])[0])
    second = float(stats.loglog_fit(T[halves[1]], centers[halves[1]])[0])
    return {"first_half": first, "second_half": second, "difference": second - first, "tolerance": tolerance,
            "stationary": abs(second - first) <= tolerance}


def _apply_stationarity(outcome: Outcome, st: dict | None, what: str) -> Outcome:
    if st is None or st["stationary"] or outcome.outcome != "PASS":
        return outcome
    return Outcome("INCONCLUSIVE", f"{outcome.reason}, but the window is not stationary: the local {what} of its "
                                   f"halves are {st['first_half']:+.3f} and {st['second_half']:+.3f} (differ by "
                                   f"{abs(st['difference']):.3f} > {st['tolerance']:.3f})")


def mars_b5_violations(row: dict) -> list[str]:
    r"""Theorem B.5's hypotheses on a ``mars_theory`` cell: :math:`q = 1/3`, :math:`c \ge 32L^2/\rho^2 + 1`,
    :math:`s \ge 8L^3/\rho^3`, :math:`\eta_1 = \eta_0 (s+1)^{-1/3} \le \rho/(2L)`, γ = 1, with L the
    per-sample smoothness (Assumption B.2) and ρ the preconditioner's lower bound (Assumption B.3:
    1 for H = I, ε for Adam's diag(√v + ε))."""
    sched, hyper = row["spec"]["schedule"], row["spec"]["hyper"]
    if sched.get("kind") != "mars_theory":
        return ["the schedule is not Theorem B.5's (mars_theory)"]
    L = float(row["constants"].get("L_sample", row["constants"]["L"]))
    rho = 1.0 if hyper.get("preconditioner") == "identity" else float(hyper.get("eps", 1e-8))
    q, c, s = float(sched.get("q", 1.0 / 3.0)), float(sched["c"]), float(sched["s"])
    eta1 = float(sched["eta0"]) * (s + 1.0) ** (-q)
    out = []
    if abs(q - 1.0 / 3.0) > 1e-12:
        out.append(f"η_t ∝ (s+t)^(-{q:.3f}), not (s+t)^(-1/3)")
    if c < 32 * L**2 / rho**2 + 1 - 1e-9:
        out.append(f"c = {c:g} < 32L²/ρ² + 1 = {32 * L**2 / rho**2 + 1:.4g}")
    if s < 8 * L**3 / rho**3 - 1e-9:
        out.append(f"s = {s:g} < 8L³/ρ³ = {8 * L**3 / rho**3:.4g}")
    if eta1 > rho / (2 * L) + 1e-12:
        out.append(f"η_1 = {eta1:.4g} > ρ/(2L) = {rho / (2 * L):.4g}")
    if float(hyper.get("gamma", 0.025)) != 1.0:
        out.append(f"γ = {hyper.get('gamma', 0.025)} (the theorem takes γ_t = 1)")
    return out


#: run-time checks of a theorem's hypotheses on a cell (a violated hypothesis: the claim does not apply)
PREMISES = {"mars_theorem_b5": mars_b5_violations}


def _premises(check: Check, th: Theorem, outcome: Outcome, row: dict, window_start: int) -> Outcome:
    check_fn = PREMISES.get(th.key)
    violated = check_fn(row) if check_fn is not None else []
    if violated:
        return Outcome("INCONCLUSIVE", f"{th.title}: its hypotheses fail on this cell ({'; '.join(violated)}), "
                                       f"so the claim does not apply (measured: {outcome.reason})")
    if check.tight_from is not None and window_start < check.tight_from:
        return Outcome("INCONCLUSIVE", f"pre-asymptotic window: it starts at T = {window_start}, before T = "
                                       f"{check.tight_from} where the cell makes the bound tight (measured: "
                                       f"{outcome.reason})")
    return outcome


def _slope(check: Check, th: Theorem, rows: Mapping[str, dict], n_resamples: int, seed: int, guard: bool = True) -> dict:
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
        if row["spec"]["schedule"]["kind"] in ("mars_theory", "anytime_power"):
            values["s"] = float(row["spec"]["schedule"]["s"])
        bound_slope, how = bound_window_slope(th, T[0], T[-1], values, noiseless=_noiseless(row))
        high = bound_slope + check.slack
        how = f"; upper end = {how} ({bound_slope:+.3f}) + slack {check.slack:.2f}"
    outcome = stats.judge_interval(fit.ci, low=low, high=high, max_width=check.max_width, what="slope")
    tolerance = check.stationarity_tolerance()
    if check.high_from_bound and low is not None and check.stationarity is None:
        tolerance = (high - low) / 2
    st = stationarity(T, np.asarray(fit.center), tolerance)
    outcome = _apply_stationarity(outcome, st, "slopes")
    if guard and check.assess:
        outcome = _premises(check, th, outcome, row, int(T[0]))
    out = _base(check, th)
    out["fit"] = fit.to_dict()
    out["window"] = [int(T[0]), int(T[-1])]
    out["stationarity"] = st
    expected = f"slope {_target_text(low, high)}{how}"
    return _finish(out, outcome, fit.slope, fit.ci, expected, (low, high))


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


def _gap(check: Check, th: Theorem, rows: Mapping[str, dict], n_resamples: int, seed: int, guard: bool = True) -> dict:
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
    gap_centers = np.asarray(fa.center) / np.asarray(fb.center)  # the local slope of a ratio is the local gap
    st = stationarity(T, gap_centers, check.stationarity_tolerance())
    outcome = _apply_stationarity(outcome, st, "slope gaps")
    if guard and check.assess:
        outcome = _premises(check, th, outcome, a, int(T[0]))
    out = _base(check, th)
    out.update(fits=[fa.to_dict(), fb.to_dict()], paired=paired, window=[int(T[0]), int(T[-1])], stationarity=st)
    expected = f"slope({check.cells[0]}) − slope({check.cells[1]}) {_target_text(check.low, check.high)}" + (
        " with disjoint slope intervals" if check.require_disjoint else "")
    return _finish(out, outcome, diff.estimate, diff.ci, expected, (check.low, check.high))


def _tuned(check: Check, rows: Mapping[str, dict]) -> tuple[list[str], list[dict]]:
    """Reduce each tune group of ``check.cells`` to its best cell: the smallest seed statistic at the
    largest horizon of the window (a tuned step size). Without groups, the cells themselves."""
    if not check.tune_groups:
        return list(check.cells), []
    chosen, info, start = [], [], 0
    for size in check.tune_groups:
        group = check.cells[start:start + size]
        start += size
        scores = {}
        for key in group:
            row = rows[key]
            idx = _window_index(row["horizons"], check.window)
            values = row_values(row, check.metric)[idx[-1]]
            scores[key] = float(stats.seed_statistic(values, check.statistic)) if np.all(np.isfinite(values)) else math.inf
        best = min(group, key=lambda k: scores[k])
        if not math.isfinite(scores[best]):
            raise ValueError(f"check {check.key}: every candidate of {list(group)} diverged")
        chosen.append(best)
        info.append({"candidates": list(group), "scores": [scores[k] for k in group], "chosen": best})
    return chosen, info


def _oracle_calls(row: dict) -> int:
    """Gradient evaluations per step: exact MARS evaluates the sample gradient at two points."""
    return 2 if row["spec"]["hyper"].get("estimator") in ("exact", "exact_lookahead") else 1


def _order(check: Check, th: Theorem, rows: Mapping[str, dict], n_resamples: int, seed: int) -> dict:
    (key_a, key_b), tuning = _tuned(check, rows)
    a, b = rows[key_a], rows[key_b]
    if check.equal_calls:
        T, ia, ib = _equal_calls_window(check, a, b)
    else:
        T, ia, ib = _common_window(check, a, b)
        T = (T, T)
    va, vb = row_values(a, check.metric)[ia[-1]], row_values(b, check.metric)[ib[-1]]
    paired = _same_seeds(a, b)
    est = stats.bootstrap_log_ratio(va, vb, check.statistic, paired=paired, n_resamples=n_resamples, seed=seed)
    outcome = stats.judge_interval(est.ci, low=check.low, high=check.high, max_width=check.max_width, what="log ratio")
    out = _base(check, th)
    Ta, Tb = int(T[0][-1]), int(T[1][-1])
    out.update(paired=paired, T=Ta, T_other=Tb, compared=[key_a, key_b], tuning=tuning)
    where = f"at T = {Ta}" if Ta == Tb else f"at equal gradient evaluations (T = {Ta} vs {Tb})"
    expected = f"log({check.statistic}[{key_a}] / {check.statistic}[{key_b}]) {where} {_target_text(check.low, check.high)}"
    return _finish(out, outcome, est.estimate, est.ci, expected, (check.low, check.high))


def _equal_calls_window(check: Check, a: dict, b: dict):
    ratio = _oracle_calls(a) / _oracle_calls(b)
    pairs = [(T, int(round(T * ratio))) for T in a["horizons"] if int(round(T * ratio)) in b["horizons"]]
    if check.window is not None:
        pairs = [(Ta, Tb) for Ta, Tb in pairs if check.window[0] <= Ta <= check.window[1]]
    if not pairs:
        raise ValueError(f"check {check.key}: no horizon of {b['key']} matches {a['key']}'s at equal gradient "
                         f"evaluations (ratio {ratio:g})")
    Ta = np.asarray([p[0] for p in pairs], float)
    Tb = np.asarray([p[1] for p in pairs], float)
    return (Ta, Tb), [a["horizons"].index(int(t)) for t in Ta], [b["horizons"].index(int(t)) for t in Tb]


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
    return _finish(out, outcome, est.estimate, est.ci, expected, (check.low, check.high))


def _dim(check: Check, th: Theorem, rows: Mapping[str, dict], n_resamples: int, seed: int) -> dict:
    keys, tuning = _tuned(check, rows)
    cells = [rows[k] for k in keys]
    dims = [float(np.prod(r["constants"]["shape"])) for r in cells]
    T = [r["horizons"][_window_index(r["horizons"], check.window)[-1]] for r in cells]
    if len(set(T)) != 1:
        raise ValueError(f"check {check.key}: the cells' largest horizons in the window differ ({T})")
    out = _base(check, th)
    out.update(T=int(T[0]), dims=dims, compared=keys, tuning=tuning)
    expected = f"exponent of d in {check.statistic}[{check.metric}] at T = {T[0]} {_target_text(check.low, check.high)}"
    if tuning:  # the figure's d-exponent is that of the 1/√T term: fit it only where the T-slope confirms that regime
        slopes = {}
        for k, r in zip(keys, cells):
            idx = _window_index(r["horizons"], check.window)
            center = stats.seed_statistic(row_values(r, check.metric)[idx], check.statistic)
            slopes[k] = float(stats.loglog_fit(np.asarray(r["horizons"], float)[idx], center)[0])
        out["t_slopes"] = slopes
        off = {k: v for k, v in slopes.items() if abs(v + 0.5) > 0.1}
        if off:
            outcome = Outcome("INCONCLUSIVE", "d-exponent not fitted: the T-slope of the tuned cells is not −1/2 ± 0.1 "
                                              "(" + ", ".join(f"{k}: {v:+.3f}" for k, v in off.items()) + ")")
            return _finish(out, outcome, math.nan, (math.nan, math.nan), expected, (check.low, check.high))
    samples = [row_values(r, check.metric)[r["horizons"].index(T[0])] for r in cells]
    est = stats.bootstrap_loglog_slope_across(dims, samples, check.statistic, n_resamples=n_resamples, seed=seed)
    outcome = stats.judge_interval(est.ci, low=check.low, high=check.high, max_width=check.max_width, what="d-exponent")
    out.update(values=[float(stats.seed_statistic(v, check.statistic)) for v in samples])
    return _finish(out, outcome, est.estimate, est.ci, expected, (check.low, check.high))


_KINDS = {"slope": _slope, "bound": _bound, "gap": _gap, "order": _order, "delta": _delta, "dim": _dim}


def _diverged(check: Check, rows: Mapping[str, dict]) -> list[str]:
    out = []
    for key in check.cells:
        values = row_values(rows[key], check.metric)
        if not np.all(np.isfinite(values)):
            out.append(f"{key} ({int((~np.isfinite(values)).sum())} non-finite values)")
    return out


def _evaluate_raw(check: Check, rows: Mapping[str, dict], n_resamples: int, seed: int, guard: bool = True) -> dict:
    """The statistical outcome of one check, before the gate. ``guard=False`` (power alternatives) skips the
    theorem's hypotheses and the tight-regime horizon: an alternative is judged on the statistic alone."""
    for key in check.cells:
        if key not in rows:
            raise KeyError(f"check {check.key}: no stored row for cell {key!r}")
    th = theorem(check.theorem)
    diverged = [] if check.tune_groups else _diverged(check, rows)
    if diverged:
        out = _base(check, th)
        outcome = Outcome("FAIL", f"the run diverged: {', '.join(diverged)}")
        return _finish(out, outcome, math.nan, (math.nan, math.nan), "a finite metric")
    if check.kind in ("slope", "gap"):
        return _KINDS[check.kind](check, th, rows, n_resamples, seed, guard=guard)
    return _KINDS[check.kind](check, th, rows, n_resamples, seed)


def evaluate_check(check: Check, rows: Mapping[str, dict], *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> dict:
    """The result of one check (a plain dict; see the module docstring), gated without power.
    Missing rows raise ``KeyError``.

    A cell whose metric holds NaN/Inf (a diverged run) fails its claim: no rate can be fitted and the
    quantity the theorem bounds is not even finite.
    """
    return gate_result(_evaluate_raw(check, rows, n_resamples, seed))


def evaluate_alternative(check: Check, rows: Mapping[str, dict], *, n_resamples: int = DEFAULT_RESAMPLES,
                         seed: int = 0) -> dict:
    """A check's statistical outcome on an alternative (a planted bug, another schedule or method): the
    statistic alone, without the theorem's premises. Rejected means ``outcome == "FAIL"``."""
    return _evaluate_raw(check, rows, n_resamples, seed, guard=False)


def _error_result(check: Check, exc: Exception) -> dict:
    th = theorem(check.theorem)
    res = _base(check, th)
    res.update(error_verdict(f"{type(exc).__name__}: {exc}", res["provenance"],
                             asserted=th.assertable and check.assess).to_dict(),
               estimate=math.nan, ci=[math.nan, math.nan], expected="")
    return res


def evaluate_checks(checks, rows: Mapping[str, dict], *, n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                    power_plan: Mapping[str, list] | None = None) -> list[dict]:
    """Every check whose cells are stored; a check that cannot be evaluated is reported with its error.

    ``power_plan`` (:func:`verify.rates.power.alternative_grid`): each check's alternatives, evaluated
    from their stored rows (missing ones count as not measured) and folded into the verdict.
    """
    from .power import summarize_power

    out = []
    for i, check in enumerate(checks):
        if not all(k in rows for k in check.cells):
            continue
        try:
            raw = _evaluate_raw(check, rows, n_resamples, seed + 7919 * i)
        except (ValueError, KeyError) as exc:
            out.append(_error_result(check, exc))
            continue
        power = None
        if power_plan is not None and check.key in power_plan:
            evaluated = []
            for j, (alt, alt_check) in enumerate(power_plan[check.key]):
                if not all(k in rows for k in alt_check.cells):
                    evaluated.append((alt, None))
                    continue
                try:
                    evaluated.append((alt, _evaluate_raw(alt_check, rows, n_resamples, seed + 7919 * i + 101 * (j + 1),
                                                         guard=False)))
                except (ValueError, KeyError) as exc:
                    evaluated.append((alt, {"outcome": "ERROR", "reason": f"{type(exc).__name__}: {exc}",
                                            "estimate": math.nan}))
            power = summarize_power(check, evaluated)
        out.append(gate_result(raw, power))
    return out
