"""algorithms/adarankgrad.py: the GaLore identities, the rank rule, the refresh triggers, the moment
transformation, the rank trace, and the unverified-argument surface."""

from __future__ import annotations

import io
import math

import pytest
import torch
import torch.nn as nn

import algorithms
from algorithms.grouping import paper_param_groups
from verify.rank.diagnostics import rank_summary, rank_trace, rank_traces, refresh_steps
from algorithms import adarankgrad as A

from ..helpers import max_rel_err

F64 = torch.float64


def stream(shape, steps, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=F64) for _ in range(steps)]


def start(shape, seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def feed(opt, params, steps):
    for grads in steps:
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()


def spectrum_matrix(m, n, singular_values, seed=0):
    """U diag(s) Vᵀ with random orthonormal U, V: a gradient whose spectrum is known exactly."""
    g = torch.Generator().manual_seed(seed)
    k = len(singular_values)
    U = torch.linalg.qr(torch.randn(m, k, generator=g, dtype=F64))[0]
    V = torch.linalg.qr(torch.randn(n, k, generator=g, dtype=F64))[0]
    return U @ torch.diag(torch.tensor(singular_values, dtype=F64)) @ V.T


def galore_or_skip():
    if "galore_adamw" not in algorithms.REGISTRY:
        pytest.skip("galore_adamw is not registered (algorithms/galore_adamw.py missing)")


# ----------------------------------------------------------------------------- GaLore identities
CONVENTIONS = {
    # GaLore Algorithm 2 conventions (galore_adamw variant="paper" defaults)
    "alg2": dict(eps=1e-8, eps_placement="torch", weight_decay_timing="before", square_side="left"),
    # the GaLore code's conventions, with a float64 SVD (galore_adamw variant="paper" overridden)
    "code": dict(eps=1e-6, eps_placement="hf", weight_decay_timing="after", square_side="right"),
}
SHAPES = [(10, 6), (6, 10), (7, 7), (9,)]


def _galore_pair(conventions, moment_transfer, rank=3, gap=4, scale=0.5, wd=0.05):
    galore_or_skip()
    xs = [start(s, seed=i) for i, s in enumerate(SHAPES)]
    ours_p = [x.clone().requires_grad_() for x in xs]
    ref_p = [x.clone().requires_grad_() for x in xs]
    first, second = {"keep": ("keep", "keep"), "project": ("rotate", "squared")}[moment_transfer]
    ours = algorithms.make(
        "adarankgrad", ours_p, lr=0.02, weight_decay=wd, min_rank=rank, max_rank=rank, subspace_tol=None,
        max_steps_per_subspace=gap, svd="exact", first_moment_transform=first, second_moment_transform=second,
        scale=scale, sign="max_abs", **conventions,
    )
    ref = algorithms.make("galore_adamw", ref_p, lr=0.02, weight_decay=wd, rank=rank, update_proj_gap=gap,
                          scale=scale, moment_transfer=moment_transfer, variant="paper", **conventions)
    steps = list(zip(*[stream(s, 30, seed=20 + i) for i, s in enumerate(SHAPES)]))
    feed(ours, ours_p, steps)
    feed(ref, ref_p, steps)
    return ours, ours_p, ref, ref_p


@pytest.mark.parametrize("conventions", list(CONVENTIONS), ids=list(CONVENTIONS))
def test_fixed_rank_no_trigger_no_transform_equals_galore(conventions):
    """r_min = r_max, convergence trigger off, cap T, exact SVD, moments kept ⇒ galore_adamw (float64;
    30 steps, refreshes at 1, 5, 9, …; tall, wide, square and a dense vector)."""
    ours, ours_p, ref, ref_p = _galore_pair(CONVENTIONS[conventions], "keep")
    for p, q in zip(ours_p, ref_p):
        assert max_rel_err(p, q) <= 1e-12
    for p, q in zip(ours_p[:3], ref_p[:3]):
        assert max_rel_err(ours.state[p]["exp_avg_sq"], ref.state[q]["exp_avg_sq"]) <= 1e-12
        assert refresh_steps(ours, p) == [1, 5, 9, 13, 17, 21, 25, 29]


def test_fixed_rank_with_moment_transform_equals_galore_with_reprojection():
    """The same with M ← RM, V ← (R∘R)V ⇒ galore_adamw(moment_transfer="project") (spec §B6)."""
    _, ours_p, _, ref_p = _galore_pair(CONVENTIONS["alg2"], "project")
    for p, q in zip(ours_p, ref_p):
        assert max_rel_err(p, q) <= 1e-12


def test_identity_projector_equals_torch_adamw():
    """An identity projector: full rank, a first gradient whose singular vectors are the standard basis
    (so Q = I with pinned signs), and the subspace never refreshed ⇒ torch.optim.AdamW."""
    x = start((4, 4))
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours = algorithms.make("adarankgrad", [a], lr=0.05, min_rank=4, max_rank=4, svd="exact",
                           max_steps_per_subspace=None, first_moment_transform="keep", second_moment_transform="keep")
    theirs = torch.optim.AdamW([b], lr=0.05, weight_decay=0.0, foreach=False)
    first = torch.diag(torch.tensor([4.0, 3.0, 2.0, 1.0], dtype=F64))  # U = I, signs positive
    for g in [first] + stream((4, 4), 20):
        a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        theirs.step()
    assert torch.equal(ours.state[a]["basis"], torch.eye(4, dtype=F64))
    assert max_rel_err(a, b) <= 1e-12


# ----------------------------------------------------------------------------- the rank rule
SPECTRUM = [3.0, 2.0, 1.0, 0.5, 0.25]  # energies 9, 4, 1, .25, .0625 of 14.3125


def _chosen_rank(svd="exact", **kw):
    G = spectrum_matrix(8, 12, SPECTRUM)
    p = torch.zeros(8, 12, dtype=F64, requires_grad=True)
    opt = algorithms.make("adarankgrad", [p], lr=0.01, svd=svd, oversampling=4, **{"max_rank": 8, **kw})
    p.grad = G
    opt.step()
    return opt.state[p]["basis"].shape[-1], rank_trace(opt, p)


def kept(r):
    return sum(s * s for s in SPECTRUM[:r]) / sum(s * s for s in SPECTRUM)


@pytest.mark.parametrize("svd", ["exact", "randomized"])
@pytest.mark.parametrize("tau,expected", [(0.5, 1), (0.9, 2), (0.95, 3), (0.99, 4), (1.0, 5), (0.0, 1)])
def test_energy_rule_picks_the_smallest_rank_keeping_tau(tau, expected, svd):
    """Kept fractions are 0.629, 0.908, 0.978, 0.996, 1. The randomized sketch here has width
    max_rank + p = 12 ≥ rank(G) = 5, so it is exact too."""
    assert kept(expected) >= tau and (expected == 1 or kept(expected - 1) < tau)
    rank, trace = _chosen_rank(svd=svd, rank_rule="energy", rank_threshold=tau)
    assert rank == expected and trace == [expected]


def test_the_three_rank_rules_are_one_rule():
    tau = 0.95
    by_rule = {
        "energy": tau,
        "relative_residual": math.sqrt(1 - tau),
        "residual_energy": 1 - tau,
    }
    ranks = {rule: _chosen_rank(rank_rule=rule, rank_threshold=t)[0] for rule, t in by_rule.items()}
    assert set(ranks.values()) == {3}, ranks


def test_rank_bounds_and_grid():
    assert _chosen_rank(rank_threshold=0.5, min_rank=2)[0] == 2          # r_min floors the rule
    assert _chosen_rank(rank_threshold=1.0, max_rank=3)[0] == 3          # r_max caps it
    assert _chosen_rank(rank_threshold=0.95, min_rank=1, rank_step=3)[0] == 4  # 3 → grid {1, 4, 7}
    assert _chosen_rank(rank_threshold=1.0, min_rank=2, rank_step=4)[0] == 6   # 5 → grid {2, 6}


def test_truncated_sketch_counts_the_full_frobenius_energy():
    """With max_rank = 2 the sketch sees σ₁, σ₂ only. Against ‖G‖_F² rank 1 keeps 0.629 < 0.65, so the
    rule needs rank 2; against the truncated energy σ₁² + σ₂² it would wrongly stop at rank 1 (0.692)."""
    G = spectrum_matrix(8, 12, SPECTRUM)
    S = torch.linalg.svdvals(G)[:2]
    assert int(A.energy_rank(S, (S * S).sum(), 0.65, min_rank=1, max_rank=2)) == 1  # the wrong denominator
    assert _chosen_rank(rank_threshold=0.65, max_rank=2)[0] == 2
    assert _chosen_rank(rank_threshold=0.65, max_rank=2, svd="randomized")[0] == 2


# ----------------------------------------------------------------------------- refresh triggers
def test_cap_refreshes_every_k_steps():
    p = start((6, 9)).requires_grad_()
    opt = algorithms.make("adarankgrad", [p], lr=0.01, max_rank=3, max_steps_per_subspace=4)
    feed(opt, [p], [[g] for g in stream((6, 9), 13)])
    assert refresh_steps(opt, p) == [1, 5, 9, 13]


def test_projected_norm_trigger_is_absolute_and_uses_the_old_basis():
    """Steps 1–3: a rank-1 gradient u vᵀ (norm 2, inside the subspace, so ‖QᵀG‖ = 2 > ς = 0.1); step 4:
    a gradient orthogonal to the subspace (‖QᵀG‖ = 0 ≤ ς) triggers the refresh at that step."""
    m, n = 6, 9
    U = torch.linalg.qr(start((m, m), seed=5))[0]
    v = torch.linalg.qr(start((n, 2), seed=6))[0]
    inside = 2.0 * torch.outer(U[:, 0], v[:, 0])
    outside = 3.0 * torch.outer(U[:, 1], v[:, 1])
    p = torch.zeros(m, n, dtype=F64, requires_grad=True)
    opt = algorithms.make("adarankgrad", [p], lr=0.01, max_rank=1, subspace_tol=0.1, max_steps_per_subspace=None,
                          proj_side="left")
    feed(opt, [p], [[inside]] * 3 + [[outside]] + [[outside]] * 2)
    assert refresh_steps(opt, p) == [1, 4]
    assert max_rel_err(opt.state[p]["basis"].abs(), U[:, 1:2].abs()) <= 1e-12


def test_tolerance_schedule_multiplies_per_subspace():
    """‖QᵀG‖ = 0.5 at every step; ς₀ = 1, γ = 0.1: refresh at 1 (start) and 2 (0.5 ≤ 1), then the
    tolerance of the third subspace is 0.1 < 0.5, so no further refresh."""
    G = 0.5 * torch.outer(start((6,), seed=1), start((9,), seed=2)) / (start((6,), seed=1).norm() * start((9,), seed=2).norm())
    p = torch.zeros(6, 9, dtype=F64, requires_grad=True)
    opt = algorithms.make("adarankgrad", [p], lr=0.01, max_rank=1, subspace_tol=1.0, subspace_tol_factor=0.1,
                          max_steps_per_subspace=None)
    feed(opt, [p], [[G]] * 6)
    assert refresh_steps(opt, p) == [1, 2]


def test_both_triggers_off_keeps_the_first_subspace():
    p = start((6, 9)).requires_grad_()
    opt = algorithms.make("adarankgrad", [p], lr=0.01, max_rank=3, max_steps_per_subspace=None, subspace_tol=None)
    feed(opt, [p], [[g] for g in stream((6, 9), 10)])
    assert refresh_steps(opt, p) == [1]


# ----------------------------------------------------------------------------- moments at a refresh
def _refresh_once(first, second, side="left"):
    """Two steps with different gradients and a cap of 1 (refresh at step 2, with a rank change)."""
    m, n = (6, 9) if side == "left" else (9, 6)
    G1 = spectrum_matrix(m, n, [3.0, 1.0], seed=1)
    G2 = spectrum_matrix(m, n, [2.0, 1.5, 1.0], seed=2)
    p = torch.zeros(m, n, dtype=F64, requires_grad=True)
    opt = algorithms.make("adarankgrad", [p], lr=0.01, betas=(0.9, 0.99), max_rank=3, rank_threshold=0.999,
                          svd="exact", max_steps_per_subspace=1, first_moment_transform=first,
                          second_moment_transform=second)
    p.grad = G1
    opt.step()
    st = opt.state[p]
    old = {k: st[k].clone() for k in ("basis", "exp_avg", "exp_avg_sq")}
    p.grad = G2
    opt.step()
    return opt.state[p], old, G2


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("second", ["squared", "abs", "clamp", "reset"])
@pytest.mark.parametrize("first", ["rotate", "reset"])
def test_moment_transformation_at_a_change_of_subspace(first, second, side):
    st, old, G = _refresh_once(first, second, side)
    Q, Q_old = st["basis"], old["basis"]
    assert Q.shape[-1] == 3 and Q_old.shape[-1] == 2  # the rank changed 2 → 3
    R = Q.mT @ Q_old

    def rot(X, C):
        return C @ X if side == "left" else X @ C.mT

    M_t = {"rotate": rot(old["exp_avg"], R), "reset": 0.0}[first]
    V_t = {"squared": rot(old["exp_avg_sq"], R * R), "abs": rot(old["exp_avg_sq"], R).abs(),
           "clamp": rot(old["exp_avg_sq"], R).clamp_min(0), "reset": 0.0}[second]
    G_hat = Q.mT @ G if side == "left" else G @ Q
    assert max_rel_err(st["exp_avg"], 0.9 * M_t + 0.1 * G_hat) <= 1e-12
    assert max_rel_err(st["exp_avg_sq"], 0.99 * V_t + 0.01 * G_hat**2) <= 1e-12
    assert bool((st["exp_avg_sq"] >= 0).all())


def test_rotated_first_moment_is_the_projection_of_the_lifted_momentum():
    st, old, G = _refresh_once("rotate", "squared")
    Q, Q_old = st["basis"], old["basis"]
    lifted_old = Q_old @ old["exp_avg"]
    new_part = st["exp_avg"] - 0.1 * (Q.mT @ G)
    assert max_rel_err(Q @ new_part, 0.9 * Q @ (Q.mT @ lifted_old)) <= 1e-12


def test_linear_second_moment_map_can_go_negative_so_the_guard_matters():
    """With the stream below R V has negative entries, which 'abs' and 'clamp' repair (and 'squared'
    never produces)."""
    st, old, _ = _refresh_once("rotate", "squared")
    R = st["basis"].mT @ old["basis"]
    assert bool(((R @ old["exp_avg_sq"]) < 0).any())


# ----------------------------------------------------------------------------- the rank trace
def _adaptive_run(steps=12):
    """Gradients whose rank grows from 1 to 3 at step 7 (cap 3: refreshes at 1, 4, 7, 10)."""
    low = [spectrum_matrix(6, 9, [2.0], seed=t) for t in range(6)]
    high = [spectrum_matrix(6, 9, [2.0, 1.8, 1.6], seed=t) for t in range(6, steps)]
    p = torch.zeros(6, 9, dtype=F64, requires_grad=True)
    model_names = {"params": [p], "param_names": ["layer.weight"]}
    opt = algorithms.make("adarankgrad", [model_names], lr=0.01, max_rank=4, rank_threshold=0.9,
                          max_steps_per_subspace=3, oversampling=2, seed=5)
    feed(opt, [p], [[g] for g in low + high])
    return opt, p


def test_rank_trace_follows_the_gradient_rank_and_is_exposed():
    opt, p = _adaptive_run()
    assert refresh_steps(opt, p) == [1, 4, 7, 10]
    assert rank_trace(opt, p) == [1] * 6 + [3] * 6
    assert rank_traces(opt) == {"layer.weight": [1] * 6 + [3] * 6}
    summary = rank_summary(opt)["layer.weight"]
    assert summary["mean_rank"] == 2.0 and summary["max_rank"] == 3 and summary["final_rank"] == 3
    assert summary["refreshes"] == 4 and summary["peak_state_elements"] == 3 * (6 + 2 * 9)
    st = opt.state[p]
    assert st["exp_avg"].shape == (3, 9) and st["basis"].shape == (6, 3)  # state sized by r_t, not r_max


def test_rank_trace_survives_a_weights_only_checkpoint():
    opt, p = _adaptive_run()
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    q = p.detach().clone().requires_grad_()
    fresh = algorithms.make("adarankgrad", [q], lr=0.01, max_rank=4, rank_threshold=0.9,
                            max_steps_per_subspace=3, oversampling=2, seed=5)
    fresh.load_state_dict(torch.load(buf, weights_only=True))
    assert rank_trace(fresh, q) == rank_trace(opt, p)
    assert fresh.state[q]["refresh_log"].device.type == "cpu"


def test_dense_parameters_have_no_trace_and_equal_torch_adamw():
    x = start((7,))
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    opt = algorithms.make("adarankgrad", [a], lr=0.03, weight_decay=0.1, max_rank=2)
    ref = torch.optim.AdamW([b], lr=0.03, weight_decay=0.1, foreach=False)
    grads = stream((7,), 20)
    feed(opt, [a], [[g] for g in grads])
    feed(ref, [b], [[g] for g in grads])
    assert max_rel_err(a, b) <= 1e-12
    assert rank_trace(opt, a) == [] and rank_traces(opt) == {}


# ----------------------------------------------------------------------------- randomness, validation
def test_randomized_svd_uses_only_the_optimizers_generator():
    before = torch.random.get_rng_state()
    outs = []
    for _ in range(2):
        p = start((10, 12)).requires_grad_()
        opt = algorithms.make("adarankgrad", [p], lr=0.01, max_rank=3, oversampling=1, power_iters=0,
                              max_steps_per_subspace=2, seed=9)
        feed(opt, [p], [[g] for g in stream((10, 12), 6)])
        outs.append(p.detach())
        assert "rng_state" in opt.state[p]
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.equal(outs[0], outs[1])


def test_exact_svd_draws_nothing():
    p = start((6, 9)).requires_grad_()
    opt = algorithms.make("adarankgrad", [p], lr=0.01, max_rank=3, svd="exact")
    feed(opt, [p], [[g] for g in stream((6, 9), 2)])
    assert "rng_state" not in opt.state[p]


def test_batch_dims_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="batch_dims"):
        algorithms.make("adarankgrad", [torch.zeros(3, 4, 5, requires_grad=True)], batch_dims=1)
    assert A.AdaRankGrad.supports_batch_dims is False


def test_rank_bounds_checked_against_every_matrix():
    p = torch.zeros(4, 10, requires_grad=True)
    with pytest.raises(ValueError, match=r"max_rank must be <= the projected dimension 4.*4x10"):
        algorithms.make("adarankgrad", [p], max_rank=5)
    with pytest.raises(ValueError, match="min_rank must be <= the projected dimension 4"):
        algorithms.make("adarankgrad", [{"params": [p], "min_rank": 5, "max_rank": 5}], max_rank=5)


def test_docstring_marks_every_choice_unverified():
    doc = A.AdaRankGrad.__doc__
    assert "UNVERIFIED" in doc and "not* the paper's" in doc
    for arg in ("min_rank", "max_rank", "rank_rule", "rank_threshold", "subspace_tol", "max_steps_per_subspace",
                "oversampling", "power_iters", "first_moment_transform", "second_moment_transform",
                "bias_correction", "eps_placement", "scale", "proj_side", "sign"):
        assert arg in doc, arg


def test_non_finite_gradient_propagates_without_raising():
    p = start((5, 7)).requires_grad_()
    opt = algorithms.make("adarankgrad", [p], lr=0.01, max_rank=2, nonfinite="ignore")
    p.grad = torch.full((5, 7), math.nan, dtype=F64)
    opt.step()
    assert torch.isnan(p).all()


class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.attn = nn.Linear(8, 8, bias=False)
        self.mlp = nn.Linear(8, 12, bias=False)
        self.norm = nn.LayerNorm(8)
        self.lm_head = nn.Linear(8, 10, bias=False)


def test_param_groups_helper():
    model = TinyLM().double()
    groups = paper_param_groups("adarankgrad", model, max_rank=4)
    assert groups[0]["param_names"] == ["attn.weight", "mlp.weight"] and groups[0]["max_rank"] == 4
    assert groups[1]["lowrank"] is False and "lm_head.weight" in groups[1]["param_names"]
    opt = algorithms.make("adarankgrad", groups, lr=1e-2)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    opt.step()
    assert set(rank_traces(opt)) == {"attn.weight", "mlp.weight"}


def test_state_elements_follow_the_rank_trace():
    """docs/memory.md §1: r_t·(min + 2·max) at step t per projected matrix; the counters and the log are O(1) and
    O(refreshes) host integers."""
    opt, p = _adaptive_run()
    st = opt.state[p]
    floats = sum(v.numel() for v in st.values() if v.is_floating_point())
    assert floats == rank_trace(opt, p)[-1] * (6 + 2 * 9)
    assert st["refresh_log"].tolist() == [[1, 1], [4, 1], [7, 3], [10, 3]]
