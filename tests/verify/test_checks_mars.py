"""verify/methods/mars.py: every check passes on the real code and fails on a planted bug (a mutant)."""

from __future__ import annotations

import pytest
import torch

import algorithms.mars as mars_core
import algorithms.mars_shampoo as shampoo
from verify.methods import mars as checks
from verify.suite import load_checks

real_ns = shampoo.newton_schulz


# ----------------------------------------------------------------------------- mutants (planted bugs)
def always_normalise(norm, threshold):
    """Clipping that fires whatever the norm (c/‖c‖ always)."""
    return norm / threshold, torch.ones_like(norm, dtype=torch.bool)


def clip_by_squared_norm(cs, threshold, batch_dims):
    """Per-tensor clipping that divides by ‖c‖² instead of ‖c‖ (fires at the same steps, scales wrongly)."""
    fired_masks = []
    for c in cs:
        divisor, fired = mars_core.clip_divisor(mars_core.problem_sq_norm(c, batch_dims), threshold)
        mars_core._divide_problems(c, divisor, batch_dims)
        fired_masks.append(fired)
    return fired_masks


def correction_sign_flipped(grad, prev_point_grad, *, gamma, beta1):
    """c_t = g_t − k(g_t − h_t): the correction subtracted instead of added."""
    return grad - mars_core.correction_scale(gamma, beta1) * (grad - prev_point_grad)


def correction_without_beta(gamma, beta1):
    """k = γ/(1−β1): the β1 factor of Algorithm 1 dropped."""
    return gamma / (1.0 - beta1)


def stale_previous_point(self, current, previous_point):
    """x_{t-1} is stored once and never moved on."""
    for p in self._all_params():
        if p.grad is not None and "x_prev" not in self.state[p]:
            self.state[p]["x_prev"] = p.detach().clone()


def alias_previous_gradient(state, grad):
    state["prev_grad"] = grad


def normalise_not_orthogonalise(M):
    return M / torch.linalg.matrix_norm(M, keepdim=True)


def ns_coefficients_swapped(M, *, steps=5, coefficients=shampoo.NS_COEFFICIENTS, **kwargs):
    a, b, c = coefficients
    return real_ns(M, steps=steps, coefficients=(a, c, b), **kwargs)


def approx_noise_not_averaged(*args, **kwargs):
    """The variance-reduced gradient computed from the current sample twice (g_t − g_t): γ's correction vanishes."""
    grad = args[0] if args else kwargs["grad"]
    return grad.clone()


MUTANTS = [
    (checks.estimator_mse, mars_core, "variance_reduced_gradient", approx_noise_not_averaged),
    (checks.gamma_zero_vs_torch_adamw, mars_core, "clip_divisor", always_normalise),
    (checks.gamma_zero_clipped_vs_torch_adamw, mars_core, "clip_tensorwise", clip_by_squared_norm),
    (checks.approx_momentum_identity, mars_core, "correction_scale", correction_without_beta),
    (checks.exact_is_storm, mars_core.MarsOptimizerBase, "_store_previous_points", stale_previous_point),
    (checks.inplace_zero_grad_is_harmless, mars_core, "remember_gradient", alias_previous_gradient),
    (checks.mars_lion_vs_lion, mars_core, "variance_reduced_gradient", correction_sign_flipped),
    (checks.shampoo_svd_vs_eigh, shampoo, "polar_factor", normalise_not_orthogonalise),
    (checks.shampoo_ns_vs_quintic, shampoo, "newton_schulz", ns_coefficients_swapped),
]
IDS = [m[0].__name__ for m in MUTANTS]


def test_every_mars_check_has_a_mutant():
    mine = {c.fn for c in load_checks() if c.group == checks.GROUP}
    assert mine == {m[0] for m in MUTANTS}


@pytest.mark.parametrize("fn", [m[0] for m in MUTANTS], ids=IDS)
def test_check_passes_on_the_real_code(fn):
    outcome = fn(True)
    passed, detail = outcome.outcome == "PASS", outcome.reason
    assert passed, detail


@pytest.mark.parametrize("fn,target,attr,mutant", MUTANTS, ids=IDS)
def test_check_fails_on_its_mutant(fn, target, attr, mutant, monkeypatch):
    monkeypatch.setattr(target, attr, mutant)
    outcome = fn(True)
    passed, detail = outcome.outcome == "PASS", outcome.reason
    assert not passed, detail
