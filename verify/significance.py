r"""The significance rule for two methods measured over independent seeds: Welch's t-test and TOST.

Each seed of a training protocol gives one number per method (its final evaluation loss, say); seeds are
the independent units. Two samples ``a`` (the method) and ``b`` (the baseline) are compared by **Welch's
unequal-variance t-test**:

.. math::

    t = \frac{\bar a - \bar b}{\sqrt{s_a^2/n_a + s_b^2/n_b}}, \qquad
    \nu = \frac{(s_a^2/n_a + s_b^2/n_b)^2}{\frac{(s_a^2/n_a)^2}{n_a - 1} + \frac{(s_b^2/n_b)^2}{n_b - 1}}

(:math:`s^2` the unbiased sample variances, :math:`\nu` the Welch–Satterthwaite degrees of freedom), with
the **two-sided** p-value from Student's t with :math:`\nu` degrees of freedom. The rule, with
:data:`ALPHA` = 0.01 (the threshold modded-nanogpt asks of a new record):

* **difference** (:func:`welch`): significant when ``p < alpha``; its direction is the sign of
  :math:`\bar a - \bar b` ("lower" or "higher"); otherwise "no significant difference";
* **equivalence within a margin** :math:`\delta` (:func:`equivalence`, two one-sided tests): the
  :math:`(1 - 2\alpha)` confidence interval of :math:`\bar a - \bar b` (Welch's standard error and
  :math:`\nu`) lies inside :math:`(-\delta, \delta)`: "equivalent"; it lies entirely outside
  :math:`[-\delta, \delta]`: "not equivalent"; otherwise "undecided". The TOST p-value is the larger of
  the two one-sided p-values.

Degenerate samples are handled explicitly rather than by NaN: fewer than two values or a non-finite value
is a ``ValueError``; when both samples have zero variance, equal means give ``p = 1`` and different
means ``p = 0`` (the seeds agree exactly, so the difference is exact).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

__all__ = ["ALPHA", "Difference", "Equivalence", "welch", "equivalence"]

#: the significance level of every protocol verdict
ALPHA = 0.01


@dataclass(frozen=True)
class Difference:
    """Welch's t-test of ``mean(a) − mean(b)``."""

    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    std_a: float  #: sample standard deviation (ddof = 1)
    std_b: float
    difference: float  #: mean_a − mean_b
    standard_error: float
    t: float
    df: float
    p: float  #: two-sided
    alpha: float

    @property
    def significant(self) -> bool:
        return self.p < self.alpha

    @property
    def direction(self) -> str:
        """``"lower"`` / ``"higher"`` (a against b) when significant, else ``"no significant difference"``."""
        if not self.significant:
            return "no significant difference"
        return "lower" if self.difference < 0 else "higher"

    def to_dict(self) -> dict:
        return {**asdict(self), "significant": self.significant, "direction": self.direction}

    def text(self, unit: str = "") -> str:
        unit = f" {unit}" if unit else ""
        return (f"difference {self.difference:+.4g}{unit} (Welch t = {self.t:.3g}, df = {self.df:.3g}, "
                f"two-sided p = {self.p:.2g} {'<' if self.significant else '>='} {self.alpha:g})")


@dataclass(frozen=True)
class Equivalence:
    """Two one-sided tests of ``|mean(a) − mean(b)| < margin``."""

    difference: Difference
    margin: float
    low: float  #: the (1 − 2 alpha) confidence interval of the difference
    high: float
    p: float  #: the TOST p-value (the larger one-sided p)

    @property
    def verdict(self) -> str:
        if -self.margin < self.low and self.high < self.margin:
            return "equivalent"
        if self.low > self.margin or self.high < -self.margin:
            return "not equivalent"
        return "undecided"

    def to_dict(self) -> dict:
        return {"difference": self.difference.to_dict(), "margin": self.margin, "low": self.low, "high": self.high,
                "p": self.p, "verdict": self.verdict}

    def text(self, unit: str = "") -> str:
        unit = f" {unit}" if unit else ""
        level = 1 - 2 * self.difference.alpha
        return (f"{level:.0%} interval of the difference [{self.low:+.4g}, {self.high:+.4g}]{unit} against the margin "
                f"±{self.margin:.4g}{unit} (TOST p = {self.p:.2g}): {self.verdict}")


def _moments(name: str, values: Sequence[float]) -> tuple[int, float, float]:
    values = [float(v) for v in values]
    if len(values) < 2:
        raise ValueError(f"{name} needs at least 2 values (seeds), got {len(values)}")
    bad = [v for v in values if not math.isfinite(v)]
    if bad:
        raise ValueError(f"{name} has non-finite values {bad}")
    n = len(values)
    mean = math.fsum(values) / n
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return n, mean, var


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must lie in (0, 0.5), got {alpha}")


def welch(a: Sequence[float], b: Sequence[float], alpha: float = ALPHA) -> Difference:
    """Welch's t-test of ``a`` against ``b`` (module docstring)."""
    from scipy import stats

    _check_alpha(alpha)
    n_a, mean_a, var_a = _moments("a", a)
    n_b, mean_b, var_b = _moments("b", b)
    diff = mean_a - mean_b
    va, vb = var_a / n_a, var_b / n_b
    se = math.sqrt(va + vb)
    if se == 0.0:
        t, df, p = (0.0, math.inf, 1.0) if diff == 0 else (math.copysign(math.inf, diff), math.inf, 0.0)
    else:
        t = diff / se
        df = (va + vb) ** 2 / ((va**2 / (n_a - 1) if va else 0.0) + (vb**2 / (n_b - 1) if vb else 0.0))
        p = float(2 * stats.t.sf(abs(t), df))
    return Difference(n_a, n_b, mean_a, mean_b, math.sqrt(var_a), math.sqrt(var_b), diff, se, t, df, p, alpha)


def equivalence(a: Sequence[float], b: Sequence[float], margin: float, alpha: float = ALPHA) -> Equivalence:
    """Two one-sided tests of ``|mean(a) − mean(b)| < margin`` (module docstring)."""
    from scipy import stats

    if not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin > 0):
        raise ValueError(f"margin must be a positive finite number, got {margin!r}")
    d = welch(a, b, alpha)
    if d.standard_error == 0.0:
        inside = abs(d.difference) < margin
        return Equivalence(d, float(margin), d.difference, d.difference, 0.0 if inside else 1.0)
    half = float(stats.t.ppf(1 - alpha, d.df)) * d.standard_error
    p_low = float(stats.t.sf((d.difference + margin) / d.standard_error, d.df))  # H0: diff <= -margin
    p_high = float(stats.t.cdf((d.difference - margin) / d.standard_error, d.df))  # H0: diff >= margin
    return Equivalence(d, float(margin), d.difference - half, d.difference + half, max(p_low, p_high))
