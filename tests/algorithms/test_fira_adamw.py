"""algorithms/fira_adamw.py against an independent transcription of Fira's Algorithm 1 and of the
official code's update, plus the exact reductions (float64): AdamW, GaLore, paper = official at α = 1."""

from __future__ import annotations

import pytest
import torch

import algorithms
from algorithms import fira_adamw
from algorithms.fira_adamw import FiraAdamW, limit_norm_growth, norm_scaling_factors
from algorithms.galore_adamw import GaLoreAdamW

from verify.methods.galore_fira import fira_transcription

from ..helpers import max_rel_err
from .test_galore_adamw import SHAPES, adamw_twin, gen, identity_first_gradient, randn, step_with

F64 = torch.float64


# ----------------------------------------------------------------------------- independent reference
# fira_transcription (verify/checks/galore_fira.py) writes Algorithm 1 and the code's update out with
# plain loops, sharing nothing with algorithms/; here it is also run with scaling="none" and every shape.
@pytest.mark.parametrize("scaling", ["column", "matrix", "none"])
@pytest.mark.parametrize("variant", ["paper", "official"])
@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_matches_the_independent_transcription(variant, shape_name, scaling):
    shape = SHAPES[shape_name]
    g = gen(20)
    w0 = randn(shape, g)
    # growing gradients, so that the limiter binds
    grads = [(1 + 0.3 * t) * randn(shape, g) for t in range(25)]
    kw = dict(lr=1e-2, alpha=0.4, rank=3, gap=4, gamma=1.01, wd=0.1)
    expected = fira_transcription(w0, grads, form=variant, scaling=scaling, eps=1e-8 if variant == "paper" else 1e-6, **kw)
    w = w0.clone().requires_grad_()
    opt = FiraAdamW([w], lr=1e-2, scale=0.4, rank=3, update_proj_gap=4, weight_decay=0.1, variant=variant,
                    scaling=scaling)
    for G in grads:
        step_with(opt, [w], [G])
    assert max_rel_err(w, expected) <= 1e-12


# ----------------------------------------------------------------------------- exact reductions
@pytest.mark.parametrize("variant", ["paper", "official"])
@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_identity_projector_and_unit_scale_is_adamw(variant, shape_name):
    shape = SHAPES[shape_name]
    g = gen(21)
    w0 = randn(shape, g)
    ours, twin = w0.clone().requires_grad_(), w0.clone().requires_grad_()
    eps = 1e-8 if variant == "paper" else 1e-6
    opt = FiraAdamW([ours], lr=2e-2, eps=eps, weight_decay=0.1, rank=min(shape), scale=1.0,
                    update_proj_gap=10_000, variant=variant)
    ref = adamw_twin(variant, [twin], 2e-2, 0.1, eps)
    for G in [identity_first_gradient(shape)] + [randn(shape, g) for _ in range(39)]:
        step_with(opt, [ours], [G])
        step_with(ref, [twin], [G])
    assert torch.equal(opt.state[ours]["residual_norm"], torch.zeros((), dtype=F64)), "P = ±I: no residual"
    assert max_rel_err(ours, twin) <= 1e-12


@pytest.mark.parametrize("variant", ["paper", "official"])
@pytest.mark.parametrize("shape_name", ["wide", "tall"])
def test_gradients_inside_the_subspace_make_fira_galore(variant, shape_name):
    """G_t = A B_t with a fixed rank-r factor A on the projected side: the SVD recovers span(A), the
    residual (I − PPᵀ)G_t is round-off, and Fira is GaLore (paper form at any α; official at α = 1,
    since its residual G − αPR = (1 − α)G otherwise)."""
    shape = SHAPES[shape_name]
    m, n = shape
    g = gen(22)
    r = 2
    alpha = 0.3 if variant == "paper" else 1.0
    d, k = (m, n) if m < n else (n, m)
    A = randn((d, r), g)
    grads = []
    for _ in range(20):
        Gs = A @ randn((r, k), g)
        grads.append(Gs if m < n else Gs.mT)
    w0 = randn(shape, g)
    a, b = w0.clone().requires_grad_(), w0.clone().requires_grad_()
    kw = dict(lr=1e-2, rank=r, scale=alpha, update_proj_gap=3, weight_decay=0.1, variant=variant)
    fira, galore = FiraAdamW([a], **kw), GaLoreAdamW([b], **kw)
    for G in grads:
        step_with(fira, [a], [G])
        step_with(galore, [b], [G])
    # official: its float32 SVD spans span(A) only to float32 round-off, so the residual is ~1e-7·‖G‖
    # (exactly zero residuals are tested below); paper: float64 SVD, round-off only
    tol = 1e-12 if variant == "paper" else 1e-7
    assert max_rel_err(a, b) <= tol


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_residual_forced_to_zero_is_galore(monkeypatch, variant):
    monkeypatch.setattr(fira_adamw, "fira_residual", lambda G, lifted, alpha, form: torch.zeros_like(G))
    g = gen(23)
    w0 = randn((8, 12), g)
    a, b = w0.clone().requires_grad_(), w0.clone().requires_grad_()
    kw = dict(lr=1e-2, rank=3, scale=0.25, update_proj_gap=3, weight_decay=0.1, variant=variant)
    fira, galore = FiraAdamW([a], **kw), GaLoreAdamW([b], **kw)
    for _ in range(20):
        G = randn((8, 12), g)
        step_with(fira, [a], [G])
        step_with(galore, [b], [G])
    assert max_rel_err(a, b) <= 1e-12


def run_forms(alpha, gamma, seed=24, steps=20):
    g = gen(seed)
    w0 = randn((8, 12), g)
    grads = [randn((8, 12), g) for _ in range(steps)]
    out = []
    for form in ("paper", "official"):
        w = w0.clone().requires_grad_()
        opt = FiraAdamW([w], lr=1e-2, rank=3, scale=alpha, update_proj_gap=4, limiter_gamma=gamma, residual_form=form)
        for G in grads:
            step_with(opt, [w], [G])
        out.append(w.detach())
    return out


def test_paper_and_official_residual_forms_agree_at_unit_scale_without_limiter():
    paper, official = run_forms(alpha=1.0, gamma=None)
    assert max_rel_err(official, paper) <= 1e-12


def test_paper_and_official_residual_forms_differ_for_alpha_below_one():
    """The Fira code leaks (1 − α)PR into the unscaled residual (max error 2.4 at α = 0.25 there)."""
    paper, official = run_forms(alpha=0.25, gamma=None)
    assert max_rel_err(official, paper) > 1e-2


def test_limiter_sees_the_uncorrected_residual_in_the_official_form():
    """With the limiter on, the forms differ at α = 1 only through the bias-correction factor b_t."""
    paper, official = run_forms(alpha=1.0, gamma=1.01)
    assert max_rel_err(official, paper) > 1e-6


# ----------------------------------------------------------------------------- pieces
def test_scaling_factors_follow_the_projection_side():
    g = gen(25)
    N, R = randn((3, 7), g), randn((3, 7), g)
    col = norm_scaling_factors(N, R, "left", "column", 0.0)
    assert col.shape == (1, 7)
    assert max_rel_err(col[0], N.norm(dim=0) / R.norm(dim=0)) <= 1e-15
    row = norm_scaling_factors(N.mT, R.mT, "right", "column", 0.0)
    assert row.shape == (7, 1) and max_rel_err(row[:, 0], col[0]) <= 1e-15
    mat = norm_scaling_factors(N, R, "left", "matrix", 0.0)
    assert mat.shape == (1, 1) and max_rel_err(mat[0, 0], N.norm() / R.norm()) <= 1e-15
    assert norm_scaling_factors(N, R, "left", "none", 0.0) == 1.0


@pytest.mark.parametrize("variant,transfer", [("paper", "keep"), ("official", "project")])
def test_tall_is_the_transpose_of_wide(variant, transfer):
    """The scaling axis follows the side: Fira on Wᵀ (left basis, per-column factors) is Fira on W
    (right basis, per-row factors) transposed. The official variant keeps LAPACK's raw signs, which
    differ between SVD(G) and SVD(Gᵀ); projected moments make it sign-independent (galore tests)."""
    g = gen(26)
    w0 = randn((10, 6), g)
    grads = [randn((10, 6), g) for _ in range(15)]
    a, b = w0.clone().requires_grad_(), w0.mT.clone().requires_grad_()
    kw = dict(lr=1e-2, rank=2, scale=0.5, update_proj_gap=3, variant=variant, moment_transfer=transfer)
    oa, ob = FiraAdamW([a], **kw), FiraAdamW([b], **kw)
    for G in grads:
        step_with(oa, [a], [G])
        step_with(ob, [b], [G.mT.contiguous()])
    tol = 1e-12 if variant == "paper" else 1e-5  # official: float32 SVDs of G and Gᵀ differ in round-off
    assert max_rel_err(a, b.mT) <= tol


def test_limit_norm_growth():
    g = gen(27)
    S = randn((2, 4, 5), g)
    first, norm = limit_norm_growth(S, None, 1.01, 1e-8)
    assert torch.equal(first, S) and max_rel_err(norm, S.norm(dim=(-2, -1))) <= 1e-15
    prev = torch.tensor([10.0, 0.1], dtype=F64) * S.norm(dim=(-2, -1))  # problem 0 shrinks, 1 grows
    out, new = limit_norm_growth(S, prev, 1.01, 0.0)
    assert torch.equal(out[0], S[0]) and max_rel_err(new[0], S[0].norm()) <= 1e-15
    assert max_rel_err(new[1], 1.01 * prev[1]) <= 1e-14 and max_rel_err(out[1].norm(), new[1]) <= 1e-14
    unlimited, _ = limit_norm_growth(S, prev, None, 0.0)
    assert torch.equal(unlimited, S)


def test_residual_norm_grows_by_at_most_gamma_per_step_and_the_limiter_binds():
    g = gen(28)
    w = randn((8, 12), g).requires_grad_()
    opt = FiraAdamW([w], lr=1e-2, rank=2, update_proj_gap=5, scale=1.0)
    norms = []
    for t in range(30):
        step_with(opt, [w], [(1.1**t) * randn((8, 12), g)])
        norms.append(float(opt.state[w]["residual_norm"]))
    for prev, now in zip(norms, norms[1:]):
        assert now <= 1.01 * (prev + 1e-8) * (1 + 1e-12)  # ‖S_t‖ ≤ γ(‖S_{t−1}‖ + ε_s)
    bound_hits = sum(now > 1.0099 * prev for prev, now in zip(norms, norms[1:]))
    assert bound_hits >= 5, "the test must exercise the limiter"


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_batched_problems_equal_separate_runs(variant):
    g = gen(29)
    S, shape = 3, (6, 10)
    w0 = randn((S, *shape), g)
    grads = [(1 + 0.2 * t) * randn((S, *shape), g) for t in range(8)]
    kw = dict(lr=1e-2, rank=2, update_proj_gap=3, scale=0.5, variant=variant, scaling="matrix")
    wb = w0.clone().requires_grad_()
    opt = FiraAdamW([wb], batch_dims=1, **kw)
    for G in grads:
        step_with(opt, [wb], [G])
    assert opt.state[wb]["residual_norm"].shape == (S,)
    for s in range(S):
        ws = w0[s].clone().requires_grad_()
        o = FiraAdamW([ws], **kw)
        for G in grads:
            step_with(o, [ws], [G[s]])
        assert max_rel_err(wb[s], ws) <= 1e-12


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_non_matrices_take_the_variants_adamw_step(variant):
    g = gen(30)
    init = [randn((7,), g), randn((3, 4, 2), g)]
    ours = [x.clone().requires_grad_() for x in init]
    twins = [x.clone().requires_grad_() for x in init]
    eps = 1e-8 if variant == "paper" else 1e-6
    opt = FiraAdamW(ours, lr=1e-2, eps=eps, weight_decay=0.1, rank=2, variant=variant)
    ref = adamw_twin(variant, twins, 1e-2, 0.1, eps)
    for _ in range(10):
        grads = [randn(x.shape, g) for x in init]
        step_with(opt, ours, grads)
        step_with(ref, twins, grads)
    for a, b in zip(ours, twins):
        assert max_rel_err(a, b) <= 1e-12


def test_registry_defaults_per_variant():
    p = torch.zeros(4, 6, requires_grad=True)
    paper = algorithms.make("fira_adamw", [p], rank=2)
    official = algorithms.make("fira_adamw", [p], rank=2, variant="official")
    assert (paper.defaults["eps"], paper.defaults["scale"], paper.defaults["residual_form"]) == (1e-8, 0.25, "paper")
    assert (official.defaults["eps"], official.defaults["scale"], official.defaults["residual_form"]) == (1e-6, 1.0, "official")
    assert paper.defaults["limiter_gamma"] == official.defaults["limiter_gamma"] == 1.01
