"""Noise models: variances, sub-gaussian calibration (estimated from samples), sparsity, errors."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import integrate, stats

from synthetic.noise import (
    GAUSSIAN_SIGMA_FACTOR,
    AdditiveNoise,
    MultiplicativeNoise,
    NotSubGaussianError,
    SumNoise,
    sparse_scale,
    sparse_support_size,
)
from synthetic.rng import SeedStreams

E = math.e
SCALE = torch.tensor([0.3, 0.7, 1.0, 2.5], dtype=torch.float64)
SHAPE = (4,)


def draws(noise, n_seeds=64, per_seed=2048, step=1):
    """``n_seeds * per_seed`` draws per coordinate, as ``[N, 4]``."""
    x = torch.zeros(n_seeds * per_seed, *SHAPE, dtype=torch.float64)
    return noise.sample(SeedStreams(n_seeds * per_seed), step, x, x)


def test_gaussian_sigma_factor_is_the_tight_constant():
    """(1 - 2/c²)^(-1/2) = e exactly at c = c_G (the calibration of docs/problems.md §4)."""
    assert GAUSSIAN_SIGMA_FACTOR == pytest.approx(1.5209, abs=1e-4)
    assert (1 - 2 / GAUSSIAN_SIGMA_FACTOR**2) ** -0.5 == pytest.approx(E, rel=1e-14)


@pytest.mark.parametrize("dist, sigma_over_s", [("gaussian", GAUSSIAN_SIGMA_FACTOR), ("rademacher", 1.0), ("uniform", math.sqrt(3))])
def test_reported_sigma_follows_the_calibration(dist, sigma_over_s):
    noise = AdditiveNoise(SCALE, dist)
    assert torch.allclose(noise.sigma(SHAPE), sigma_over_s * SCALE, rtol=1e-15, atol=0)


def test_bounded_noise_sigma_is_its_bound():
    noise = AdditiveNoise.bounded(torch.tensor([0.5, 2.0]))
    assert torch.allclose(noise.sigma((2,)), torch.tensor([0.5, 2.0], dtype=torch.float64), rtol=1e-15)
    assert torch.allclose(noise.bound((2,)), noise.sigma((2,)), rtol=1e-15)
    xi = noise.sample(SeedStreams(5000), 1, torch.zeros(5000, 2, dtype=torch.float64))
    assert bool((xi.abs() <= noise.bound((2,))).all())


@pytest.mark.parametrize("dist", ["gaussian", "rademacher", "uniform", "student_t"])
@pytest.mark.parametrize("batch", [1, 4])
def test_variance_is_scale_squared_over_batch(dist, batch):
    noise = AdditiveNoise(SCALE, dist, df=7 if dist == "student_t" else None, batch_size=batch)
    xi = draws(noise, per_seed=512)
    n = xi.shape[0]
    assert torch.allclose(noise.variance(SHAPE), SCALE**2 / batch, rtol=1e-15)
    var_hat = (xi * xi).mean(0)
    se = ((xi**4).mean(0) - var_hat**2).clamp_min(0).sqrt() / math.sqrt(n)
    # (Rademacher at batch 1 has ξ² = s² exactly: se = 0, and only round-off remains)
    assert bool(((var_hat - SCALE**2 / batch).abs() <= 5 * se + 1e-14 * SCALE**2).all()), (var_hat, SCALE**2 / batch)
    assert bool((xi.mean(0).abs() <= 5 * SCALE / math.sqrt(batch * n)).all())


def test_distribution_shapes_by_kolmogorov_smirnov():
    n = 20_000
    x = torch.zeros(n, 1, dtype=torch.float64)

    def z(dist, df=None):
        return AdditiveNoise(1.0, dist, df=df).sample(SeedStreams(n), 2, x)[:, 0].numpy()

    assert stats.kstest(z("gaussian"), "norm").pvalue > 1e-3
    assert stats.kstest(z("uniform"), stats.uniform(loc=-math.sqrt(3), scale=2 * math.sqrt(3)).cdf).pvalue > 1e-3
    df = 5
    assert stats.kstest(z("student_t", df), stats.t(df, scale=math.sqrt((df - 2) / df)).cdf).pvalue > 1e-3
    assert set(z("rademacher").tolist()) == {-1.0, 1.0}


# ----------------------------------------------------------------------------- the MGF condition from samples
def _mgf_terms(noise, **kw):
    xi = draws(noise, **kw)
    return torch.exp(xi**2 / noise.sigma(SHAPE) ** 2), xi


def test_mgf_condition_rademacher_is_met_with_equality():
    y, _ = _mgf_terms(AdditiveNoise(SCALE, "rademacher"), per_seed=64)
    assert torch.allclose(y.mean(0), torch.full(SHAPE, E, dtype=torch.float64), rtol=1e-15, atol=0)


def test_mgf_condition_bounded_uniform_matches_its_exact_value():
    """E exp(ξ²/B²) = ∫₀¹ e^{u²} du ≈ 1.4627 ≤ e: σ = B is valid with room to spare."""
    exact = integrate.quad(lambda u: math.exp(u * u), 0, 1)[0]
    y, _ = _mgf_terms(AdditiveNoise(SCALE, "uniform"))
    mean, se = y.mean(0), y.std(0) / math.sqrt(y.shape[0])
    assert bool(((mean - exact).abs() <= 5 * se).all())
    assert bool((mean + 5 * se <= E).all())


@pytest.mark.parametrize("dist", ["rademacher", "uniform"])
def test_mgf_condition_holds_for_bounded_batch_means(dist):
    """Batch size 4: σ = min(B, c_G s/√b) from the variance-proxy argument; the condition holds in the samples."""
    noise = AdditiveNoise(SCALE, dist, batch_size=4)
    assert bool((noise.sigma(SHAPE) < (1.0 if dist == "rademacher" else math.sqrt(3)) * SCALE).all())
    y, _ = _mgf_terms(noise)
    mean, se = y.mean(0), y.std(0) / math.sqrt(y.shape[0])
    assert bool((mean + 5 * se <= E).all()), mean


@pytest.mark.parametrize("batch", [1, 4])
def test_mgf_condition_gaussian_from_samples(batch):
    """Gaussian at the tight σ: E exp(ξ²/σ²) = e, but exp(ξ²/σ²) has infinite variance (2s²/σ² > 1/2), so
    the plain sample mean does not concentrate. The samples estimate the part on |ξ| ≤ m·std (finite
    variance, compared with its exact value), and the rest is the Gaussian tail, known in closed form:
    E[e^{c z²}; |z| ≤ m] = e·(2Φ(m/e) − 1) with c = s²/σ² = (1 − e⁻²)/2."""
    m = 4.0
    noise = AdditiveNoise(SCALE, "gaussian", batch_size=batch)
    y, xi = _mgf_terms(noise)
    std = SCALE / math.sqrt(batch)
    inside = (xi.abs() <= m * std).to(torch.float64)
    est = (y * inside).mean(0)
    c = (1 - math.exp(-2)) / 2
    truncated = E * (2 * stats.norm.cdf(m / E) - 1)
    second = 2 * integrate.quad(lambda z: math.exp((2 * c - 0.5) * z * z) / math.sqrt(2 * math.pi), 0, m)[0]
    se = math.sqrt((second - truncated**2) / y.shape[0])
    assert bool(((est - truncated).abs() <= 5 * se).all()), (est, truncated, se)
    tail = E * 2 * stats.norm.sf(m / E)
    assert bool((est + tail <= E + 5 * se).all())


def test_mgf_condition_fails_for_an_undercalibrated_gaussian_sigma():
    """The same estimator with σ = s (the usual mistake) is far above e: the check has teeth."""
    noise = AdditiveNoise(1.0, "gaussian")
    xi = draws(noise, per_seed=256)[:, 0]
    y = torch.exp(xi**2)  # σ = s
    assert float(y.mean()) > 10 * E


# ----------------------------------------------------------------------------- non sub-gaussian noise
def test_student_t_has_no_sigma():
    noise = AdditiveNoise(1.0, "student_t", df=3)
    with pytest.raises(NotSubGaussianError, match="not sub-gaussian"):
        noise.sigma()
    with pytest.raises(ValueError, match="unbounded"):
        noise.bound(SHAPE)


def test_student_t_tails_are_heavier_than_gaussian():
    x = torch.zeros(100_000, 1, dtype=torch.float64)
    t = AdditiveNoise(1.0, "student_t", df=3).sample(SeedStreams(100_000), 1, x).abs()
    g = AdditiveNoise(1.0, "gaussian").sample(SeedStreams(100_000), 1, x).abs()
    assert float((t > 5).double().mean()) > 20 * float((g > 5).double().mean() + 1e-7)


def test_multiplicative_noise():
    x = torch.tensor([[1.0, -2.0, 0.0, 3.0]], dtype=torch.float64).expand(50_000, 4).contiguous()
    grad = 2 * x
    it = MultiplicativeNoise(0.5, "gaussian")
    xi = it.sample(SeedStreams(50_000), 1, x, grad)
    assert bool((xi[:, 2] == 0).all())
    assert torch.allclose(it.variance_at(x[:1], grad[:1]), 0.25 * x[:1] ** 2)
    var = (xi * xi).mean(0)
    assert bool(((var - 0.25 * x[0] ** 2).abs() <= 5 * math.sqrt(2 / 50_000) * 0.25 * x[0] ** 2 + 1e-15).all())
    with pytest.raises(NotSubGaussianError, match="no constant sub-gaussian parameter"):
        it.sigma()
    assert torch.allclose(it.sigma_at(x[:1], grad[:1]), GAUSSIAN_SIGMA_FACTOR * 0.5 * x[:1].abs())
    gr = MultiplicativeNoise(0.5, "rademacher", target="gradient")
    assert torch.allclose(gr.sample(SeedStreams(3), 1, x[:3], grad[:3]).abs(), 0.5 * grad[:3].abs())


def test_sum_noise_adds_independent_parts():
    a = AdditiveNoise(0.3)
    b = MultiplicativeNoise(0.2)
    s = SumNoise(a, b)
    x = torch.ones(7, 4, dtype=torch.float64)
    streams = SeedStreams(7)
    assert torch.equal(s.sample(streams, 3, x, x), a.sample(streams, 3, x, x) + b.sample(streams, 3, x, x))
    with pytest.raises(ValueError, match="distinct channels"):
        SumNoise(a, AdditiveNoise(0.1))
    with pytest.raises(NotSubGaussianError):
        s.sigma()


# ----------------------------------------------------------------------------- sparsity
@pytest.mark.parametrize("d, beta, k", [(16, 0.5, 4), (64, 1 / 3, 4), (1000, 1 / 3, 10), (10, 0.43, 3), (7, 0.0, 1), (7, 1.0, 7),
                                        (1024, 0.25, 6)])
def test_sparse_support_size_is_ceil_d_to_beta(d, beta, k):
    assert sparse_support_size(d, beta) == k
    for placement in ("random", "first", "spread"):
        s = sparse_scale(d, beta, scale=2.0, placement=placement, seed=3)
        assert int((s != 0).sum()) == k and float(s.max()) == 2.0


def test_sparse_placements():
    assert sparse_scale(16, 0.5, placement="first").nonzero().flatten().tolist() == [0, 1, 2, 3]
    assert sparse_scale(16, 0.5, placement="spread").nonzero().flatten().tolist() == [0, 4, 8, 12]
    assert not torch.equal(sparse_scale(64, 0.5, seed=1), sparse_scale(64, 0.5, seed=2))
    assert sparse_scale((4, 4), 0.5).shape == (4, 4)
    noise = AdditiveNoise(sparse_scale(16, 0.5, placement="first"))
    assert int((noise.sigma((16,)) > 0).sum()) == 4


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "factory, error, match",
    [
        (lambda: AdditiveNoise(-0.1), ValueError, "scale must be >= 0"),
        (lambda: AdditiveNoise(torch.tensor([1.0, -1.0])), ValueError, "scale must be >= 0"),
        (lambda: AdditiveNoise(float("nan")), ValueError, "scale must be finite"),
        (lambda: AdditiveNoise("big"), TypeError, "scale must be a number"),
        (lambda: AdditiveNoise(1.0, "laplace"), ValueError, "distribution must be one of"),
        (lambda: AdditiveNoise(1.0, "student_t"), ValueError, "df is required"),
        (lambda: AdditiveNoise(1.0, "student_t", df=2), ValueError, "df must be >= 3"),
        (lambda: AdditiveNoise(1.0, "gaussian", df=4), ValueError, "df only applies"),
        (lambda: AdditiveNoise(1.0, batch_size=0), ValueError, "batch_size must be >= 1"),
        (lambda: MultiplicativeNoise(1.0, target="both"), ValueError, "target must be one of"),
        (lambda: sparse_scale(10, 1.5), ValueError, r"beta must be in \[0, 1\]"),
        (lambda: sparse_scale(10, -0.1), ValueError, r"beta must be in \[0, 1\]"),
        (lambda: sparse_scale(0, 0.5), ValueError, "shape must be >= 1"),
        (lambda: sparse_scale(10, 0.5, scale=-1.0), ValueError, "scale must be >= 0"),
        (lambda: sparse_scale(10, 0.5, placement="middle"), ValueError, "placement must be one of"),
    ],
)
def test_bad_noise_arguments(factory, error, match):
    with pytest.raises(error, match=match):
        factory()


def test_scale_shape_mismatch_is_reported():
    noise = AdditiveNoise(torch.ones(3))
    with pytest.raises(ValueError, match="does not broadcast to the parameter shape"):
        noise.check_shape((4,))
