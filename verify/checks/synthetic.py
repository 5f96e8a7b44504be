"""Checks in the default suite for the synthetic problems, noise models and the batched runner (issue #5).

Each check is a thin wrapper over a function that takes the objects to check, so that
tests/verify/test_checks_synthetic.py can plant a bug (a wrong constant, a mis-calibrated σ, a gradient
off by a factor, a batch-dependent random stream) and show that the check fails on it.
"""

from __future__ import annotations

import math

import torch

from verify.checks._common import relative_error
from verify.suite import check
from verify.verdicts import judged

GROUP = "synthetic"
#: the sampled curvature must come within this fraction of L (issue #5)
TIGHTNESS = 0.9


def default_problems():
    """One instance of every family, in the variants whose constant takes a different form."""
    from synthetic.problems import (
        DeepLinearNetwork,
        MatrixQuadratic,
        MatrixQuadraticCosine,
        QuadraticCosine,
        RobustRegression,
        Rosenbrock,
        SeparableLogSum,
        log_spectrum,
    )

    return [
        SeparableLogSum(16, a=torch.linspace(0.5, 2.0, 16), width=torch.linspace(0.5, 1.5, 16)),
        QuadraticCosine(log_spectrum(24, 0.1, 10.0), alpha=1.0, seed=1),
        MatrixQuadraticCosine.random(6, 5, alpha=0.3, seed=2),
        RobustRegression(d=6, n_samples=2000, x_natural=torch.zeros(6), label_noise=0.05, seed=3),
        MatrixQuadratic.random(5, 6, N=3, seed=4),
        DeepLinearNetwork.random(4, 3, teacher_scale=0.9, seed=5),
        Rosenbrock(6),
    ]


# ----------------------------------------------------------------------------- constants
def curvature_within_L(problems, *, n_points: int = 24, iters: int = 100) -> tuple[bool, str]:
    from synthetic.constants import probe_curvature

    ok, parts = True, []
    for p in problems:
        rep = probe_curvature(p, n_points=n_points, iters=iters)
        ok &= rep.passed(TIGHTNESS)
        parts.append(f"{p.name} {rep.ratio:.3f}{' EXCEEDS' if rep.exceeds else ''}")
    return judged(ok, "max|curvature|/L: " + ", ".join(parts))


@check("every problem family: sampled curvature <= L and >= 0.9 L", GROUP)
def smoothness_constants(quick: bool):
    return curvature_within_L(default_problems(), n_points=16 if quick else 64, iters=100 if quick else 300)


def gradients_match_autograd(problems, rtol: float = 1e-12) -> tuple[bool, str]:
    from synthetic.constants import sample_points

    worst = 0.0
    for p in problems:
        x = sample_points(p, 5, seed=9)
        xg = x.clone().requires_grad_(True)
        (expected,) = torch.autograd.grad(p.value(xg).sum(), xg)
        worst = max(worst, relative_error(p.grad(x), expected))
    return judged(worst <= rtol, f"max rel err {worst:.1e} against back-propagation through f")


@check("every problem family: exact gradient == autograd of f (float64)", GROUP)
def gradients(quick: bool):
    return gradients_match_autograd(default_problems())


def lower_bounds_hold(problems, n: int = 64) -> tuple[bool, str]:
    from synthetic.constants import sample_points

    worst = math.inf
    for p in problems:
        gap = float((p.value(sample_points(p, n, seed=11)) - p.f_inf).min())
        worst = min(worst, gap)
    return judged(worst >= -1e-12, f"min over samples of f - f_inf = {worst:.3e}")


@check("every problem family: f >= f_inf at sampled points", GROUP)
def lower_bounds(quick: bool):
    return lower_bounds_hold(default_problems(), 64 if quick else 512)


# ----------------------------------------------------------------------------- noise calibration
def mgf_estimate(noise, shape=(4,), n: int = 1 << 18, truncate: float | None = None) -> torch.Tensor:
    """Sample mean of exp(ξ²/σ²) per coordinate (optionally only over |ξ| <= truncate·std)."""
    from synthetic.rng import SeedStreams

    x = torch.zeros(n, *shape, dtype=torch.float64)
    xi = noise.sample(SeedStreams(n), 1, x, x)
    y = torch.exp(xi**2 / noise.sigma(shape) ** 2)
    if truncate is not None:
        y = y * (xi.abs() <= truncate * noise.variance(shape).sqrt()).to(y.dtype)
    return y.mean(0), y.std(0) / math.sqrt(n)


def gaussian_tail(c: float, m: float) -> float:
    """:math:`E[e^{c z^2}; |z| > m]` for :math:`z \\sim N(0, 1)`: :math:`(1-2c)^{-1/2} P(|z'| > m\\sqrt{1-2c})`, ∞ if c >= 1/2."""
    from scipy import stats

    if c >= 0.5:
        return math.inf
    r = math.sqrt(1.0 - 2.0 * c)
    return 2.0 * stats.norm.sf(m * r) / r


#: the standard error of an MGF estimate must be below this fraction of e, else the samples cannot decide
PRECISION = 0.02


def calibration_holds(noises, n: int = 1 << 18, m: float = 4.0) -> tuple[bool, str]:
    """E exp(ξ²/σ²) <= e estimated from samples for each noise (σ as the noise reports it).

    Passes when every estimate is not significantly above e (estimate − 5 se <= e) **and** precise
    (se <= 2 % of e): a σ so small that exp(ξ²/σ²) has huge variance fails instead of hiding in its error bar.
    Gaussian noise at the tight σ makes exp(ξ²/σ²) an infinite-variance estimator, so its samples are used
    on |ξ| <= m·std (finite variance) and the rest is the exact Gaussian tail for the reported σ."""
    ok, parts = True, []
    for noise in noises:
        if noise.distribution == "gaussian":
            mean, se = mgf_estimate(noise, n=n, truncate=m)
            c = noise.variance((4,)) / noise.sigma((4,)) ** 2
            total = mean + torch.tensor([gaussian_tail(float(ci), m) for ci in c], dtype=torch.float64)
        else:
            total, se = mgf_estimate(noise, n=n)
        worst = float((total - 5 * se).max())
        ok &= worst <= math.e * (1 + 1e-12) and float(se.max()) <= PRECISION * math.e
        parts.append(f"{noise.distribution}/b={noise.batch_size} {float(total.max()):.3f}±{float(se.max()):.3f}")
    return judged(ok, "max E exp(xi^2/sigma^2) (<= e = 2.718): " + ", ".join(parts))


def default_noises():
    from synthetic.noise import AdditiveNoise

    scale = torch.tensor([0.2, 0.5, 1.0, 3.0], dtype=torch.float64)
    return [AdditiveNoise(scale, d, batch_size=b) for d in ("gaussian", "rademacher", "uniform") for b in (1, 4)]


@check("noise: sub-gaussian sigma satisfies E exp(xi^2/sigma^2) <= e in samples", GROUP)
def noise_calibration(quick: bool):
    return calibration_holds(default_noises(), n=1 << (17 if quick else 20))


# ----------------------------------------------------------------------------- runner
def seed_alone_equals_batch(optimizers=("sgd", "adam", "adagrad_norm"), steps: int = 20) -> tuple[bool, str]:
    from synthetic import AdditiveNoise, MatrixQuadratic, run

    problem = MatrixQuadratic.random(6, 5, N=2, seed=1)
    seeds = [11, 22, 33, 44, 55]
    bad = []
    for name in optimizers:
        kw = dict(steps=steps, noise=AdditiveNoise(0.2), x0_radius=0.5, metrics=("f",))
        batch = run(name, {"lr": 0.02}, problem, seeds=seeds, **kw)
        for i in (0, 3):
            alone = run(name, {"lr": 0.02}, problem, seeds=[seeds[i]], **kw)
            if not torch.equal(batch.final_x[i], alone.final_x[0]):
                bad.append(f"{name}[seed {seeds[i]}]")
    return judged(not bad, ("bit-identical alone and in a batch of 5: " + ", ".join(optimizers)) if not bad else f"differ: {bad}")


@check("runner: a seed alone is bit-identical to the seed in a batch", GROUP)
def runner_bit_identity(quick: bool):
    return seed_alone_equals_batch(steps=20 if quick else 200)
