"""verify/checks/synthetic.py: every check passes on the real code and fails on a planted bug (a mutant)."""

from __future__ import annotations

import pytest
import torch

import synthetic.noise as noise_module
import synthetic.rng as rng_module
from synthetic.noise import AdditiveNoise
from synthetic.problems import DeepLinearNetwork, QuadraticCosine, Rosenbrock, SeparableLogSum, log_spectrum
from verify.checks import synthetic as checks
from verify.suite import load_checks


def small_problems():
    return [SeparableLogSum(6, a=torch.linspace(0.5, 2, 6)), QuadraticCosine(log_spectrum(10, 0.1, 5.0), seed=1),
            DeepLinearNetwork.random(3, 2, seed=2), Rosenbrock(4)]


def test_checks_are_registered_in_the_suite():
    names = {c.name for c in load_checks() if c.group == checks.GROUP}
    assert len(names) == 5


# ----------------------------------------------------------------------------- smoothness constants
def test_curvature_check_passes_on_the_real_constants():
    outcome = checks.curvature_within_L(small_problems(), n_points=8)
    ok, detail = outcome.outcome == "PASS", outcome.reason
    assert ok, detail


@pytest.mark.parametrize("factor, what", [(0.8, "an L that is too small (curvature exceeds it)"),
                                          (1.3, "an L that is too large (not tight)")])
def test_curvature_check_fails_on_a_wrong_constant(factor, what):
    problems = small_problems()
    problems[2].L *= factor  # mutant: the deep linear network's constant
    outcome = checks.curvature_within_L(problems, n_points=8)
    ok, detail = outcome.outcome == "PASS", outcome.reason
    assert not ok, f"{what} was not caught: {detail}"


def test_deep_linear_constant_with_a_dropped_term_is_caught():
    """Mutant of the proof: forgetting the ⟨P − T, P''⟩ term gives L = D·R^(2D−2), which curvature exceeds."""
    p = DeepLinearNetwork.random(3, 3, seed=1)
    p.L = p.depth * p.radius ** (2 * p.depth - 2)
    assert checks.curvature_within_L([p], n_points=8).outcome == "FAIL"


# ----------------------------------------------------------------------------- gradients, lower bounds
def test_gradient_check(monkeypatch):
    assert checks.gradients_match_autograd(small_problems()).outcome == "PASS"
    p = small_problems()[1]
    real = p.grad
    monkeypatch.setattr(p, "grad", lambda x: real(x) * (1 + 1e-9))  # mutant: a gradient off by 1e-9
    assert checks.gradients_match_autograd([p]).outcome == "FAIL"


def test_lower_bound_check():
    assert checks.lower_bounds_hold(small_problems()).outcome == "PASS"
    p = QuadraticCosine(torch.full((8,), 0.01), alpha=2.0, x0=torch.full((8,), torch.pi))
    p.f_inf = -p.alpha * p.dim / 2  # mutant: forgetting that all d cosines can reach -1 at once
    assert checks.lower_bounds_hold([p], n=256).outcome == "FAIL"


# ----------------------------------------------------------------------------- noise calibration
def test_calibration_check_passes():
    outcome = checks.calibration_holds(checks.default_noises(), n=1 << 16)
    ok, detail = outcome.outcome == "PASS", outcome.reason
    assert ok, detail


def test_calibration_check_fails_on_sigma_equal_to_the_standard_deviation(monkeypatch):
    """Mutant: σ = s for Gaussian noise (c_G = 1), the classic confusion of the std with σ."""
    monkeypatch.setattr(noise_module, "GAUSSIAN_SIGMA_FACTOR", 1.0)
    assert checks.calibration_holds([AdditiveNoise(1.0, "gaussian")], n=1 << 16).outcome == "FAIL"


def test_calibration_check_fails_on_a_slightly_small_gaussian_sigma(monkeypatch):
    """Mutant: c_G = 1.45 instead of 1.5209 (E exp(ξ²/σ²) is then 6.3 > e): caught by the truncated estimate."""
    monkeypatch.setattr(noise_module, "GAUSSIAN_SIGMA_FACTOR", 1.45)
    assert checks.calibration_holds([AdditiveNoise(1.0, "gaussian")], n=1 << 16).outcome == "FAIL"


def test_calibration_check_fails_on_an_uncorrected_batch(monkeypatch):
    """Mutant: a batched noise that reports σ for the mean of b = 16 draws but samples with 4 = √b times the
    spread (the batch forgotten in the sample)."""
    noise = AdditiveNoise(1.0, "rademacher", batch_size=16)
    real_sample = noise.sample
    monkeypatch.setattr(noise, "sample", lambda streams, step, x, grad=None: real_sample(streams, step, x) * 4.0)
    assert checks.calibration_holds([noise], n=1 << 16).outcome == "FAIL"


def test_calibration_check_fails_on_a_too_small_bound():
    noise = AdditiveNoise.bounded(1.0)
    # mutant: σ = 0.6·B; the smallest valid σ of U[-B, B] is 0.666·B (∫₀¹ exp(a u²) du = e at a = 2.256)
    noise.sigma = lambda shape=None: torch.full(tuple(shape), 0.6, dtype=torch.float64)
    assert checks.calibration_holds([noise], n=1 << 16).outcome == "FAIL"


# ----------------------------------------------------------------------------- runner bit-identity
def test_bit_identity_check_passes():
    outcome = checks.seed_alone_equals_batch(optimizers=("adam",), steps=5)
    ok, detail = outcome.outcome == "PASS", outcome.reason
    assert ok, detail


def test_bit_identity_check_fails_on_a_batch_dependent_stream(monkeypatch):
    """Mutant: noise drawn from one generator for the whole batch (the usual torch.randn(S, d) design)."""

    def batch_normal(self, step, channel, shape, dtype=torch.float64):
        g = torch.Generator().manual_seed(step)
        return torch.randn(len(self), *shape, generator=g, dtype=dtype)

    monkeypatch.setattr(rng_module.SeedStreams, "normal", batch_normal)
    outcome = checks.seed_alone_equals_batch(optimizers=("adam",), steps=5)
    ok, detail = outcome.outcome == "PASS", outcome.reason
    assert not ok, detail
