r"""Gradient-rank decay on the A − BWC problem: the theory, the runs, the checks and their figures (docs/rank.md; GaLore Lemma 3.3).

Problem: :class:`synthetic.problems.MatrixQuadratic`,
:math:`f(W) = \frac1N\sum_i [\tfrac12\operatorname{tr}(W^\top B_i W C_i) - \operatorname{tr}(A_i^\top W)]`,
gradient :math:`G(W) = \frac1N\sum_i (B_i W C_i - A_i)` (this toolkit's single convention: :math:`G = \nabla f`
and :math:`W \leftarrow W - \eta G`; the papers write :math:`G = -\nabla f`, :math:`W \leftarrow W + \eta G`,
which flips the sign of every :math:`G_t` and changes no rank quantity). Full-batch gradient descent
is the registry's ``sgd`` (no momentum) with :math:`\eta = 1/L`, :math:`L = \lambda_{\max}(S)`,
:math:`W_0 = 0`.

**Theory used** (docs/rank.md §2 [D]). With :math:`S = \frac1N\sum_i C_i\otimes B_i` (column-major
vec), :math:`\operatorname{vec} G_{t+1} = (I - \eta S)\operatorname{vec} G_t`, so
:math:`\operatorname{vec} G_t = \sum_j (1-\eta\lambda_j)^t c_j v_j` with :math:`c = V^\top \operatorname{vec} G_0`.
:class:`AbcTheory` computes, from the eigen-decomposition of S alone (never from the optimizer run):

* :math:`\lambda_1 < \lambda_2`: the two smallest distinct eigenvalues that :math:`G_0` *excites*
  (:math:`|c_j| > 10^{-12}\max|c|`; eigenvalues within :math:`10^{-9}\lambda_{\max}` form one cluster);
  :math:`\rho = (1-\eta\lambda_2)/(1-\eta\lambda_1)`;
* :math:`G_\parallel`, the projection of :math:`G_0` on the :math:`\lambda_1`-eigenspace, and
  :math:`\operatorname{sr}_\infty = \operatorname{sr}(G_\parallel)` (:math:`= \operatorname{sr}(\operatorname{unvec} v_1)`
  when :math:`\lambda_1` is simple);
* GaLore Lemma 3.3's bound (:math:`t_0 = 0`):
  :math:`\operatorname{sr}(G_t) \le \operatorname{sr}(G_\parallel) + \rho^{2t}\,\|G_0 - G_\parallel\|_F^2/\|G_\parallel\|_2^2`;
* the closed-form trajectory :math:`G_t/(1-\eta\lambda_1)^t` (rescaled, so it can be evaluated at any t
  without underflow; stable rank and κ are scale-free).

**Float floor** (trap 1): measurements stop at the first step with
:math:`\|G_t\|_F < 10^3\,\texttt{eps}\,\|G_0\|_F` (:func:`synthetic.spectrum.steps_before_floor`).

**Round-off model** for "measured == closed form" [D]: each GD step adds rounding errors of size
:math:`\texttt{eps}\|W\|` to the iterate; propagated through :math:`\sum_j (I-\eta S)^j S` they give a gradient
error :math:`\|\delta G_t\|_F \lesssim (2 + \kappa_S \ln(t+1))\,\texttt{eps}\,\|G_0\|_F` (:math:`\kappa_S = L/\mu`), and the
stable rank's relative sensitivity is at most :math:`4\|\delta G\|_F/\|G\|_F`. The tolerance at step t is
therefore :math:`4(2 + \kappa_S\ln(t+1))\,\texttt{eps}\,\|G_0\|_F/\|G_t\|_F + 10^{-13}`.

Checks (:mod:`verify.rank.checks`; each returns a :class:`verify.verdicts.Outcome` whose ``data`` holds the
traces written to results/rank/ and drawn by :mod:`verify.rank.figures`):

Instances: ``quick=False`` (``verify rank --full``, the committed results/rank/) uses 32 × 48 matrices and
the eigenvalue range [1, 10] of docs/rank.md §4; ``quick=True`` (the test suite and ``verify check``)
uses 16 × 24 and [1, 4], which reaches the float floor in a few hundred steps instead of thousands.

1. :func:`check_lemma33` — GaLore Lemma 3.3 / prediction (i), N = 1 on a *gapped* instance (B, C
   spectra :math:`\{1\} \cup [2, \text{top}]`, so that the bound becomes informative before the float
   floor; on the log-spaced [1, 10] instance of §4 the bound's constant is ~3e3 and :math:`\rho \approx 0.9995`,
   so it stays vacuous up to the floor). Pass: the measured trajectory equals the closed form (round-off
   model), the bound holds at every measured step up to round-off and is *tested* (informative,
   :math:`\text{bound} - \operatorname{sr}_\infty < 1`, and above round-off) on at least
   :data:`MIN_TESTED_STEPS` steps, and the fitted decay of :math:`\operatorname{sr}(G_t) - \operatorname{sr}_\infty`
   is at least as fast as :math:`\rho^{2}` per step.
2. :func:`check_rank_one_limit` — AdaRankGrad's "rank → 1" (docs/rank.md §2): on
   ``MatrixQuadratic.random`` instances for N = 1, 4, 16: the measured trajectory equals the closed form, the closed
   form at :math:`t = 10^7` equals :math:`\operatorname{sr}(G_\parallel)`, and the limit is 1 exactly when
   :math:`\operatorname{unvec} v_1` is rank one (N = 1: decomposable; N > 1: not, limit > 1 — the caveat).
3. :func:`check_noise_effect` — trap 2: with additive Gaussian noise (:mod:`synthetic.noise`) the
   *observed* gradient's stable rank falls first and then climbs back to the noise level (the mean stable
   rank of the noise matrices themselves), its energy rank rises, while the clean gradient
   :math:`E[G_t]` (= the noiseless run, by linearity [D]) keeps decaying.
4. :func:`check_adarankgrad_trace` — the rank :math:`r_t` AdaRankGrad chooses at each refresh equals the
   energy rank of that step's gradient computed here (exact SVD, kept fraction τ ⇔ ε = 1 − τ, clamped to
   [r_min, r_max]); the trace is recorded on the clean problem and at two noise levels. The trend (the
   rank falls, and under strong noise rises again near convergence, docs/rank.md §3) is reported, not
   asserted: no decay theorem covers Adam dynamics (docs/rank.md §2).
"""

from .checks import (
    CHECKS,
    MIN_TESTED_STEPS,
    RankCheck,
    check_adarankgrad_trace,
    check_lemma33,
    check_noise_effect,
    check_rank_one_limit,
    noise_level,
    run_checks,
)
from .diagnostics import rank_summary, rank_trace, rank_traces, refresh_steps
from .figures import make_figures
from .runs import GDTrace, RecordingOracle, roundoff_tolerance, run_gd, steps_to_floor
from .theory import EPS_LEVELS, AbcTheory, gapped_problem, unvec, vec

__all__ = [
    "EPS_LEVELS", "vec", "unvec", "gapped_problem", "AbcTheory", "GDTrace", "RecordingOracle", "steps_to_floor",
    "run_gd", "roundoff_tolerance", "noise_level", "MIN_TESTED_STEPS", "RankCheck",
    "check_lemma33", "check_rank_one_limit", "check_noise_effect", "check_adarankgrad_trace",
    "CHECKS", "run_checks", "make_figures", "refresh_steps", "rank_trace", "rank_traces", "rank_summary",
]
