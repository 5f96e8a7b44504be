"""verify/methods/sn_sm.py: every check passes on the real code and fails on a planted bug (a mutant)."""

from __future__ import annotations

import pytest
import torch

import algorithms.adagrad_subset_norm as asn
import algorithms.adam_sn as adam_sn
import algorithms.adam_sn_sm as adam_sn_sm
import algorithms.subsets as subsets
import algorithms.subspace_momentum as sm
from verify.methods import sn_sm as checks
from verify.suite import load_checks

real_sum_of_squares = subsets.subset_sum_of_squares
real_layout = subsets.subset_layout
real_sm_update = sm.subspace_momentum_update
real_combine = sm.combine_numerator
real_second_moment = adam_sn.sn_second_moment_update


# ----------------------------------------------------------------------------- mutants (planted bugs)
def eps_inside_sqrt(param, grad, sum_sq, layout, *, lr, eps, weight_decay, batch_ndim):
    sum_sq.add_(real_sum_of_squares(grad, layout, batch_ndim))
    param.add_(subsets.divide_by_subsets(grad, (sum_sq + eps).sqrt(), layout, batch_ndim), alpha=-lr)


def mean_not_sum(grad, layout, batch_ndim):
    return real_sum_of_squares(grad, layout, batch_ndim) / max(layout.subset_size, 1)


def heuristics_along_the_larger_dim(shape, rule):
    """The "which dimension" pitfall: one accumulator per index of the smaller dimension instead of the larger."""
    if rule == "heuristics" and len(shape) == 2 and shape[0] != shape[1]:
        m, n = shape
        if m > n:  # should be rows (m, 1); the mutant sums over rows instead: (1, n)
            return subsets.SubsetLayout((m, n), (-2,), (1, n), m, n, None, False)
        return subsets.SubsetLayout((m, n), (-1,), (m, 1), n, m, None, False)
    return real_layout(shape, rule)


def torch_placement_always(numerator, exp_avg_sq, layout, *, c1, c2, eps, eps_placement, batch_ndim):
    denom = (exp_avg_sq.sqrt() / c2**0.5).add_(eps)
    return subsets.divide_by_subsets(numerator, denom, layout, batch_ndim) / c1


def ema_weights_swapped(exp_avg_sq, grad, layout, beta2, batch_ndim):
    exp_avg_sq.mul_(1 - beta2).add_(real_sum_of_squares(grad, layout, batch_ndim), alpha=beta2)


def momentum_without_dampening(grad, exp_avg, basis, side, *, beta1):
    low = sm.to_subspace(grad, basis, side)
    exp_avg.mul_(beta1).add_(low)
    return sm.from_subspace(exp_avg, basis, side, grad.shape), grad - sm.from_subspace(low, basis, side, grad.shape)


def orthogonal_part_dropped(grad, exp_avg, basis, side, *, beta1):
    lifted, orthogonal = real_sm_update(grad, exp_avg, basis, side, beta1=beta1)
    return lifted, torch.zeros_like(orthogonal)


def official_refresh_is_a_clean_reset(exp_avg, old_basis, new_basis, side, shape, rule):
    return torch.zeros_like(exp_avg)


def momentum_not_bias_corrected(lifted, orthogonal, c1, correct_sgd_part):
    return real_combine(lifted, orthogonal, 1.0, correct_sgd_part)


CASES = [
    (checks.adagrad_k1_vs_torch, asn, "adagrad_subset_norm_update", eps_inside_sqrt),
    (checks.rmsprop_k1_vs_torch, adam_sn, "sn_second_moment_update", ema_weights_swapped),
    (checks.adam_sn_k1_vs_adam_hf, adam_sn, "sn_adam_direction", torch_placement_always),
    (checks.subset_norm_vs_explicit_subsets, asn, "subset_sum_of_squares", mean_not_sum),
    (checks.subset_norm_vs_explicit_subsets, subsets, "subset_layout", heuristics_along_the_larger_dim),
    (checks.sm_full_rank_vs_ema_sgd, sm, "subspace_momentum_update", momentum_without_dampening),
    (checks.sm_fixed_subspace_vs_matrices, sm, "subspace_momentum_update", orthogonal_part_dropped),
    (checks.sm_official_refresh_vs_matrices, sm, "transfer_momentum", official_refresh_is_a_clean_reset),
    (checks.snsm_full_rank_vs_adam_sn, adam_sn_sm, "combine_numerator", momentum_not_bias_corrected),
]
IDS = [f"{fn.__name__}-{mutant.__name__}" for fn, _, _, mutant in CASES]


@pytest.mark.parametrize("check_fn,module,attr,mutant", CASES, ids=IDS)
def test_check_passes_on_the_real_code_and_fails_on_the_mutant(check_fn, module, attr, mutant, monkeypatch):
    outcome = check_fn(True)
    passed, detail = outcome.outcome == "PASS", outcome.reason
    assert passed, detail
    monkeypatch.setattr(module, attr, mutant)
    outcome = check_fn(True)
    passed, detail = outcome.outcome == "PASS", outcome.reason
    assert not passed, f"the check did not catch the planted bug {mutant.__name__}: {detail}"


def test_every_sn_sm_check_is_in_the_suite_and_covered_by_a_mutant():
    names = {c.fn.__name__ for c in load_checks() if c.group == checks.GROUP}
    assert names == {fn.__name__ for fn, _, _, _ in CASES}
