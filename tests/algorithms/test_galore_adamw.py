"""algorithms/galore_adamw.py: exact reductions (float64), refresh schedule, moment handling, sides,
ranks, SVD conventions, batching and routing."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import algorithms
from algorithms import _galore
from algorithms.galore_adamw import GaLoreAdamW
from algorithms.grouping import paper_param_groups
from algorithms.projection import change_of_basis

from ..helpers import max_rel_err

F64 = torch.float64
SHAPES = {"wide": (6, 10), "tall": (10, 6), "square": (7, 7)}


def gen(seed):
    return torch.Generator().manual_seed(seed)


def randn(shape, g, dtype=F64):
    return torch.randn(shape, generator=g, dtype=dtype)


def identity_first_gradient(shape, dtype=F64):
    """A gradient whose full-rank SVD basis on the projected side is exactly the identity: the
    projected dimension's unit vectors scaled by distinct descending singular values."""
    m, n = shape
    k = min(m, n)
    G = torch.zeros(shape, dtype=dtype)
    G[range(k), range(k)] = torch.linspace(3.0, 1.0, k, dtype=dtype)
    return G


def step_with(opt, params, grads):
    for p, g in zip(params, grads):
        p.grad = g.clone()
    opt.step()


def adamw_twin(variant, params, lr, wd, eps):
    """The AdamW each variant reduces to under an identity projector."""
    if variant == "paper":
        return torch.optim.AdamW(params, lr=lr, eps=eps, weight_decay=wd, foreach=False)
    return algorithms.make("adam", params, lr=lr, eps=eps, weight_decay=wd, eps_placement="hf",
                           weight_decay_timing="after")


# ----------------------------------------------------------------------------- exact reductions
@pytest.mark.parametrize("variant", ["paper", "official"])
@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_identity_projector_and_unit_scale_is_adamw(variant, shape_name):
    """r = the projected dimension, P = I (first gradient chosen so the SVD basis is I), α = 1, no refresh:
    paper ≡ torch.optim.AdamW, official ≡ HF AdamW (ε on the uncorrected √v, decay after)."""
    shape = SHAPES[shape_name]
    g = gen(1)
    w0 = randn(shape, g)
    ours = w0.clone().requires_grad_()
    twin = w0.clone().requires_grad_()
    eps = 1e-8 if variant == "paper" else 1e-6
    opt = GaLoreAdamW([ours], lr=2e-2, weight_decay=0.1, eps=eps, rank=min(shape), scale=1.0,
                      update_proj_gap=10_000, variant=variant)
    ref = adamw_twin(variant, [twin], 2e-2, 0.1, eps)
    grads = [identity_first_gradient(shape)] + [randn(shape, g) for _ in range(39)]
    for G in grads:
        step_with(opt, [ours], [G])
        step_with(ref, [twin], [G])
    basis = opt.state[ours]["basis"]
    assert torch.equal(basis.abs(), torch.eye(basis.shape[0], dtype=F64)), "the test needs P = ±I exactly"
    assert max_rel_err(ours, twin) <= 1e-12


@pytest.mark.parametrize("variant", ["paper", "official"])
@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_fixed_basis_is_adam_on_the_projected_gradient(variant, shape_name):
    """T ≥ steps: W_t − W_0 = α P (X_t − X_0), where X is Adam (same ε convention) stepped on R_t = PᵀG_t
    (left) or G_t P (right); the moments are Adam's."""
    shape = SHAPES[shape_name]
    g = gen(2)
    w = randn(shape, g).requires_grad_()
    w0 = w.detach().clone()
    alpha, lr = 0.3, 1e-2
    opt = GaLoreAdamW([w], lr=lr, rank=3, scale=alpha, update_proj_gap=1000, variant=variant)
    grads = [randn(shape, g) for _ in range(40)]
    step_with(opt, [w], grads[:1])
    U = opt.state[w]["basis"]
    side = _galore.resolve_side(*shape, "std", opt.defaults["square_side"])
    proj = (lambda G: U.mT @ G) if side == "left" else (lambda G: G @ U)
    lift = (lambda X: U @ X) if side == "left" else (lambda X: X @ U.mT)
    x = torch.zeros_like(proj(grads[0])).requires_grad_()
    adam = algorithms.make("adam", [x], lr=lr, eps=opt.defaults["eps"],
                           eps_placement="torch" if variant == "paper" else "hf")
    step_with(adam, [x], [proj(grads[0])])
    for G in grads[1:]:
        step_with(opt, [w], [G])
        step_with(adam, [x], [proj(G)])
    assert max_rel_err(w - w0, alpha * lift(x.detach())) <= 1e-12
    assert max_rel_err(opt.state[w]["exp_avg"], adam.state[x]["exp_avg"]) <= 1e-12
    assert max_rel_err(opt.state[w]["exp_avg_sq"], adam.state[x]["exp_avg_sq"]) <= 1e-12


@pytest.mark.parametrize("update_proj_gap", [1, 3])
def test_one_by_n_at_rank_one_is_adamw_under_pinned_signs(update_proj_gap):
    """1×n, r = 1: P = +1 under the paper's sign pin, so GaLore is AdamW for every refresh gap."""
    g = gen(3)
    w0 = randn((1, 9), g)
    a, b = w0.clone().requires_grad_(), w0.clone().requires_grad_()
    opt = GaLoreAdamW([a], lr=1e-2, rank=1, scale=1.0, update_proj_gap=update_proj_gap, weight_decay=0.05)
    ref = torch.optim.AdamW([b], lr=1e-2, eps=1e-8, weight_decay=0.05, foreach=False)
    for _ in range(30):
        G = randn((1, 9), g)
        step_with(opt, [a], [G])
        step_with(ref, [b], [G])
    assert max_rel_err(a, b) <= 1e-12


def test_official_one_by_n_with_projected_moments_is_hf_adamw_whatever_the_svd_signs():
    """Official (raw LAPACK signs, P = ±1 at each refresh) with moment_transfer="project": the sign flips
    are carried into the moments, so the trajectory is HF AdamW's even at T = 1."""
    g = gen(4)
    w0 = randn((1, 9), g)
    a, b = w0.clone().requires_grad_(), w0.clone().requires_grad_()
    opt = GaLoreAdamW([a], lr=1e-2, rank=1, update_proj_gap=1, variant="official", moment_transfer="project")
    ref = adamw_twin("official", [b], 1e-2, 0.0, 1e-6)
    for _ in range(30):
        G = randn((1, 9), g)
        step_with(opt, [a], [G])
        step_with(ref, [b], [G])
    assert max_rel_err(a, b) <= 1e-12


def test_full_rank_is_not_adam():
    """r = min(m, n) is Adam in a rotated basis, not Adam."""
    g = gen(5)
    w0 = randn((6, 10), g)
    a, b = w0.clone().requires_grad_(), w0.clone().requires_grad_()
    opt = GaLoreAdamW([a], lr=1e-2, rank=6, scale=1.0, update_proj_gap=1000)
    ref = torch.optim.AdamW([b], lr=1e-2, eps=1e-8, weight_decay=0.0, foreach=False)
    for _ in range(20):
        G = randn((6, 10), g)
        step_with(opt, [a], [G])
        step_with(ref, [b], [G])
    assert max_rel_err(a, b) > 1e-3


# ----------------------------------------------------------------------------- refreshes and moments
def test_refresh_schedule_is_one_based_steps_1_T_plus_1():
    g = gen(6)
    w = randn((6, 10), g).requires_grad_()
    opt = GaLoreAdamW([w], lr=1e-2, rank=2, update_proj_gap=3)
    changed, previous = [], None
    for t in range(1, 11):
        step_with(opt, [w], [randn((6, 10), g)])
        basis = opt.state[w]["basis"].clone()
        if previous is None or not torch.equal(basis, previous):
            changed.append(t)
        previous = basis
    assert changed == [1, 4, 7, 10]
    assert int(opt.state[w]["step"]) == 10


@pytest.mark.parametrize("transfer", ["keep", "project"])
def test_moments_at_a_refresh_are_kept_or_reprojected(transfer):
    g = gen(7)
    w = randn((6, 10), g).requires_grad_()
    opt = GaLoreAdamW([w], lr=1e-2, rank=2, update_proj_gap=2, moment_transfer=transfer)
    beta1, beta2 = opt.defaults["betas"]
    for _ in range(2):
        step_with(opt, [w], [randn((6, 10), g)])
    st = opt.state[w]
    M, V, U_old = st["exp_avg"].clone(), st["exp_avg_sq"].clone(), st["basis"].clone()
    G = randn((6, 10), g)
    step_with(opt, [w], [G])  # step 3 refreshes
    U = st["basis"]
    assert not torch.equal(U, U_old)
    R = U.mT @ G
    C = U.mT @ U_old
    if transfer == "keep":
        M_prev, V_prev = M, V
    else:
        M_prev, V_prev = C @ M, (C * C) @ V
    assert max_rel_err(st["exp_avg"], beta1 * M_prev + (1 - beta1) * R) <= 1e-13
    assert max_rel_err(st["exp_avg_sq"], beta2 * V_prev + (1 - beta2) * R * R) <= 1e-13


def test_transfer_moments_moves_momentum_exactly_and_keeps_v_nonnegative():
    g = gen(8)
    U_old = torch.linalg.qr(randn((9, 3), g))[0]
    U_new = torch.linalg.qr(randn((9, 3), g))[0]
    M, V = randn((3, 5), g), randn((3, 5), g).abs()
    C = change_of_basis(U_old, U_new)
    M2, V2 = _galore.transfer_moments(M, V, C, "left")
    assert max_rel_err(U_new @ M2, U_new @ U_new.mT @ (U_old @ M)) <= 1e-13
    assert bool((V2 >= 0).all())
    # right side: the transpose of the left rule
    M3, V3 = _galore.transfer_moments(M.mT, V.mT, C, "right")
    assert torch.allclose(M3, M2.mT, rtol=0, atol=1e-14) and torch.allclose(V3, V2.mT, rtol=0, atol=1e-14)
    # a signed permutation moves V exactly
    Q = torch.eye(3, dtype=F64)[[2, 0, 1]] * torch.tensor([1.0, -1.0, -1.0], dtype=F64)
    _, V4 = _galore.transfer_moments(M, V, change_of_basis(U_old, U_old @ Q.mT), "left")
    assert max_rel_err(V4, V[[2, 0, 1]]) <= 1e-14  # exact up to the round-off of C = U_newᵀU_old


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_sign_flips_at_refresh_change_kept_moments_but_not_projected_ones(monkeypatch, variant):
    """GaLore depends on SVD signs because its moments are not rotated (docs/methods.md §4.1); projecting the
    moments removes the dependence exactly."""
    real = _galore.subspace_basis
    g = gen(9)
    w0 = randn((8, 12), g)
    grads = [randn((8, 12), g) for _ in range(12)]

    def run(transfer, flip):
        calls = {"n": 0}

        def basis(G, rank, side, variant_):
            U = real(G, rank, side, variant_)
            calls["n"] += 1
            return -U if flip and calls["n"] % 2 == 0 else U

        monkeypatch.setattr(_galore, "subspace_basis", basis)
        w = w0.clone().requires_grad_()
        opt = GaLoreAdamW([w], lr=1e-2, rank=3, update_proj_gap=2, moment_transfer=transfer, variant=variant)
        for G in grads:
            step_with(opt, [w], [G])
        return w.detach()

    assert max_rel_err(run("project", True), run("project", False)) <= 1e-12
    assert max_rel_err(run("keep", True), run("keep", False)) > 1e-4


# ----------------------------------------------------------------------------- sides, ranks, SVD
@pytest.mark.parametrize(
    "variant,shape,proj_side,expected",
    [
        ("paper", (7, 7), "std", "left"), ("official", (7, 7), "std", "right"),
        ("paper", (6, 10), "std", "left"), ("official", (10, 6), "std", "right"),
        ("paper", (6, 10), "reverse_std", "right"), ("official", (7, 7), "reverse_std", "left"),
        ("official", (10, 6), "left", "left"),
    ],
)
def test_projection_side(variant, shape, proj_side, expected):
    w = randn(shape, gen(10)).requires_grad_()
    opt = GaLoreAdamW([w], lr=1e-2, rank=2, proj_side=proj_side, variant=variant)
    step_with(opt, [w], [randn(shape, gen(11))])
    st = opt.state[w]
    d = shape[0] if expected == "left" else shape[1]
    assert st["basis"].shape == (d, 2)
    assert st["exp_avg"].shape == ((2, shape[1]) if expected == "left" else (shape[0], 2))


def test_paper_rejects_a_rank_above_min_dim_and_official_truncates():
    w = torch.zeros(6, 10, dtype=F64, requires_grad=True)
    with pytest.raises(ValueError, match=r"rank must be <= the projected dimension 6.*got 7"):
        GaLoreAdamW([w], rank=7)
    v = torch.zeros(10, 6, dtype=F64, requires_grad=True)
    with pytest.raises(ValueError, match="at most min"):
        GaLoreAdamW([v], rank=7, proj_side="left")  # a left basis of a tall matrix: still ≤ min(m, n)
    opt = GaLoreAdamW([w, v], rank=50, variant="official", proj_side="left")
    for p in (w, v):
        p.grad = randn(p.shape, gen(12))
    opt.step()
    assert opt.state[w]["basis"].shape == (6, 6) and opt.state[v]["basis"].shape == (10, 6)


def test_paper_basis_is_the_float64_svd_with_pinned_signs():
    G = randn((8, 12), gen(13))
    w = torch.zeros(8, 12, dtype=F64, requires_grad=True)
    opt = GaLoreAdamW([w], rank=3)
    step_with(opt, [w], [G])
    U = opt.state[w]["basis"]
    Uf = torch.linalg.svd(G, full_matrices=False)[0][:, :3]
    signs = torch.sign(Uf.gather(0, Uf.abs().argmax(0, keepdim=True)))
    assert max_rel_err(U, Uf * signs) <= 1e-13
    assert max_rel_err(U.mT @ U, torch.eye(3, dtype=F64)) <= 1e-14


def test_official_basis_is_the_float32_svd_with_raw_signs_cast_back():
    G = randn((8, 12), gen(14))
    w = torch.zeros(8, 12, dtype=F64, requires_grad=True)
    opt = GaLoreAdamW([w], rank=3, variant="official")
    step_with(opt, [w], [G])
    U = opt.state[w]["basis"]
    assert U.dtype == F64
    assert torch.equal(U, torch.linalg.svd(G.float(), full_matrices=False)[0][:, :3].double())


# ----------------------------------------------------------------------------- batching, routing, grouping
@pytest.mark.parametrize("variant", ["paper", "official"])
def test_batched_problems_equal_separate_runs(variant):
    g = gen(15)
    S, shape = 3, (6, 10)
    w0 = randn((S, *shape), g)
    grads = [randn((S, *shape), g) for _ in range(8)]
    kw = dict(lr=1e-2, rank=2, update_proj_gap=3, weight_decay=0.1, variant=variant, moment_transfer="project")
    wb = w0.clone().requires_grad_()
    opt = GaLoreAdamW([wb], batch_dims=1, **kw)
    for G in grads:
        step_with(opt, [wb], [G])
    for s in range(S):
        ws = w0[s].clone().requires_grad_()
        o = GaLoreAdamW([ws], **kw)
        for G in grads:
            step_with(o, [ws], [G[s]])
        assert max_rel_err(wb[s], ws) <= 1e-12


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_non_matrices_and_dense_groups_take_the_variants_adamw_step(variant):
    g = gen(16)
    shapes = [(7,), (3, 4, 2), (6, 10)]
    init = [randn(s, g) for s in shapes]
    ours = [x.clone().requires_grad_() for x in init]
    twins = [x.clone().requires_grad_() for x in init]
    eps = 1e-8 if variant == "paper" else 1e-6
    opt = GaLoreAdamW([{"params": ours[:2]}, {"params": ours[2:], "lowrank": False}], lr=1e-2, eps=eps,
                      weight_decay=0.1, rank=2, variant=variant)
    ref = adamw_twin(variant, twins, 1e-2, 0.1, eps)
    for _ in range(15):
        grads = [randn(s, g) for s in shapes]
        step_with(opt, ours, grads)
        step_with(ref, twins, grads)
    for a, b in zip(ours, twins):
        assert max_rel_err(a, b) <= 1e-12
    assert all("basis" not in opt.state[p] for p in ours)


def test_nan_gradient_propagates_instead_of_raising_from_the_svd():
    w = torch.ones(6, 10, dtype=F64, requires_grad=True)
    opt = GaLoreAdamW([w], rank=2, nonfinite="ignore")
    w.grad = torch.full((6, 10), float("nan"), dtype=F64)
    opt.step()
    assert bool(torch.isnan(w).all())


class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(11, 8)
        self.attn = nn.Linear(8, 8)
        self.mlp = nn.Linear(8, 16)
        self.norm = nn.LayerNorm(16)
        self.lm_head = nn.Linear(16, 11, bias=False)


def test_param_groups_helper_uses_the_papers_split():
    model = TinyLM().double()
    groups = paper_param_groups("galore_adamw", model, rank=2, update_proj_gap=5)
    low, dense = groups
    assert low["param_names"] == ["attn.weight", "mlp.weight"] and low["rank"] == 2
    assert dense["lowrank"] is False and "lm_head.weight" in dense["param_names"]
    opt = GaLoreAdamW(groups, lr=1e-2)
    x = model.lm_head(model.norm(model.mlp(model.attn(model.embed(torch.tensor([1, 2, 3]))))))
    x.square().mean().backward()
    opt.step()
    assert "basis" in opt.state[model.attn.weight] and "basis" not in opt.state[model.lm_head.weight]
