"""verify/methods/galore_fira.py: every check passes on the real code and fails on a planted bug (a mutant)."""

from __future__ import annotations

import pytest

import algorithms._galore as galore_base
import algorithms.fira_adamw as fira
import algorithms.galore_adamw as galore
from verify.methods import galore_fira as checks
from verify.suite import load_checks

real_direction = galore_base.subspace_direction
real_residual = fira.fira_residual
real_factors = fira.norm_scaling_factors
real_galore_update = galore.galore_update


# ----------------------------------------------------------------------------- mutants (planted bugs)
def hf_eps_always(exp_avg, exp_avg_sq, step, group):
    """ε on the uncorrected √V for every variant (the paper's bias-corrected ε lost)."""
    return real_direction(exp_avg, exp_avg_sq, step, {**group, "eps_placement": "hf"})


def scale_ignored(param, R, basis, exp_avg, exp_avg_sq, step, group, side):
    real_galore_update(param, R, basis, exp_avg, exp_avg_sq, step, {**group, "scale": 1.0}, side)


def moments_on_the_raw_gradient_norm(exp_avg, exp_avg_sq, step, group):
    """Drop the bias correction of the subspace step (c1 = c2 = 1)."""
    return real_direction(exp_avg, exp_avg_sq, step, {**group, "bias_correction": False})


def residual_not_subtracted(G, lifted_R, alpha, form):
    return G.clone()


def leak_in_the_paper_form(G, lifted_R, alpha, form):
    return G - alpha * lifted_R


def squared_norm_ratio(N, R, side, scaling, eps):
    """Sums of squares without the square root: φ² instead of φ."""
    phi = real_factors(N, R, side, scaling, eps)
    return phi * phi


def limiter_uses_the_corrected_residual(step, group):
    return 1.0


import algorithms.projection as projection  # noqa: E402

real_project_back = projection.project_back


def project_back_transposed(R, U, side):
    """The lift through Uᵀ on the left side's square block (a basis that is not the projection's)."""
    if side == "left":
        return (U @ R).flip(0)
    return real_project_back(R, U, side)


CASES = [
    (checks.galore_theorem_3_8, projection, "project_back", project_back_transposed),
    (checks.galore_identity_vs_adamw, galore, "subspace_direction", hf_eps_always),
    (checks.galore_fixed_basis_vs_projected_adam, galore, "galore_update", scale_ignored),
    (checks.fira_identity_vs_adamw, fira, "subspace_direction", moments_on_the_raw_gradient_norm),
    (checks.fira_zero_residual_vs_galore, fira, "fira_residual", residual_not_subtracted),
    (checks.fira_vs_transcription, fira, "fira_residual", leak_in_the_paper_form),
    (checks.fira_vs_transcription, fira, "norm_scaling_factors", squared_norm_ratio),
    (checks.fira_vs_transcription, fira, "bias_factor", limiter_uses_the_corrected_residual),
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


def test_every_galore_fira_check_is_in_the_suite_and_covered_by_a_mutant():
    names = {c.fn.__name__ for c in load_checks() if c.group == checks.GROUP}
    assert names == {fn.__name__ for fn, _, _, _ in CASES}

