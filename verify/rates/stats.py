r"""Statistics of rate checks: seed statistics, log-log slope fits with bootstrap intervals, verdicts.

**Data layout.** A cell's measurements of one metric form an array ``Y`` of shape ``[n_T, S]``:
row ``k`` holds the metric at horizon :math:`T_k` for each of the ``S`` seeds (independent random
streams). Rows may come from one anytime run (constant step size: every horizon is a prefix of the
same trajectories) or from one run per horizon (η = η0/√T); either way column ``s`` is seed ``s``.

**Seed statistic.** Expectation claims use the mean over seeds; high-probability claims ("with
probability ≥ 1−δ") use the empirical (1−δ)-quantile across seeds (``"q0.99"`` for δ = 0.01,
numpy's default linear interpolation between order statistics).

**Slope.** The ordinary least-squares slope of :math:`\log y_k` against :math:`\log T_k`, where
:math:`y_k` is the seed statistic at :math:`T_k`.

**Bootstrap.** Seeds are the independent units, so the bootstrap resamples *seeds* (columns of
``Y``, jointly across all horizons: the horizons of an anytime run share trajectories and are
correlated), recomputes the seed statistic at every horizon and refits the slope
(:func:`scipy.stats.bootstrap`, BCa by default; percentile where BCa is undefined). A deterministic
cell (every seed identical, e.g. σ = 0 from a common start) has a zero-width interval, reported as such.
Differences of slopes between two cells (:func:`bootstrap_slope_difference`) resample the seeds of
both cells *paired* when both ran on the same seed streams (same seed ids), which removes the
common noise, and independently otherwise.

**Verdicts** (:func:`judge_interval`). A claim is a target region for an estimated quantity
(``low <= slope <= high``; either end may be open). With the bootstrap interval ``[lo, hi]``:

=============== ==================================================================================
``FAIL``        the interval lies entirely outside the target (decisive even when it is wide)
``INCONCLUSIVE`` the interval is wider than ``max_width`` (too wide to support a pass), or it
                straddles an end of the target
``PASS``        the interval lies entirely inside the target
=============== ==================================================================================

:func:`verify.verdicts.gate` then applies the provenance rule (``docs/verdicts.md``): a claim
whose source is reconstructed or second-hand ([U], [S], [A], [F], [T]) is **reported, never
passed**: its outcome is shown as ``CONSISTENT`` / ``INCONSISTENT`` / ``INCONCLUSIVE`` and it is
marked not asserted.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from verify.verdicts import Outcome, Verdict, gate  # noqa: F401 - the one verdict vocabulary, re-exported

__all__ = [
    "VERDICTS",
    "parse_statistic",
    "seed_statistic",
    "loglog_fit",
    "SlopeFit",
    "DifferenceFit",
    "IntervalEstimate",
    "bootstrap_loglog_slope",
    "bootstrap_slope_difference",
    "bootstrap_log_ratio",
    "bootstrap_statistic",
    "quantile_band",
    "bootstrap_quantile_exponent",
    "bootstrap_loglog_slope_across",
    "Outcome",
    "Verdict",
    "judge_interval",
    "gate",
]

VERDICTS = ("PASS", "FAIL", "INCONCLUSIVE")
BOOTSTRAP_METHODS = ("BCa", "percentile", "basic")


# ----------------------------------------------------------------------------- seed statistics
def parse_statistic(statistic: str) -> tuple[str, float | None]:
    """``"mean"`` -> ``("mean", None)``; ``"q0.99"`` -> ``("quantile", 0.99)`` (the (1−δ)-quantile, δ = 0.01)."""
    if not isinstance(statistic, str):
        raise TypeError(f"statistic must be a str ('mean' or 'q<level>', e.g. 'q0.99'), got {type(statistic).__name__}")
    if statistic == "mean":
        return "mean", None
    match = re.fullmatch(r"q(0?\.\d+)", statistic)
    if match:
        level = float(match.group(1))
        if 0.0 < level < 1.0:
            return "quantile", level
    raise ValueError(f"statistic must be 'mean' or 'q<level>' with 0 < level < 1 (e.g. 'q0.9'), got {statistic!r}")


def seed_statistic(values: np.ndarray, statistic: str = "mean", axis: int = -1) -> np.ndarray:
    """The mean or the empirical quantile of ``values`` over the seed axis."""
    kind, level = parse_statistic(statistic)
    values = np.asarray(values, dtype=np.float64)
    if kind == "mean":
        return values.mean(axis=axis)
    return np.quantile(values, level, axis=axis)


# ----------------------------------------------------------------------------- the fit
def _check_horizons(horizons: Sequence[float]) -> np.ndarray:
    T = np.asarray(horizons, dtype=np.float64)
    if T.ndim != 1 or T.size < 2:
        raise ValueError(f"horizons must be a 1-D sequence of at least 2 values, got shape {T.shape}")
    if not np.all(np.isfinite(T)) or np.any(T <= 0):
        raise ValueError("horizons must be finite and > 0")
    if np.unique(T).size < 2:
        raise ValueError("horizons must hold at least 2 distinct values to fit a slope")
    return T


def loglog_fit(horizons: Sequence[float], y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Least-squares ``(slope, intercept)`` of :math:`\log y` on :math:`\log T`, over the last axis of ``y``.

    ``y`` has shape ``[..., n_T]``; the result has shape ``[...]``. Non-positive or non-finite ``y``
    raises ``ValueError`` (a log-log fit needs positive values).
    """
    T = _check_horizons(horizons)
    y = np.asarray(y, dtype=np.float64)
    if y.shape[-1] != T.size:
        raise ValueError(f"y has {y.shape[-1]} values on its last axis but there are {T.size} horizons")
    if not np.all(np.isfinite(y)) or np.any(y <= 0):
        bad = y[~(np.isfinite(y) & (y > 0))]
        raise ValueError(f"a log-log fit needs finite positive values; got {bad.size} bad value(s), e.g. {bad.flat[0]!r}")
    x = np.log(T)
    x_centered = x - x.mean()
    logy = np.log(y)
    slope = (logy * x_centered).sum(axis=-1) / (x_centered**2).sum()
    intercept = logy.mean(axis=-1) - slope * x.mean()
    return slope, intercept


@dataclass(frozen=True)
class SlopeFit:
    """A fitted log-log slope with its bootstrap interval (see the module docstring)."""

    slope: float
    intercept: float  #: natural-log intercept: log y ≈ intercept + slope · log T
    ci: tuple[float, float]
    confidence: float
    method: str  #: "BCa", "percentile", "basic" or "deterministic"
    statistic: str
    horizons: tuple[float, ...]
    center: tuple[float, ...]  #: the seed statistic at each horizon
    n_seeds: int
    n_resamples: int
    note: str = ""

    @property
    def width(self) -> float:
        return self.ci[1] - self.ci[0]

    def predict(self, T: float | np.ndarray) -> np.ndarray:
        return np.exp(self.intercept + self.slope * np.log(np.asarray(T, dtype=np.float64)))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ci"] = list(self.ci)
        out["horizons"] = list(self.horizons)
        out["center"] = list(self.center)
        return out


@dataclass(frozen=True)
class IntervalEstimate:
    """A scalar estimate with a bootstrap interval (slope differences, log-ratios, statistics)."""

    estimate: float
    ci: tuple[float, float]
    confidence: float
    method: str
    what: str
    n_resamples: int
    note: str = ""

    @property
    def width(self) -> float:
        return self.ci[1] - self.ci[0]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ci"] = list(self.ci)
        return out


DifferenceFit = IntervalEstimate


def _check_matrix(name: str, Y: np.ndarray, n_T: int | None = None) -> np.ndarray:
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim != 2:
        raise ValueError(f"{name} must have shape [n_T, S] (horizons x seeds), got {Y.shape}")
    if n_T is not None and Y.shape[0] != n_T:
        raise ValueError(f"{name} has {Y.shape[0]} rows but there are {n_T} horizons")
    if Y.shape[1] < 2:
        raise ValueError(f"{name} needs at least 2 seeds (columns) for a bootstrap, got {Y.shape[1]}")
    if not np.all(np.isfinite(Y)):
        raise ValueError(f"{name} holds non-finite values (a diverged run?); a rate cannot be fitted")
    return Y


def _check_bootstrap_args(confidence: float, n_resamples: int, method: str) -> None:
    if not (isinstance(confidence, (int, float)) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if not isinstance(n_resamples, int) or isinstance(n_resamples, bool) or n_resamples < 100:
        raise ValueError(f"n_resamples must be an int >= 100, got {n_resamples!r}")
    if method not in BOOTSTRAP_METHODS:
        raise ValueError(f"method must be one of {BOOTSTRAP_METHODS}, got {method!r}")


def _run_bootstrap(data: tuple[np.ndarray, ...], statistic, *, paired: bool, confidence: float, n_resamples: int,
                   method: str, seed: int) -> tuple[tuple[float, float], str, str]:
    """scipy's bootstrap over seed indices; falls back from BCa to percentile when BCa is undefined."""
    from scipy.stats import bootstrap

    def attempt(m: str):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = bootstrap(data, statistic, n_resamples=n_resamples, vectorized=True, paired=paired, axis=-1,
                            confidence_level=confidence, method=m, rng=np.random.default_rng(seed))
        return float(res.confidence_interval.low), float(res.confidence_interval.high)

    ci = attempt(method)
    if all(math.isfinite(v) for v in ci):
        return ci, method, ""
    fallback = attempt("percentile")
    return fallback, "percentile", f"{method} interval undefined (degenerate resampling distribution); percentile used"


def bootstrap_loglog_slope(
    horizons: Sequence[float],
    Y: np.ndarray,
    statistic: str = "mean",
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    method: str = "BCa",
    seed: int = 0,
) -> SlopeFit:
    """Fit the log-log slope of ``seed_statistic(Y)`` against ``horizons`` with a seed-bootstrap interval."""
    T = _check_horizons(horizons)
    Y = _check_matrix("Y", Y, T.size)
    parse_statistic(statistic)
    _check_bootstrap_args(confidence, n_resamples, method)
    center = seed_statistic(Y, statistic)
    slope, intercept = loglog_fit(T, center)
    common = dict(slope=float(slope), intercept=float(intercept), confidence=float(confidence), statistic=statistic,
                  horizons=tuple(float(t) for t in T), center=tuple(float(c) for c in center), n_seeds=Y.shape[1])
    if np.all(Y == Y[:, :1]):
        return SlopeFit(ci=(float(slope), float(slope)), method="deterministic", n_resamples=0,
                        note="every seed gave the same values (deterministic cell): zero-width interval", **common)

    def stat(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        sample = Y[:, idx.astype(np.intp)]  # [n_T, ..., S]
        per_T = seed_statistic(sample, statistic, axis=-1)  # [n_T, ...]
        return loglog_fit(T, np.moveaxis(per_T, 0, -1))[0]

    ci, used, note = _run_bootstrap((np.arange(Y.shape[1]),), stat, paired=False, confidence=confidence,
                                    n_resamples=n_resamples, method=method, seed=seed)
    return SlopeFit(ci=ci, method=used, n_resamples=n_resamples, note=note, **common)


def bootstrap_slope_difference(
    horizons: Sequence[float],
    Ya: np.ndarray,
    Yb: np.ndarray,
    statistic: str = "mean",
    *,
    paired: bool,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    method: str = "BCa",
    seed: int = 0,
) -> IntervalEstimate:
    """``slope(Ya) − slope(Yb)`` over the same horizons, with a paired or independent seed bootstrap."""
    T = _check_horizons(horizons)
    Ya, Yb = _check_matrix("Ya", Ya, T.size), _check_matrix("Yb", Yb, T.size)
    _check_bootstrap_args(confidence, n_resamples, method)
    if paired and Ya.shape[1] != Yb.shape[1]:
        raise ValueError(f"paired=True needs the same seeds in both cells, got {Ya.shape[1]} and {Yb.shape[1]} columns")

    def slope_of(Y, idx):
        per_T = seed_statistic(Y[:, idx.astype(np.intp)], statistic, axis=-1)
        return loglog_fit(T, np.moveaxis(per_T, 0, -1))[0]

    estimate = float(slope_of(Ya, np.arange(Ya.shape[1])) - slope_of(Yb, np.arange(Yb.shape[1])))
    what = f"slope difference ({statistic})"
    if np.all(Ya == Ya[:, :1]) and np.all(Yb == Yb[:, :1]):
        return IntervalEstimate(estimate, (estimate, estimate), confidence, "deterministic", what, 0,
                                "both cells are deterministic: zero-width interval")
    if paired:
        data = (np.arange(Ya.shape[1]),)

        def stat(idx, axis=-1):
            return slope_of(Ya, idx) - slope_of(Yb, idx)
    else:
        data = (np.arange(Ya.shape[1]), np.arange(Yb.shape[1]))

        def stat(ia, ib, axis=-1):
            return slope_of(Ya, ia) - slope_of(Yb, ib)

    ci, used, note = _run_bootstrap(data, stat, paired=False, confidence=confidence, n_resamples=n_resamples,
                                    method=method, seed=seed)
    return IntervalEstimate(estimate, ci, confidence, used, what, n_resamples, note)


def bootstrap_log_ratio(
    a: np.ndarray,
    b: np.ndarray,
    statistic: str = "mean",
    *,
    paired: bool,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    method: str = "BCa",
    seed: int = 0,
) -> IntervalEstimate:
    """``log(stat(a) / stat(b))`` for two per-seed samples (an ordering at one horizon)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    _check_bootstrap_args(confidence, n_resamples, method)
    for name, v in (("a", a), ("b", b)):
        if v.size < 2 or not np.all(np.isfinite(v)) or np.any(v <= 0):
            raise ValueError(f"{name} must hold at least 2 finite positive values")
    if paired and a.size != b.size:
        raise ValueError("paired=True needs the same number of seeds in a and b")

    def lr(x, y, axis=-1):
        return np.log(seed_statistic(x, statistic, axis=-1)) - np.log(seed_statistic(y, statistic, axis=-1))

    estimate = float(lr(a, b))
    what = f"log ratio ({statistic})"
    if np.all(a == a[0]) and np.all(b == b[0]):
        return IntervalEstimate(estimate, (estimate, estimate), confidence, "deterministic", what, 0,
                                "both samples are constant: zero-width interval")
    if paired:
        ci, used, note = _run_bootstrap((np.arange(a.size),), lambda i, axis=-1: lr(a[i.astype(np.intp)], b[i.astype(np.intp)]),
                                        paired=False, confidence=confidence, n_resamples=n_resamples, method=method,
                                        seed=seed)
    else:
        ci, used, note = _run_bootstrap((a, b), lr, paired=False, confidence=confidence, n_resamples=n_resamples,
                                        method=method, seed=seed)
    return IntervalEstimate(estimate, ci, confidence, used, what, n_resamples, note)


def bootstrap_statistic(values: np.ndarray, statistic: str = "mean", *, confidence: float = 0.95,
                        n_resamples: int = 2000, method: str = "BCa", seed: int = 0) -> IntervalEstimate:
    """The seed statistic of one sample with a bootstrap interval (used by explicit-bound checks)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    _check_bootstrap_args(confidence, n_resamples, method)
    if v.size < 2 or not np.all(np.isfinite(v)):
        raise ValueError("values must hold at least 2 finite numbers")
    estimate = float(seed_statistic(v, statistic))
    if np.all(v == v[0]):
        return IntervalEstimate(estimate, (estimate, estimate), confidence, "deterministic", statistic, 0,
                                "constant sample: zero-width interval")
    ci, used, note = _run_bootstrap((v,), lambda x, axis=-1: seed_statistic(x, statistic, axis=-1), paired=False,
                                    confidence=confidence, n_resamples=n_resamples, method=method, seed=seed)
    return IntervalEstimate(estimate, ci, confidence, used, statistic, n_resamples, note)


def quantile_band(Y: np.ndarray, levels: tuple[float, float] = (0.1, 0.9)) -> tuple[np.ndarray, np.ndarray]:
    """Per-horizon quantiles of the metric across seeds (the bands drawn in the figures)."""
    Y = np.asarray(Y, dtype=np.float64)
    lo, hi = levels
    if not (0.0 <= lo < hi <= 1.0):
        raise ValueError(f"levels must satisfy 0 <= low < high <= 1, got {levels}")
    return np.quantile(Y, lo, axis=-1), np.quantile(Y, hi, axis=-1)


# ----------------------------------------------------------------------------- verdicts
def _fmt(v: float) -> str:
    return f"{v:+.3f}" if abs(v) < 1e3 else f"{v:.3e}"


def _target_text(low: float | None, high: float | None, what: str) -> str:
    if low is not None and high is not None:
        return f"{_fmt(low)} <= {what} <= {_fmt(high)}"
    if low is not None:
        return f"{what} >= {_fmt(low)}"
    return f"{what} <= {_fmt(high)}"


def judge_interval(
    ci: tuple[float, float],
    *,
    low: float | None = None,
    high: float | None = None,
    max_width: float | None = None,
    what: str = "slope",
) -> Outcome:
    """Compare an interval with the target ``[low, high]`` (see the module docstring for the rule)."""
    if low is None and high is None:
        raise ValueError("judge_interval needs a target: low, high or both")
    if low is not None and high is not None and low > high:
        raise ValueError(f"low must be <= high, got low={low}, high={high}")
    lo, hi = float(ci[0]), float(ci[1])
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise ValueError(f"ci must be a finite interval (lo <= hi), got {ci}")
    if max_width is not None and max_width <= 0:
        raise ValueError(f"max_width must be > 0, got {max_width}")
    target = _target_text(low, high, what)
    shown = f"{what} CI [{_fmt(lo)}, {_fmt(hi)}]"
    if (high is not None and lo > high) or (low is not None and hi < low):
        return Outcome("FAIL", f"{shown} lies outside the claim {target}")
    if max_width is not None and hi - lo > max_width:
        return Outcome("INCONCLUSIVE", f"{shown} is too wide (width {hi - lo:.3f} > {max_width:.3f}) to decide {target}")
    if (low is None or lo >= low) and (high is None or hi <= high):
        return Outcome("PASS", f"{shown} lies inside the claim {target}")
    edge = high if (high is not None and hi > high) else low
    return Outcome("INCONCLUSIVE", f"{shown} straddles {_fmt(edge)}, an end of the claim {target}")


def bootstrap_quantile_exponent(values: np.ndarray, levels: Sequence[float], *, confidence: float = 0.95,
                                n_resamples: int = 2000, method: str = "BCa", seed: int = 0) -> IntervalEstimate:
    r"""The slope of :math:`\log q_{1-\delta}` against :math:`\log(1/\delta)` over the given quantile levels.

    A sub-gaussian tail gives :math:`q_{1-\delta} \approx a + b\log(1/\delta)`, a slope well below 1
    that shrinks as δ → 0; a tail like :math:`P(X > x) \sim 1/x` (Markov-tight) gives slope 1.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    lv = np.asarray(levels, dtype=np.float64)
    _check_bootstrap_args(confidence, n_resamples, method)
    if lv.size < 2 or np.any(lv <= 0) or np.any(lv >= 1) or np.unique(lv).size != lv.size:
        raise ValueError(f"levels must be >= 2 distinct values in (0, 1), got {list(levels)}")
    if v.size < 2 or not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ValueError("values must hold at least 2 finite positive numbers")
    inv_delta = 1.0 / (1.0 - lv)

    def exponent(x, axis=-1):
        q = np.quantile(x, lv, axis=-1)  # [n_levels, ...]
        return loglog_fit(inv_delta, np.moveaxis(q, 0, -1))[0]

    estimate = float(exponent(v))
    what = "d log q / d log(1/δ)"
    if np.all(v == v[0]):
        return IntervalEstimate(estimate, (estimate, estimate), confidence, "deterministic", what, 0,
                                "constant sample: zero-width interval")
    ci, used, note = _run_bootstrap((v,), exponent, paired=False, confidence=confidence, n_resamples=n_resamples,
                                    method=method, seed=seed)
    return IntervalEstimate(estimate, ci, confidence, used, what, n_resamples, note)


def bootstrap_loglog_slope_across(xs: Sequence[float], samples: Sequence[np.ndarray], statistic: str = "mean", *,
                                  confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> IntervalEstimate:
    r"""Log-log slope of a seed statistic across independent cells (e.g. one cell per dimension d).

    Each cell's seeds are resampled independently (percentile bootstrap; the cells share no seed pairing).
    """
    x = _check_horizons(xs)
    if len(samples) != x.size:
        raise ValueError(f"samples has {len(samples)} cells but there are {x.size} x values")
    vals = [np.asarray(s, dtype=np.float64).ravel() for s in samples]
    for v in vals:
        if v.size < 2 or not np.all(np.isfinite(v)) or np.any(v <= 0):
            raise ValueError("every cell needs at least 2 finite positive values")
    _check_bootstrap_args(confidence, n_resamples, "percentile")
    center = np.array([seed_statistic(v, statistic) for v in vals])
    estimate = float(loglog_fit(x, center)[0])
    rng = np.random.default_rng(seed)
    boot = np.empty((n_resamples, x.size))
    for j, v in enumerate(vals):
        idx = rng.integers(0, v.size, size=(n_resamples, v.size))
        boot[:, j] = seed_statistic(v[idx], statistic, axis=-1)
    slopes = loglog_fit(x, boot)[0]
    alpha = (1 - confidence) / 2
    ci = (float(np.quantile(slopes, alpha)), float(np.quantile(slopes, 1 - alpha)))
    return IntervalEstimate(estimate, ci, confidence, "percentile", f"d-exponent ({statistic})", n_resamples)
