"""algorithms/subspace_momentum.py: exact reductions, the four refresh rules against explicit matrices,
projection sides, the official float32 SVD, rank overflow, batch dims, routing."""

from __future__ import annotations

import pytest
import torch

import algorithms

from ..helpers import max_rel_err

M, N = 8, 5  # tall: svd projects on the right (n), index projectors select rows (m)


def grads_for(shape, steps, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(steps)]


def x_start(shape, seed=3):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def run(kwargs, shape=(M, N), steps=12, seed=0, name="subspace_momentum"):
    x = x_start(shape).requires_grad_()
    opt = algorithms.make(name, [x], **kwargs)
    trajectory = []
    for g in grads_for(shape, steps, seed):
        x.grad = g.clone()
        opt.step()
        trajectory.append(x.detach().clone())
    return trajectory, opt, x


def run_sgd(kwargs, shape=(M, N), steps=12, seed=0):
    return run(kwargs, shape, steps, seed, name="sgd")


# ----------------------------------------------------------------------------- exact reductions
def test_rank_zero_equals_torch_sgd():
    ours, _, _ = run({"lr": 0.1, "momentum": 0.9, "rank": 0})
    x = x_start((M, N)).requires_grad_()
    opt = torch.optim.SGD([x], lr=0.1, foreach=False)
    for g, mine in zip(grads_for((M, N), 12), ours):
        x.grad = g.clone()
        opt.step()
        assert max_rel_err(mine, x) <= 1e-12


def test_momentum_zero_equals_sgd_and_builds_no_basis():
    ours, opt, x = run({"lr": 0.1, "momentum": 0.0, "rank": 3})
    ref, _, _ = run_sgd({"lr": 0.1})
    assert max_rel_err(ours[-1], ref[-1]) <= 1e-12
    assert set(opt.state[x]) == {"step"}


@pytest.mark.parametrize("shape", [(M, N), (N, M), (6, 6)], ids=["tall", "wide", "square"])
@pytest.mark.parametrize("proj_type", ["svd", "uniform", "topk"])
@pytest.mark.parametrize("bias_correction", [False, True])
def test_full_rank_without_refresh_equals_ema_momentum_sgd(shape, proj_type, bias_correction):
    full = min(shape) if proj_type == "svd" else max(shape)
    kw = dict(lr=0.05, momentum=0.9, rank=full, proj_type=proj_type, update_proj_gap=1000, bias_correction=bias_correction)
    ours, _, _ = run(kw, shape)
    ref, _, _ = run_sgd({"lr": 0.05, "momentum": 0.9, "momentum_type": "ema", "bias_correction": bias_correction}, shape)
    for a, b in zip(ours, ref):
        assert max_rel_err(a, b) <= 1e-12


def test_full_rank_official_svd_is_ema_sgd_to_float32_round_off():
    """The official basis comes from a float32 SVD, orthonormal only to ~1e-7 in float64, so the identity holds to
    float32 round-off (docs/methods.md §1.6) and not to 1e-12: the decomposition forces it."""
    ours, _, _ = run(dict(lr=0.05, momentum=0.9, rank=N, update_proj_gap=1000, variant="official"))
    ref, _, _ = run_sgd({"lr": 0.05, "momentum": 0.9, "momentum_type": "ema"})
    err = max(max_rel_err(a, b) for a, b in zip(ours, ref))
    assert err <= 1e-5
    assert err > 1e-12  # the float32 SVD is really used


@pytest.mark.parametrize("proj_type", ["svd", "uniform", "topk"])
def test_full_rank_carry_is_ema_momentum_sgd_across_refreshes(proj_type):
    full = N if proj_type == "svd" else M
    ours, _, _ = run(dict(lr=0.05, momentum=0.9, rank=full, proj_type=proj_type, update_proj_gap=3, refresh="carry"))
    ref, _, _ = run_sgd({"lr": 0.05, "momentum": 0.9, "momentum_type": "ema"})
    for a, b in zip(ours, ref):
        assert max_rel_err(a, b) <= 1e-12


# ----------------------------------------------------------------------------- explicit-matrix reference
def pinned_right_basis(G, r, official):
    """Top-r right singular vectors as an n × r matrix; paper: float64 with the largest-|·| entry of each column
    positive; official: float32 LAPACK output cast back (signs as returned)."""
    if official:
        return torch.linalg.svd(G.float(), full_matrices=False).Vh[:r].T.double()
    V = torch.linalg.svd(G, full_matrices=False).Vh[:r].T
    idx = V.abs().argmax(dim=0)
    return V * V[idx, torch.arange(r)].sign()


def reference_sm(grads, x0, *, lr, beta, r, gap, rule, official=False, c1_sgd=False, bias_correction=False):
    """Subspace momentum on a tall matrix with explicit projector matrices B (n × r):
    m ← βm + (1−β) G B,  x ← x − lr [m Bᵀ (/c1) + (G − G B Bᵀ) (/c1 if c1_sgd)]."""
    x = x0.clone()
    B = m = None
    for t, G in enumerate(grads, start=1):
        refresh = B is None or t % gap == 0
        zero_after = False
        if refresh:
            B_new = pinned_right_basis(G, r, official)
            if m is None:
                m = torch.zeros(G.shape[0], r, dtype=G.dtype)
            elif rule == "reset":
                m = torch.zeros_like(m)
            elif rule == "carry":
                m = (m @ B.T) @ B_new
            elif rule == "official":
                zero_after = True
            B = B_new
        m = beta * m + (1 - beta) * (G @ B)
        c1 = 1 - beta**t if bias_correction else 1.0
        residual = G - G @ B @ B.T
        x = x - lr * (m @ B.T / c1 + residual / (c1 if c1_sgd else 1.0))
        if zero_after:
            m = torch.zeros_like(m)
        yield x


@pytest.mark.parametrize("rule", ["reset", "carry", "overlap", "official"])
def test_refresh_rules_match_the_explicit_reference(rule):
    kw = dict(lr=0.05, momentum=0.9, rank=2, update_proj_gap=3, refresh=rule)
    ours, _, _ = run(kw)
    ref = list(reference_sm(grads_for((M, N), 12), x_start((M, N)), lr=0.05, beta=0.9, r=2, gap=3, rule=rule))
    for t, (a, b) in enumerate(zip(ours, ref), start=1):
        assert max_rel_err(a, b) <= 1e-12, f"step {t}"


def test_official_variant_matches_the_float32_stale_basis_reference():
    """variant="official": float32 SVD with LAPACK signs, stale momentum at the refresh, zeroed after it,
    bias correction on the whole numerator (the authors' code, docs/methods.md §1.7)."""
    kw = dict(lr=0.05, momentum=0.9, rank=2, update_proj_gap=4, variant="official", bias_correction=True)
    ours, _, _ = run(kw)
    ref = list(reference_sm(grads_for((M, N), 12), x_start((M, N)), lr=0.05, beta=0.9, r=2, gap=4, rule="official",
                            official=True, c1_sgd=True, bias_correction=True))
    for t, (a, b) in enumerate(zip(ours, ref), start=1):
        assert max_rel_err(a, b) <= 1e-12, f"step {t}"


def test_refresh_rules_agree_before_the_first_refresh_and_differ_at_it():
    outs = {rule: run(dict(lr=0.05, momentum=0.9, rank=N, update_proj_gap=5, refresh=rule), steps=6)[0]
            for rule in ["reset", "carry", "official"]}
    for t in range(4):
        assert torch.equal(outs["reset"][t], outs["carry"][t]) and torch.equal(outs["reset"][t], outs["official"][t])
    assert max_rel_err(outs["official"][4], outs["reset"][4]) > 1e-3
    assert max_rel_err(outs["official"][4], outs["carry"][4]) > 1e-3


def test_official_step_after_a_refresh_restarts_the_momentum():
    """[V] docs/methods.md §1.7, item 1: at full rank, gap 5, the step-6 momentum is (1 − β1) g6."""
    traj, _, _ = run(dict(lr=1.0, momentum=0.9, rank=N, update_proj_gap=5, refresh="official"), steps=6)
    g6 = grads_for((M, N), 6)[5]
    assert max_rel_err(traj[4] - traj[5], 0.1 * g6) <= 1e-12


def test_bias_correction_of_the_sgd_part_paper_vs_official():
    """t = 1, m = (1−β)GBᵀ: paper moves by lr·G (only m̂ corrected); official by lr·(GBᵀB + R/(1−β))."""
    G = grads_for((M, N), 1)[0]
    B = pinned_right_basis(G, 2, official=False)
    proj = G @ B @ B.T
    for correct_sgd_part, expected in [(False, G), (True, proj + (G - proj) / 0.1)]:
        traj, _, _ = run(dict(lr=1.0, momentum=0.9, rank=2, bias_correction=True, correct_sgd_part=correct_sgd_part), steps=1)
        assert max_rel_err(x_start((M, N)) - traj[0], expected) <= 1e-12


# ----------------------------------------------------------------------------- sides, state, bases
@pytest.mark.parametrize("proj_type,shape,state", [
    ("svd", (8, 5), {"basis": (5, 2), "exp_avg": (8, 2)}),
    ("svd", (5, 8), {"basis": (5, 2), "exp_avg": (2, 8)}),
    ("svd", (6, 6), {"basis": (6, 2), "exp_avg": (6, 2)}),  # square: right, as the code
    ("uniform", (8, 5), {"indices": (2,), "exp_avg": (2, 5)}),  # rows of the larger dim, as the code
    ("uniform", (5, 8), {"indices": (2,), "exp_avg": (5, 2)}),
    ("topk", (6, 6), {"indices": (2,), "exp_avg": (2, 6)}),
])
def test_state_shapes_follow_the_authors_side_rules(proj_type, shape, state):
    _, opt, x = run(dict(rank=2, proj_type=proj_type), shape, steps=2)
    for key, expected in state.items():
        assert tuple(opt.state[x][key].shape) == expected, key
    assert opt.state[x]["exp_avg"].dtype == torch.float64


def test_proj_side_overrides_the_rule():
    _, opt, x = run(dict(rank=2, proj_side="left"), (8, 5), steps=1)
    assert tuple(opt.state[x]["basis"].shape) == (8, 2) and tuple(opt.state[x]["exp_avg"].shape) == (2, 5)


def test_topk_selects_the_largest_norm_rows_at_each_refresh():
    _, opt, x = run(dict(rank=3, proj_type="topk", update_proj_gap=4), steps=8)
    g8 = grads_for((M, N), 8)[7]
    assert set(opt.state[x]["indices"].tolist()) == set(g8.norm(dim=1).topk(3).indices.tolist())


def test_svd_bases_per_variant():
    G = grads_for((M, N), 1)[0]
    _, opt, x = run(dict(rank=3), steps=1)
    assert max_rel_err(opt.state[x]["basis"], pinned_right_basis(G, 3, official=False)) <= 1e-14
    _, opt, x = run(dict(rank=3, variant="official"), steps=1)
    basis = opt.state[x]["basis"]
    assert basis.dtype == torch.float64  # cast back: no float32 tensor is stored
    assert torch.equal(basis, pinned_right_basis(G, 3, official=True))


def test_uniform_indices_come_from_the_optimizer_seed():
    def indices(seed):
        _, opt, x = run(dict(rank=3, proj_type="uniform", update_proj_gap=2, seed=seed), steps=1)
        return opt.state[x]["indices"].tolist()

    a, b = indices(1), indices(1)
    assert a == b and len(set(a)) == 3 and all(0 <= i < M for i in a)
    assert any(indices(s) != a for s in range(2, 6))


def test_rank_overflow_paper_raises_official_truncates():
    x = torch.zeros(8, 5, requires_grad=True)
    with pytest.raises(ValueError, match=r"rank must be <= the projected dimension 5.*'w'.*truncate"):
        algorithms.make("subspace_momentum", [{"params": [x], "param_names": ["w"]}], rank=6)
    _, opt, x = run(dict(rank=9, variant="official"), steps=1)
    assert tuple(opt.state[x]["exp_avg"].shape) == (8, 5)
    _, opt, x = run(dict(rank=99, proj_type="uniform", rank_overflow="truncate"), steps=1)
    assert tuple(opt.state[x]["exp_avg"].shape) == (8, 5)


# ----------------------------------------------------------------------------- batch dims, routing, decay
@pytest.mark.parametrize("proj_type,rule", [("svd", "official"), ("svd", "carry"), ("topk", "reset")])
def test_batch_dims_equals_separate_runs(proj_type, rule):
    S = 3
    x0 = x_start((S, M, N))
    grads = grads_for((S, M, N), 7)
    kw = dict(lr=0.05, rank=2, update_proj_gap=3, proj_type=proj_type, refresh=rule)
    xb = x0.clone().requires_grad_()
    opt = algorithms.make("subspace_momentum", [xb], batch_dims=1, **kw)
    for g in grads:
        xb.grad = g.clone()
        opt.step()
    for s in range(S):
        xs = x0[s].clone().requires_grad_()
        o = algorithms.make("subspace_momentum", [xs], **kw)
        for g in grads:
            xs.grad = g[s].clone()
            o.step()
        assert max_rel_err(xb[s], xs) <= 1e-13


def test_batched_uniform_draws_an_independent_selection_per_problem():
    xb = torch.zeros(6, M, N, dtype=torch.float64, requires_grad=True)
    opt = algorithms.make("subspace_momentum", [xb], rank=3, proj_type="uniform", batch_dims=1)
    xb.grad = torch.randn_like(xb)
    opt.step()
    idx = opt.state[xb]["indices"]
    assert idx.shape == (6, 3)
    assert all(len(set(row.tolist())) == 3 for row in idx)
    assert len({tuple(row.tolist()) for row in idx}) > 1


def test_non_matrices_and_dense_groups_take_ema_momentum_sgd():
    shapes = [(7,), (3, 4, 2), (M, N)]
    params = [x_start(s).requires_grad_() for s in shapes]
    refs = [x_start(s).requires_grad_() for s in shapes]
    opt = algorithms.make("subspace_momentum", [{"params": params[:2]}, {"params": params[2:], "lowrank": False}],
                          lr=0.05, rank=2)
    ref = algorithms.make("sgd", refs, lr=0.05, momentum=0.9, momentum_type="ema")
    for t in range(6):
        for p, q, s in zip(params, refs, shapes):
            g = grads_for(s, t + 1)[t]
            p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        ref.step()
    for p, q in zip(params, refs):
        assert max_rel_err(p, q) <= 1e-12


def test_decoupled_weight_decay_after_the_update():
    a, _, _ = run(dict(lr=0.1, rank=2, weight_decay=0.3), steps=1)
    b, _, _ = run(dict(lr=0.1, rank=2), steps=1)
    assert max_rel_err(a[0], b[0] * (1 - 0.1 * 0.3)) <= 1e-15


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", ["subspace_momentum", "adam_sn_sm"])
def test_half_precision_parameters_decompose_in_float32_and_keep_their_dtype(name, dtype):
    """The LLaMA runs keep bf16 parameters and states; there is no half-precision SVD kernel."""
    x = x_start((M, N)).to(dtype).requires_grad_()
    opt = algorithms.make(name, [x], lr=1e-2, rank=2, update_proj_gap=2)
    for g in grads_for((M, N), 3):
        x.grad = g.to(dtype)
        opt.step()
    basis = opt.state[x]["basis"]
    assert basis.dtype == dtype and x.dtype == dtype and torch.isfinite(x.float()).all()
    # the stored basis is the top-2 right singular subspace of the step-2 gradient, to bf16/fp16 storage round-off
    G = grads_for((M, N), 2)[1].to(dtype).double()
    V = pinned_right_basis(G, 2, official=False)
    B = basis.double()
    assert max_rel_err(B @ B.T, V @ V.T) <= 4 * torch.finfo(dtype).eps
