r"""Gradient-rank decay checks on the A − BWC problem (rank-decay.md §1–4; galore.md §B4 prediction (i)).

Problem: :class:`synthetic.problems.MatrixQuadratic`,
:math:`f(W) = \frac1N\sum_i [\tfrac12\operatorname{tr}(W^\top B_i W C_i) - \operatorname{tr}(A_i^\top W)]`,
gradient :math:`G(W) = \frac1N\sum_i (B_i W C_i - A_i)` (this toolkit's single convention: :math:`G = \nabla f`
and :math:`W \leftarrow W - \eta G`; the papers write :math:`G = -\nabla f`, :math:`W \leftarrow W + \eta G`,
which flips the sign of every :math:`G_t` and changes no rank quantity). Full-batch gradient descent
is the registry's ``sgd`` (no momentum) with :math:`\eta = 1/L`, :math:`L = \lambda_{\max}(S)`,
:math:`W_0 = 0`.

**Theory used** (derived in rank-decay.md §2 [D]). With :math:`S = \frac1N\sum_i C_i\otimes B_i` (column-major
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
:math:`\|G_t\|_F < 10^3\,\texttt{eps}\,\|G_0\|_F` (:func:`verify.spectrum.steps_before_floor`).

**Round-off model** for "measured == closed form" [D]: each GD step adds rounding errors of size
:math:`\texttt{eps}\|W\|` to the iterate; propagated through :math:`\sum_j (I-\eta S)^j S` they give a gradient
error :math:`\|\delta G_t\|_F \lesssim (2 + \kappa_S \ln(t+1))\,\texttt{eps}\,\|G_0\|_F` (:math:`\kappa_S = L/\mu`), and the
stable rank's relative sensitivity is at most :math:`4\|\delta G\|_F/\|G\|_F`. The tolerance at step t is
therefore :math:`4(2 + \kappa_S\ln(t+1))\,\texttt{eps}\,\|G_0\|_F/\|G_t\|_F + 10^{-13}`.

Checks (each returns ``(passed, detail, payload)``; ``payload`` holds the traces written to
results/rank/ and drawn by :func:`make_figures`):

Instances: ``quick=False`` (``verify rank --full``, the committed results/rank/) uses 32 × 48 matrices and
the eigenvalue range [1, 10] of rank-decay.md §4; ``quick=True`` (the test suite and ``verify check``)
uses 16 × 24 and [1, 4], which reaches the float floor in a few hundred steps instead of thousands.

1. :func:`check_lemma33` — GaLore Lemma 3.3 / prediction (i), N = 1 on a *gapped* instance (B, C
   spectra :math:`\{1\} \cup [2, \text{top}]`, so that the bound becomes informative before the float
   floor; on the log-spaced [1, 10] instance of §4 the bound's constant is ~3e3 and :math:`\rho \approx 0.9995`,
   so it stays vacuous up to the floor). Pass: the measured trajectory equals the closed form (round-off
   model), the bound holds at every measured step up to round-off and is *tested* (informative,
   :math:`\text{bound} - \operatorname{sr}_\infty < 1`, and above round-off) on at least
   :data:`MIN_TESTED_STEPS` steps, and the fitted decay of :math:`\operatorname{sr}(G_t) - \operatorname{sr}_\infty`
   is at least as fast as :math:`\rho^{2}` per step.
2. :func:`check_rank_one_limit` — AdaRankGrad's "rank → 1" (rank-decay.md §2): on
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
   rank falls, and under strong noise rises again near convergence, rank-decay.md §3) is reported, not
   asserted: no decay theorem covers Adam dynamics (rank-decay.md, "Do not generalise").
"""

from __future__ import annotations

import contextlib
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from synthetic.noise import AdditiveNoise
from synthetic.oracle import Oracle
from synthetic.problems import MatrixQuadratic
from synthetic.problems.quadratic_cosine import haar_orthogonal
from synthetic.rng import SeedStreams
from synthetic.metrics import METRICS, state_value
from synthetic.runner import run as run_synthetic
from verify import spectrum as sp

__all__ = [
    "EPS_LEVELS", "vec", "unvec", "gapped_problem", "AbcTheory", "GDTrace", "RecordingOracle", "steps_to_floor",
    "run_gd", "roundoff_tolerance",
    "check_lemma33", "check_rank_one_limit", "check_noise_effect", "check_adarankgrad_trace",
    "run_checks", "make_figures", "FIGURES", "CHECKS",
]

EPS_LEVELS = (0.01, 0.1)
EXCITED = 1e-12  # |c_j| > EXCITED · max|c| counts as excited
CLUSTER = 1e-9  # eigenvalues within CLUSTER · λ_max are one eigenvalue


# ----------------------------------------------------------------------------- vec conventions
def vec(G: torch.Tensor) -> torch.Tensor:
    """Column-major vec of ``[..., m, n]`` (the convention of ``MatrixQuadratic.hessian_matrix``)."""
    return G.mT.reshape(*G.shape[:-2], -1)


def unvec(v: torch.Tensor, m: int, n: int) -> torch.Tensor:
    """Inverse of :func:`vec`: ``[..., m·n]`` → ``[..., m, n]``."""
    return v.reshape(*v.shape[:-1], n, m).mT


# ----------------------------------------------------------------------------- instances
def _psd(eigs: torch.Tensor, seed: int) -> torch.Tensor:
    q = haar_orthogonal(eigs.numel(), seed, eigs.dtype)
    mat = (q * eigs) @ q.T
    return 0.5 * (mat + mat.T)


def gapped_problem(m: int, n: int, N: int = 1, *, gap: float = 2.0, top: float = 10.0, seed: int = 0) -> MatrixQuadratic:
    r"""An A − BWC instance whose B, C spectra are :math:`\{1\} \cup \operatorname{logspace}(g, 10)` (Haar bases,
    Gaussian A), so that :math:`\lambda_2/\lambda_1 = g` and Lemma 3.3's bound becomes informative before the
    float floor."""
    def spectrum(k: int) -> torch.Tensor:
        rest = torch.logspace(math.log10(gap), math.log10(top), k - 1, dtype=torch.float64)
        return torch.cat([torch.ones(1, dtype=torch.float64), rest])

    B = torch.stack([_psd(spectrum(m), 7000 + 1000 * seed + 2 * i) for i in range(N)])
    C = torch.stack([_psd(spectrum(n), 7001 + 1000 * seed + 2 * i) for i in range(N)])
    A = torch.randn(N, m, n, generator=torch.Generator().manual_seed(7000 + seed), dtype=torch.float64)
    return MatrixQuadratic(A, B, C)


# ----------------------------------------------------------------------------- theory
@dataclass
class AbcTheory:
    """Everything the theory predicts for full-batch GD from :math:`W_0` (see the module docstring)."""

    m: int
    n: int
    lr: float
    eigenvalues: torch.Tensor
    eigenvectors: torch.Tensor
    coefficients: torch.Tensor  # c = Vᵀ vec G_0
    lambda1: float
    lambda2: float
    rho: float
    g_parallel: torch.Tensor
    sr_limit: float
    bound_constant: float
    lambda1_multiplicity: int
    v1_sigma_ratio: float  # σ₂/σ₁ of G∥ (0 ⇔ rank one ⇔ decomposable v₁)
    condition: float

    @classmethod
    def of(cls, problem: MatrixQuadratic, lr: float | None = None, W0: torch.Tensor | None = None) -> "AbcTheory":
        m, n = problem.shape
        lr = 1.0 / problem.L if lr is None else lr
        S = problem.hessian_matrix()
        lam, V = torch.linalg.eigh(S)
        W0 = problem.x0 if W0 is None else W0
        G0 = problem.grad(W0.unsqueeze(0))[0]
        c = V.T @ vec(G0)
        excited = c.abs() > EXCITED * c.abs().max()
        tol = CLUSTER * float(lam[-1])
        lam_e = lam[excited]
        l1 = float(lam_e[0])
        above = lam_e[lam_e - l1 > tol]
        if above.numel() == 0:
            raise ValueError("G_0 excites a single eigenvalue of S: there is no decay to measure")
        l2 = float(above[0])
        in1 = (lam - l1).abs() <= tol
        P1 = V[:, in1]
        g_par = unvec(P1 @ (P1.T @ vec(G0)), m, n)
        sig = sp.singular_values(g_par)
        sr_inf = float(sp.stable_rank(sig))
        K = float((G0 - g_par).square().sum() / sig[0] ** 2)
        return cls(m, n, lr, lam, V, c, l1, l2, (1 - lr * l2) / (1 - lr * l1), g_par, sr_inf, K, int(in1.sum()),
                   float(sig[1] / sig[0]) if sig.numel() > 1 else 0.0, problem.L / problem.mu)

    def closed_form(self, steps: torch.Tensor) -> torch.Tensor:
        r""":math:`G_t / (1-\eta\lambda_1)^t` for every t in ``steps`` (``[T, m, n]``)."""
        ratio = (1 - self.lr * self.eigenvalues) / (1 - self.lr * self.lambda1)
        t = steps.to(torch.float64)[:, None]
        # |ratio| <= 1 except on unexcited directions below λ1, whose coefficients are ~0: clamp them out
        weights = torch.where(self.coefficients.abs() > EXCITED * self.coefficients.abs().max(),
                              ratio[None, :] ** t, torch.zeros(()))
        return unvec((weights * self.coefficients[None, :]) @ self.eigenvectors.T, self.m, self.n)

    def bound(self, steps: torch.Tensor) -> torch.Tensor:
        """GaLore Lemma 3.3: sr(G∥) + ρ^{2t} ‖G_0 − G∥‖_F² / ‖G∥‖_2²."""
        return self.sr_limit + self.rho ** (2 * steps.to(torch.float64)) * self.bound_constant

    def summary(self) -> dict[str, Any]:
        return {"lr": self.lr, "lambda1": self.lambda1, "lambda2": self.lambda2, "rho": self.rho, "rho_squared": self.rho**2,
                "sr_limit": self.sr_limit, "bound_constant": self.bound_constant,
                "lambda1_multiplicity": self.lambda1_multiplicity, "g_parallel_sigma2_over_sigma1": self.v1_sigma_ratio,
                "hessian_condition": self.condition, "kappa_limit": math.sqrt(max(0.0, 1 - 1 / self.sr_limit))}


# ----------------------------------------------------------------------------- the run
@dataclass
class GDTrace:
    """Per-step gradients of one run (``[T, m, n]``, row t = the gradient at :math:`W_t`, t = 0 … T−1):
    ``clean`` = :math:`G(W_t)`, ``observed`` = what the optimizer received (clean + noise)."""

    clean: torch.Tensor
    observed: torch.Tensor
    measurable: int  # leading steps before the float floor of the clean gradient
    result: Any = None  # the synthetic.runner RunResult (metrics recorded by the runner)

    @property
    def steps(self) -> torch.Tensor:
        return torch.arange(self.clean.shape[0])


class RecordingOracle(Oracle):
    """The synthetic full-batch oracle (``sample=False``: the exact gradient, plus ``noise``) that also keeps
    what it returned for the first seed. A thin layer over :class:`synthetic.oracle.Oracle`: the runner
    records metrics of the iterate only, and the rank checks need the full gradient matrices."""

    def __init__(self, problem: MatrixQuadratic, noise: AdditiveNoise | None = None) -> None:
        super().__init__(problem, noise, sample=False)
        self.clean: list[torch.Tensor] = []
        self.observed: list[torch.Tensor] = []

    def __call__(self, x, streams, step):
        g, exact = super().__call__(x, streams, step)
        self.clean.append(exact[0].detach().clone())
        self.observed.append(g[0].detach().clone())
        return g, exact


def steps_to_floor(theory: AbcTheory, problem: MatrixQuadratic, margin: int = 20, cap: int = 20000) -> int:
    r"""Steps for the clean gradient to reach the float floor, from the theory alone: late in the run
    :math:`\|G_t\| pprox (1-\eta\lambda_1)^t \|G_\parallel\|`."""
    G0 = problem.grad(problem.x0.unsqueeze(0))[0]
    target = float(sp.float_floor_threshold(float(torch.linalg.matrix_norm(G0)), problem.dtype))
    ratio = target / float(torch.linalg.matrix_norm(theory.g_parallel))
    t = math.log(ratio) / math.log(1 - theory.lr * theory.lambda1)
    return min(cap, max(1, math.ceil(t)) + margin)


@contextlib.contextmanager
def _one_thread():
    """One intra-op thread while a run lasts (restored after): the runs are thousands of tiny matrix
    products, for which a second OpenMP thread only adds synchronisation. Results do not depend on it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_gd(problem: MatrixQuadratic, steps: int, *, hyper: dict[str, Any] | None = None,
           noise: AdditiveNoise | None = None, seed: int = 0, optimizer: str = "sgd",
           metrics: dict[str, Any] | None = None) -> GDTrace:
    """``steps`` steps of the registry optimizer ``optimizer`` (default plain ``sgd`` with η = 1/L: full-batch
    GD) on seed ``seed`` of ``problem`` through :func:`synthetic.runner.run`, recording the gradient matrix
    at every step (:class:`RecordingOracle`); ``metrics`` are recorded by the runner after every step
    (``result.trace[name][k]`` is the value after step k + 1)."""
    hyper = {"lr": 1.0 / problem.L} if hyper is None else hyper
    oracle = RecordingOracle(problem, noise)
    with _one_thread():
        result = run_synthetic(optimizer, hyper, problem, steps=steps, seeds=[seed], oracle=oracle,
                               metrics=metrics or {}, running=(),
                               record_steps=list(range(1, steps + 1)) if metrics else [steps])
    clean = torch.stack(oracle.clean)
    return GDTrace(clean, torch.stack(oracle.observed), int(sp.steps_before_floor(torch.linalg.matrix_norm(clean))),
                   result)


def roundoff_tolerance(norms: torch.Tensor, condition: float) -> torch.Tensor:
    """Relative tolerance on the stable rank at each step (module docstring, "Round-off model")."""
    t = torch.arange(norms.shape[0], dtype=torch.float64)
    eps = torch.finfo(norms.dtype).eps
    return 4 * (2 + condition * torch.log1p(t)) * eps * norms[0] / norms + 1e-13


def _agreement(trace: GDTrace, theory: AbcTheory) -> tuple[bool, float, torch.Tensor, torch.Tensor]:
    """Measured stable rank vs the closed form on the measurable steps: (ok, worst ratio to tolerance, sr, sr_cf)."""
    T = trace.measurable
    steps = trace.steps[:T]
    measured = sp.stable_rank(sp.singular_values(trace.clean[:T]))
    predicted = sp.stable_rank(sp.singular_values(theory.closed_form(steps)))
    tol = roundoff_tolerance(torch.linalg.matrix_norm(trace.clean[:T]), theory.condition)
    ratio = ((measured - predicted).abs() / predicted) / tol
    return bool((ratio <= 1).all()), float(ratio.max()), measured, predicted


def _decimate(T: int, points: int = 400) -> list[int]:
    """Indices 0..T−1: every step early, log-spaced late (for compact JSON traces)."""
    if T <= points:
        return list(range(T))
    lin = set(range(min(T, points // 2)))
    logs = torch.logspace(math.log10(max(1, points // 2)), math.log10(T - 1), points // 2).round().long().tolist()
    return sorted(lin | {int(i) for i in logs} | {T - 1})


def _series(x: torch.Tensor, idx: list[int]) -> list[float]:
    return [float(x[i]) for i in idx]


# ----------------------------------------------------------------------------- check 1: Lemma 3.3
MIN_TESTED_STEPS = 50


def check_lemma33(quick: bool = True, *, hyper: dict[str, Any] | None = None,
                  theory_fn: Callable[[MatrixQuadratic], AbcTheory] = AbcTheory.of) -> tuple[bool, str, dict[str, Any]]:
    """GaLore Lemma 3.3 on the gapped N = 1 instance (module docstring, check 1).

    The bound is compared with the measured stable rank up to the round-off tolerance; it is *tested*
    on the steps where it is informative (bound − sr∞ < 1) and still above round-off (bound − sr∞ >
    tolerance · sr), at least :data:`MIN_TESTED_STEPS` of them. The decay rate of sr − sr∞ is fitted
    (least squares on log) over the steps after the bound became informative where the excess is
    still 100× above round-off, and must not be slower than ρ² per step.
    """
    m, n = (16, 24) if quick else (32, 48)
    top = 4.0 if quick else 10.0  # quick: a condition number of 16 reaches the float floor in ~500 steps
    problem = gapped_problem(m, n, 1, gap=2.0, top=top, seed=0)
    theory = theory_fn(problem)
    trace = run_gd(problem, steps_to_floor(AbcTheory.of(problem), problem), hyper=hyper)
    ok_cf, worst, sr, sr_cf = _agreement(trace, theory)
    T = trace.measurable
    steps = trace.steps[:T]
    bound = theory.bound(steps)
    slack = roundoff_tolerance(torch.linalg.matrix_norm(trace.clean[:T]), theory.condition) * sr
    holds = bool((sr <= bound + slack).all())
    gap = bound - theory.sr_limit
    tested = (gap < 1) & (gap > slack)
    informative = (gap < 1).nonzero()
    informative_from = int(informative[0]) if informative.numel() else None
    excess = sr - theory.sr_limit
    usable = ((gap < 1) & (excess > 100 * slack)).nonzero().flatten()
    rate = None
    if usable.numel() >= 10:
        x = usable.to(torch.float64)
        y = excess[usable].log()
        slope = float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())
        rate = math.exp(slope)
    fast_enough = rate is not None and rate <= theory.rho**2 * (1 + 1e-9)
    passed = ok_cf and holds and int(tested.sum()) >= MIN_TESTED_STEPS and fast_enough
    detail = (f"{m}x{n}, N=1, spectra {{1}} ∪ [2, {top:g}]: rho^2 = {theory.rho**2:.6f}, fitted rate of sr-sr_inf = "
              f"{rate if rate is None else round(rate, 6)} over {usable.numel()} steps; bound holds on {T} steps: {holds} "
              f"(informative from t = {informative_from}, tested above round-off on {int(tested.sum())}); closed form "
              f"agreement worst {worst:.2g} of tolerance")
    idx = _decimate(T)
    payload = {"problem": {"m": m, "n": n, "N": 1, "instance": f"gapped: B, C spectra {{1}} ∪ logspace(2, {top:g})",
                           "seed": 0},
               "theory": theory.summary(), "measurable_steps": T, "observed_late_rate": rate,
               "informative_from": informative_from, "bound_holds": holds, "bound_tested_steps": int(tested.sum()),
               "rate_fit_steps": int(usable.numel()), "closed_form_ok": ok_cf,
               "closed_form_worst_ratio_to_tolerance": worst,
               "trace": {"step": idx, "stable_rank": _series(sr, idx), "closed_form": _series(sr_cf, idx),
                         "bound": _series(bound, idx), "roundoff": _series(slack, idx), "kappa": _series(sp.rank_one_residual(sp.singular_values(trace.clean[:T])), idx),
                         **{f"energy_rank_{e:g}": _series(sp.energy_rank(sp.singular_values(trace.clean[:T]), e), idx)
                            for e in EPS_LEVELS}}}
    return passed, detail, payload


# ----------------------------------------------------------------------------- check 2: the rank-one limit
def check_rank_one_limit(quick: bool = True, *, hyper: dict[str, Any] | None = None,
                         unvec_fn: Callable[[torch.Tensor, int, int], torch.Tensor] | None = None
                         ) -> tuple[bool, str, dict[str, Any]]:
    m, n = (16, 24) if quick else (32, 48)
    eig_range = (1.0, 4.0) if quick else (1.0, 10.0)  # full: the instances of rank-decay.md §4
    rows, ok, details = {}, True, []
    for N in (1, 4, 16):
        problem = MatrixQuadratic.random(m, n, N, eig_range=eig_range, seed=0)
        theory = AbcTheory.of(problem)
        trace = run_gd(problem, steps_to_floor(theory, problem), hyper=hyper)
        ok_cf, worst, sr, sr_cf = _agreement(trace, theory)
        far = theory.closed_form(torch.tensor([10**7]))[0]
        sr_far = float(sp.stable_rank(sp.singular_values(far)))
        if unvec_fn is not None:  # hook for planted bugs in the prediction of the limit
            v1 = theory.eigenvectors[:, (theory.eigenvalues - theory.lambda1).abs() <= CLUSTER * float(theory.eigenvalues[-1])][:, 0]
            limit = float(sp.stable_rank(sp.singular_values(unvec_fn(v1, m, n))))
        else:
            limit = theory.sr_limit
        converges = abs(sr_far - limit) <= 1e-10 * limit
        decomposable = theory.v1_sigma_ratio < 1e-8
        rank_one = abs(limit - 1) < 1e-10
        consistent = (decomposable == rank_one) and (N > 1 or decomposable)
        last = float(sr[-1])
        approaching = abs(last - limit) < 0.05 * abs(float(sr[0]) - limit)
        row_ok = ok_cf and converges and consistent and approaching
        ok &= row_ok
        rows[f"N={N}"] = {"theory": theory.summary(), "measurable_steps": trace.measurable, "closed_form_ok": ok_cf,
                          "closed_form_worst_ratio_to_tolerance": worst, "sr_at_1e7_closed_form": sr_far,
                          "predicted_limit_sr_unvec_v1": limit, "v1_decomposable": decomposable,
                          "limit_is_one": rank_one, "last_measured_sr": last, "first_sr": float(sr[0]),
                          "passed": row_ok,
                          "trace": {"step": _decimate(trace.measurable),
                                    "stable_rank": _series(sr, _decimate(trace.measurable)),
                                    "closed_form": _series(sr_cf, _decimate(trace.measurable))}}
        details.append(f"N={N}: limit {limit:.5f} ({'rank one' if rank_one else 'not rank one'}), last measured "
                       f"{last:.5f} at t={trace.measurable - 1}")
    return ok, "; ".join(details), {"problem": {"m": m, "n": n, "instance": f"MatrixQuadratic.random, eig {list(eig_range)}",
                                               "seed": 0},
                                   "cases": rows}


# ----------------------------------------------------------------------------- check 3: noise
def noise_level(m: int, n: int, sigma: float, draws: int = 64, seed: int = 12345) -> float:
    """Mean stable rank of the noise matrices of :class:`AdditiveNoise` itself (the level the observed
    gradient's stable rank returns to); :func:`verify.spectrum.gaussian_stable_rank` is its asymptotic value."""
    noise = AdditiveNoise(sigma)
    x = torch.zeros(draws, m, n, dtype=torch.float64)
    Z = noise.sample(SeedStreams(list(range(seed, seed + draws))), 0, x)
    return float(sp.stable_rank(sp.singular_values(Z)).mean())


def check_noise_effect(quick: bool = True, *, sigma: float = 1e-3, noise_factory=AdditiveNoise,
                       observed_from: str = "observed") -> tuple[bool, str, dict[str, Any]]:
    m, n = (16, 24) if quick else (32, 48)
    steps = 400 if quick else 3000
    eig_range = (1.0, 4.0) if quick else (1.0, 10.0)
    problem = MatrixQuadratic.random(m, n, 1, eig_range=eig_range, seed=0)
    noisy = run_gd(problem, steps, noise=noise_factory(sigma))
    clean = run_gd(problem, min(steps, steps_to_floor(AbcTheory.of(problem), problem)))  # E[G_t]: the noiseless run
    obs = noisy.observed if observed_from == "observed" else noisy.clean
    s_obs = sp.spectrum(obs, eps=EPS_LEVELS)
    s_clean = sp.spectrum(clean.clean[:clean.measurable], eps=EPS_LEVELS)
    level = noise_level(m, n, sigma)
    tail = max(10, obs.shape[0] // 20)
    final_obs = float(s_obs.stable_rank[-tail:].mean())
    min_obs = float(s_obs.stable_rank.min())
    t_min = int(s_obs.stable_rank.argmin())
    r_obs = s_obs.energy_ranks[0.01].to(torch.float64)
    rises = float(r_obs[-tail:].mean()) > float(r_obs[t_min])
    clean_final = float(s_clean.stable_rank[-1])
    dips = min_obs < 0.5 * float(s_obs.stable_rank[0])
    returns = final_obs >= 0.8 * level
    clean_decays = clean_final < min_obs * 1.05 and clean_final < 0.5 * float(s_clean.stable_rank[0])
    passed = dips and returns and rises and clean_decays
    detail = (f"{m}x{n}, sigma={sigma:g}: observed sr {float(s_obs.stable_rank[0]):.2f} -> min {min_obs:.2f} (t={t_min}) -> "
              f"{final_obs:.2f} (noise level {level:.2f}, asymptotic {sp.gaussian_stable_rank(m, n):.2f}); clean sr -> "
              f"{clean_final:.4f}; r(0.01) observed rises: {rises}")
    idx_n = _decimate(obs.shape[0])
    idx_c = _decimate(clean.measurable)
    payload = {"problem": {"m": m, "n": n, "N": 1, "sigma": sigma, "seed": 0, "noise": "AdditiveNoise gaussian",
                           "eig_range": list(eig_range)},
               "noise_level": level, "gaussian_stable_rank": sp.gaussian_stable_rank(m, n),
               "observed_min": min_obs, "observed_min_step": t_min, "observed_final": final_obs, "clean_final": clean_final,
               "trace_observed": {"step": idx_n, "stable_rank": _series(s_obs.stable_rank, idx_n),
                                  **{f"energy_rank_{e:g}": _series(s_obs.energy_ranks[e], idx_n) for e in EPS_LEVELS}},
               "trace_clean": {"step": idx_c, "stable_rank": _series(s_clean.stable_rank, idx_c),
                               **{f"energy_rank_{e:g}": _series(s_clean.energy_ranks[e], idx_c) for e in EPS_LEVELS}}}
    return passed, detail, payload


# ----------------------------------------------------------------------------- check 4: AdaRankGrad r_t
def check_adarankgrad_trace(quick: bool = True, *, threshold: float = 0.99, sigmas: tuple[float, ...] = (1e-2, 1e-1),
                            name: str = "adarankgrad", hyper: dict[str, Any] | None = None
                            ) -> tuple[bool, str, dict[str, Any]]:
    """Run AdaRankGrad on the A − BWC problem (clean and noisy) through the synthetic runner with an exact
    SVD and record r_t at every step; at each refresh the chosen rank must equal the energy rank
    r(1 − threshold) of the gradient the optimizer received at that step (clamped to [r_min, r_max])."""
    m, n = (16, 24) if quick else (32, 48)
    steps = 200 if quick else 1000
    eig_range = (1.0, 4.0) if quick else (1.0, 10.0)
    cap = 10
    settings = {"lr": 1e-2, "min_rank": 1, "max_rank": min(m, n), "rank_rule": "energy", "rank_threshold": threshold,
                "svd": "exact", "max_steps_per_subspace": cap}
    settings.update(hyper or {})
    problem = MatrixQuadratic.random(m, n, 1, eig_range=eig_range, seed=0)
    metrics = {"rank": METRICS["basis_rank"], "subspace_step": state_value("subspace_step")}
    out, ok, details = {}, True, []
    runs = [("clean", None)] + [(f"noisy sigma={s:g}", AdditiveNoise(s)) for s in sigmas]
    for label, noise in runs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trace = run_gd(problem, steps, hyper=settings, noise=noise, optimizer=name, metrics=metrics)
        ranks = trace.result.trace["rank"][:, 0].astype(int).tolist()  # after steps 1..T
        sub = trace.result.trace["subspace_step"][:, 0]
        refreshed = [t for t in range(1, steps + 1) if sub[t - 1] == 1]  # reset to 0 and incremented at a refresh
        grads = trace.observed[[t - 1 for t in refreshed]]  # the gradient step t received (at W_{t-1})
        predicted = sp.energy_rank(sp.singular_values(grads), 1 - threshold).clamp(settings["min_rank"],
                                                                                   settings["max_rank"]).tolist()
        chosen = [ranks[t - 1] for t in refreshed]
        agree = chosen == predicted
        ok &= agree and refreshed[:1] == [1]
        low = min(ranks)
        out[label] = {"refresh_steps": refreshed, "chosen_rank": chosen, "energy_rank_of_gradient": predicted,
                      "agree": agree, "rank_trace": ranks, "mean_rank": sum(ranks) / len(ranks), "max_rank": max(ranks),
                      "min_rank": low, "final_rank": ranks[-1], "rises_after_minimum": ranks[-1] > low}
        details.append(f"{label}: r_t {ranks[0]} -> min {low} -> {ranks[-1]} (mean {sum(ranks) / len(ranks):.1f}), "
                       f"rule reproduced at {len(refreshed)} refreshes: {agree}")
    return ok, "; ".join(details), {"problem": {"m": m, "n": n, "N": 1, "sigmas": list(sigmas), "seed": 0,
                                               "eig_range": list(eig_range)}, "settings": settings, "runs": out}


# ----------------------------------------------------------------------------- results and figures
CHECKS = {"lemma33": check_lemma33, "rank_one_limit": check_rank_one_limit, "noise_effect": check_noise_effect,
          "adarankgrad_trace": check_adarankgrad_trace}


def run_checks(names: list[str] | None = None, quick: bool = True, out_dir: str | Path | None = None,
               echo: Callable[[str], Any] = print) -> dict[str, bool]:
    """Run the checks ``names`` (default: all), print a verdict per check, and with ``out_dir`` write
    ``<out_dir>/<check>.json`` (verdict, detail, settings and traces; the input of :func:`make_figures`)."""
    names = list(CHECKS) if names is None else names
    unknown = [s for s in names if s not in CHECKS]
    if unknown:
        raise ValueError(f"unknown rank check(s) {unknown}; known: {list(CHECKS)}")
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    verdicts = {}
    for name in names:
        try:
            passed, detail, payload = CHECKS[name](quick)
        except Exception as exc:  # a crashing check is a failed check, reported
            passed, detail, payload = False, f"error: {type(exc).__name__}: {exc}", {}
        verdicts[name] = passed
        echo(f"[{'PASS' if passed else 'FAIL'}] {name}: {detail}")
        if out is not None:
            record = {"check": name, "passed": passed, "detail": detail, "quick": quick, "torch": torch.__version__,
                      **payload}
            (out / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    return verdicts


def _load(results_dir: Path, key: str) -> dict[str, Any] | None:
    path = results_dir / f"{key}.json"
    return json.loads(path.read_text()) if path.exists() else None


def make_figures(results_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Stable rank and r(ε) against step, with the predictions, from the saved results (never reruns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results_dir, out_dir = Path(results_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    lemma = _load(results_dir, "lemma33")
    if lemma and "trace" in lemma:
        tr = lemma["trace"]
        fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
        a.semilogy(tr["step"], [max(s - lemma["theory"]["sr_limit"], 1e-16) for s in tr["stable_rank"]], label="measured sr − sr∞")
        a.semilogy(tr["step"], [max(s - lemma["theory"]["sr_limit"], 1e-16) for s in tr["closed_form"]], "--", label="closed form")
        a.semilogy(tr["step"], [b_ - lemma["theory"]["sr_limit"] for b_ in tr["bound"]], ":", label="Lemma 3.3 bound")
        if "roundoff" in tr:
            a.semilogy(tr["step"], tr["roundoff"], color="0.6", lw=0.8, label="round-off tolerance")
        a.set_xlabel("step t")
        a.set_ylabel("sr(G_t) − sr∞")
        a.set_title(f"GaLore Lemma 3.3, ρ² = {lemma['theory']['rho_squared']:.4f}")
        a.legend()
        for e in EPS_LEVELS:
            b.step(tr["step"], tr[f"energy_rank_{e:g}"], where="post", label=f"r({e:g})")
        b.set_xlabel("step t")
        b.set_ylabel("energy rank")
        b.set_xscale("symlog")
        b.set_xlim(left=0)
        b.legend()
        fig.tight_layout()
        path = out_dir / "rank_lemma33.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    limit = _load(results_dir, "rank_one_limit")
    if limit and "cases" in limit:
        fig, ax = plt.subplots(figsize=(6, 4))
        for label, case in limit["cases"].items():
            line, = ax.plot(case["trace"]["step"], [max(s - 1, 1e-16) for s in case["trace"]["stable_rank"]],
                            label=f"{label} measured")
            excess = case["predicted_limit_sr_unvec_v1"] - 1
            if excess > 1e-12:
                ax.axhline(excess, color=line.get_color(), ls=":", label=f"{label} limit sr(unvec v₁) − 1 = {excess:.4f}")
            else:
                line.set_label(f"{label} measured (limit sr(unvec v₁) = 1)")
        ax.set_xscale("symlog")
        ax.set_xlim(left=0)
        ax.set_yscale("log")
        ax.set_xlabel("step t (until the float floor)")
        ax.set_ylabel("stable rank − 1")
        ax.set_title("Rank → 1 only when v₁ is decomposable")
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / "rank_limit.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    noise = _load(results_dir, "noise_effect")
    if noise and "trace_observed" in noise:
        fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
        a.plot(noise["trace_observed"]["step"], noise["trace_observed"]["stable_rank"], label="observed G + ξ")
        a.plot(noise["trace_clean"]["step"], noise["trace_clean"]["stable_rank"], label="clean E[G]")
        a.axhline(noise["noise_level"], color="k", ls=":", label=f"noise level {noise['noise_level']:.2f}")
        a.set_xscale("symlog")
        a.set_xlim(left=0)
        a.set_xlabel("step t")
        a.set_ylabel("stable rank")
        a.set_title(f"noise σ = {noise['problem']['sigma']:g}")
        a.legend()
        for e in EPS_LEVELS:
            b.step(noise["trace_observed"]["step"], noise["trace_observed"][f"energy_rank_{e:g}"], where="post",
                   label=f"observed r({e:g})")
            b.step(noise["trace_clean"]["step"], noise["trace_clean"][f"energy_rank_{e:g}"], where="post", ls="--",
                   label=f"clean r({e:g})")
        b.set_xscale("symlog")
        b.set_xlim(left=0)
        b.set_xlabel("step t")
        b.set_ylabel("energy rank")
        b.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / "rank_noise.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    arg = _load(results_dir, "adarankgrad_trace")
    if arg and "runs" in arg:
        fig, ax = plt.subplots(figsize=(6, 4))
        for label, run in arg["runs"].items():
            ax.step(range(1, len(run["rank_trace"]) + 1), run["rank_trace"], where="post", label=f"{label} r_t")
        ax.set_xlabel("step t")
        ax.set_ylabel("chosen rank r_t")
        ax.set_title(f"AdaRankGrad rank trace (τ = {arg['settings']['rank_threshold']})")
        ax.legend()
        fig.tight_layout()
        path = out_dir / "rank_adarankgrad.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


#: figure name → (results dir relative to results/, function) for a figure registry
FIGURES = {"rank": ("rank", make_figures)}
