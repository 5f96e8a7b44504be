"""algorithms/projection.py: side rules, exact and randomized SVD, power iteration, index projectors."""

from __future__ import annotations

import pytest
import torch

from algorithms import projection as P

from ..helpers import max_rel_err

F64 = torch.float64


def rand(*shape, seed=0, dtype=F64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def low_rank_matrix(m, n, k, seed=0, decay=0.5):
    g = torch.Generator().manual_seed(seed)
    A = torch.linalg.qr(torch.randn(m, k, generator=g, dtype=F64))[0]
    B = torch.linalg.qr(torch.randn(n, k, generator=g, dtype=F64))[0]
    s = decay ** torch.arange(k, dtype=F64)
    return A @ torch.diag(s) @ B.mT


# ----------------------------------------------------------------------------- sides and ranks
@pytest.mark.parametrize(
    "m,n,rule,square,expected",
    [
        (3, 5, "std", "right", "left"), (5, 3, "std", "right", "right"), (4, 4, "std", "right", "right"),
        (4, 4, "std", "left", "left"), (3, 5, "reverse_std", "right", "right"), (5, 3, "reverse_std", "right", "left"),
        (4, 4, "reverse_std", "right", "left"), (4, 4, "reverse_std", "left", "right"),
        (5, 3, "left", "right", "left"), (3, 5, "right", "left", "right"),
    ],
)
def test_projection_side_rules(m, n, rule, square, expected):
    assert P.projection_side(m, n, rule, square=square) == expected


def test_std_rule_projects_the_smaller_dimension():
    for m, n in [(3, 9), (9, 3), (6, 6)]:
        side = P.projection_side(m, n, "std", square="right")
        assert P.projected_dim(m, n, side) == min(m, n)


def test_bad_side_rule_names_the_argument():
    with pytest.raises(ValueError, match="proj_side"):
        P.projection_side(3, 4, "diagonal", square="right")
    with pytest.raises(ValueError, match="square"):
        P.projection_side(3, 4, "std", square="up")


def test_validate_rank():
    assert P.validate_rank(3, 5) == 3
    assert P.validate_rank(5, 5) == 5
    with pytest.raises(ValueError, match=r"rank must be <= the projected dimension 5.*got 6"):
        P.validate_rank(6, 5)
    assert P.validate_rank(6, 5, overflow="truncate") == 5
    with pytest.raises(ValueError, match="rank must be >= 1"):
        P.validate_rank(0, 5)
    with pytest.raises(TypeError, match="rank"):
        P.validate_rank(2.5, 5)


# ----------------------------------------------------------------------------- dense bases
@pytest.mark.parametrize("side", ["left", "right"])
def test_projector_is_orthogonal_and_residual_lies_in_complement(side):
    G = rand(7, 5)
    d = 7 if side == "left" else 5
    U = torch.linalg.qr(rand(d, 3, seed=1))[0]
    R = P.project(G, U, side)
    assert R.shape == ((3, 5) if side == "left" else (7, 3))
    lifted = P.project_back(R, U, side)
    assert max_rel_err(P.project_back(P.project(lifted, U, side), U, side), lifted) < 1e-14  # idempotent
    res = P.residual(G, U, side)
    assert P.project(res, U, side).abs().max() < 1e-14
    assert max_rel_err(lifted + res, G) < 1e-15


def test_left_of_transpose_is_right():
    G = rand(6, 4)
    U = torch.linalg.qr(rand(6, 2, seed=3))[0]
    assert torch.equal(P.project(G, U, "left").mT, P.project(G.mT, U, "right"))


@pytest.mark.parametrize("shape", [(8, 5), (5, 8), (6, 6)])
@pytest.mark.parametrize("side", ["left", "right"])
def test_top_singular_basis_is_the_svd_basis_with_pinned_signs(shape, side):
    G = rand(*shape, seed=2)
    U = P.top_singular_basis(G, 3, side)
    assert U.dtype == F64 and U.shape == (shape[0] if side == "left" else shape[1], 3)
    assert max_rel_err(U.mT @ U, torch.eye(3, dtype=F64)) < 1e-14
    # the subspace is the top-3 singular subspace: projected energy = sum of top-3 σ²
    s = torch.linalg.svdvals(G)
    energy = P.project(G, U, side).pow(2).sum()
    assert abs(float(energy - s[:3].pow(2).sum())) < 1e-12 * float(s.pow(2).sum())
    # pinned sign: the largest-magnitude entry of every column is positive
    idx = U.abs().argmax(0)
    assert (U[idx, torch.arange(3)] > 0).all()
    # sign-invariant: the same basis for -G
    assert max_rel_err(P.top_singular_basis(-G, 3, side), U) < 1e-13


def test_top_singular_basis_batched_equals_one_by_one():
    G = rand(4, 9, 6, seed=5)
    batched = P.top_singular_basis(G, 2, "right")
    for i in range(4):
        assert max_rel_err(batched[i], P.top_singular_basis(G[i], 2, "right")) < 1e-13


def test_float32_decomposition_is_cast_back():
    G = rand(10, 7, seed=6)
    U64 = P.top_singular_basis(G, 3, "left")
    U32 = P.top_singular_basis(G, 3, "left", compute_dtype=torch.float32)
    assert U32.dtype == F64
    err = max_rel_err(U32, U64)
    assert 0 < err < 1e-4, "a float32 SVD differs from the float64 one at float32 round-off"


def test_fix_signs_keeps_the_product():
    G = rand(6, 4, seed=7)
    U, S, Vh = torch.linalg.svd(G, full_matrices=False)
    U2, V2 = P.fix_signs(U, Vh.mT)
    assert max_rel_err(U2 @ torch.diag(S) @ V2.mT, G) < 1e-14


# ----------------------------------------------------------------------------- randomized SVD
def test_randomized_svd_is_exact_on_an_exactly_low_rank_matrix():
    G = low_rank_matrix(30, 20, 4, decay=0.7)
    U, S, Vh = P.randomized_svd(G, 4, oversampling=2, power_iters=0, generator=torch.Generator().manual_seed(0))
    assert U.shape == (30, 4) and S.shape == (4,) and Vh.shape == (4, 20)
    assert max_rel_err(U @ torch.diag(S) @ Vh, G) < 1e-12
    assert max_rel_err(S, torch.linalg.svdvals(G)[:4]) < 1e-12


def test_randomized_svd_power_iterations_approach_the_optimal_error():
    g = torch.Generator().manual_seed(1)
    G = low_rank_matrix(60, 40, 40, decay=0.9) + 1e-3 * torch.randn(60, 40, generator=g, dtype=F64)
    s = torch.linalg.svdvals(G)
    optimal = float(s[5:].pow(2).sum().sqrt())
    errs = []
    for q in (0, 3):
        U, S, Vh = P.randomized_svd(G, 5, oversampling=5, power_iters=q, generator=torch.Generator().manual_seed(2))
        errs.append(float(torch.linalg.norm(G - U @ torch.diag(S) @ Vh)))
    assert errs[1] <= errs[0] + 1e-12
    assert errs[1] < 1.01 * optimal


def test_randomized_svd_is_deterministic_given_the_generator_and_advances_it():
    G = rand(12, 9, seed=3)
    gen = torch.Generator().manual_seed(5)
    before = gen.get_state()
    a = P.randomized_svd(G, 3, oversampling=2, power_iters=1, generator=gen)
    assert not torch.equal(gen.get_state(), before), "the sketch must consume the generator"
    c = P.randomized_svd(G, 3, oversampling=2, power_iters=1, generator=torch.Generator().manual_seed(5))
    assert all(torch.equal(x, y) for x, y in zip(a, c))


def test_randomized_svd_rank_capped_by_shape():
    G = rand(3, 8, seed=4)
    U, S, Vh = P.randomized_svd(G, 6, oversampling=4, power_iters=1, generator=torch.Generator().manual_seed(0))
    assert U.shape == (3, 3) and S.shape == (3,) and Vh.shape == (3, 8)
    assert max_rel_err(U @ torch.diag(S) @ Vh, G) < 1e-12


# ----------------------------------------------------------------------------- power iteration
@pytest.mark.parametrize("side", ["left", "right"])
def test_block_power_step_is_one_subspace_iteration_and_converges(side):
    B = low_rank_matrix(20, 15, 15, seed=8, decay=0.6)
    d = 20 if side == "left" else 15
    U0 = torch.linalg.qr(rand(d, 3, seed=9))[0]
    U1 = P.block_power_step(B, U0, side)
    M = B @ B.mT if side == "left" else B.mT @ B
    Q, _ = torch.linalg.qr(M @ U0)
    assert max_rel_err(U1, Q) < 1e-12
    U = U0
    for _ in range(60):
        U = P.block_power_step(B, U, side)
    top = P.top_singular_basis(B, 3, side)
    assert max_rel_err(U @ U.mT, top @ top.mT) < 1e-10


# ----------------------------------------------------------------------------- energy rank
def test_energy_rank():
    S = torch.tensor([3.0, 2.0, 1.0, 0.5], dtype=F64)
    total = S.pow(2).sum()  # 14.25; cumulative 9, 13, 14, 14.25
    assert int(P.energy_rank(S, total, 0.5, min_rank=1, max_rank=4)) == 1
    assert int(P.energy_rank(S, total, 0.9, min_rank=1, max_rank=4)) == 2
    assert int(P.energy_rank(S, total, 0.95, min_rank=1, max_rank=4)) == 3
    assert int(P.energy_rank(S, total, 1.0, min_rank=1, max_rank=4)) == 4
    assert int(P.energy_rank(S, total, 0.5, min_rank=3, max_rank=4)) == 3
    assert int(P.energy_rank(S, total, 0.99, min_rank=1, max_rank=2)) == 2
    # energy outside the truncated spectrum is counted in the total
    assert int(P.energy_rank(S[:2], total, 0.95, min_rank=1, max_rank=4)) == 2
    batched = P.energy_rank(torch.stack([S, S.flip(0).sort(descending=True).values * 0 + 1]), torch.tensor([14.25, 4.0], dtype=F64), 0.5, min_rank=1, max_rank=4)
    assert batched.tolist() == [1, 2]


# ----------------------------------------------------------------------------- index projectors
def test_uniform_indices_are_distinct_seeded_and_batched():
    idx = P.uniform_indices(10, 4, torch.Generator().manual_seed(0), batch_shape=(3,))
    assert idx.shape == (3, 4) and idx.dtype == torch.int64
    for row in idx:
        assert len(set(row.tolist())) == 4 and row.max() < 10
    again = P.uniform_indices(10, 4, torch.Generator().manual_seed(0), batch_shape=(3,))
    assert torch.equal(idx, again)


@pytest.mark.parametrize("side", ["left", "right"])
def test_index_projection_equals_a_selection_matrix(side):
    G = rand(6, 5, seed=10)
    r = 3
    idx = P.topk_indices(G, r, side)
    norms = G.norm(dim=1) if side == "left" else G.norm(dim=0)
    assert torch.equal(idx, norms.argsort(descending=True)[:r])
    d = 6 if side == "left" else 5
    E = torch.eye(d, dtype=F64)[:, idx]  # d × r, orthonormal columns
    R = P.project_indices(G, idx, side)
    assert torch.equal(R, P.project(G, E, side))
    assert torch.equal(P.project_back_indices(R, idx, side, G.shape), P.project_back(R, E, side))


def test_index_projection_batched():
    G = rand(2, 6, 5, seed=11)
    idx = P.topk_indices(G, 2, "right")
    R = P.project_indices(G, idx, "right")
    for b in range(2):
        assert torch.equal(R[b], P.project_indices(G[b], idx[b], "right"))
    back = P.project_back_indices(R, idx, "right", G.shape)
    for b in range(2):
        assert torch.equal(back[b], P.project_back_indices(R[b], idx[b], "right", G.shape[1:]))


# ----------------------------------------------------------------------------- non-finite input
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nonfinite_matrices_give_nan_factors_per_batch_element(bad):
    G = rand(3, 6, 4, seed=12)
    G[1, 2, 3] = bad
    U = P.top_singular_basis(G, 2, "left")
    assert torch.isnan(U[1]).all()
    assert torch.isfinite(U[0]).all() and torch.isfinite(U[2]).all()
    assert torch.equal(U[0], P.top_singular_basis(G[0], 2, "left"))
    Q = P.orthonormalize(G)
    assert torch.isnan(Q[1]).all() and torch.equal(Q[2], P.orthonormalize(G[2]))
    Ur, S, Vh = P.randomized_svd(G, 2, oversampling=1, power_iters=1, generator=torch.Generator().manual_seed(0))
    assert torch.isnan(S[1]).all() and torch.isfinite(S[0]).all()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_is_decomposed_in_float32_and_cast_back(dtype):
    G = rand(8, 5, seed=13).to(dtype)
    U = P.top_singular_basis(G, 2, "right")
    assert U.dtype == dtype
    ref = P.top_singular_basis(G.float(), 2, "right").to(dtype)
    assert torch.equal(U, ref)
    assert P.orthonormalize(G).dtype == dtype


@pytest.mark.parametrize("side", ["left", "right"])
def test_singular_pairs_exact_and_randomized_agree_on_a_low_rank_matrix(side):
    G = low_rank_matrix(14, 9, 3, seed=14, decay=0.6)
    basis, S = P.top_singular_pairs(G, 3, side)
    assert torch.equal(basis, P.top_singular_basis(G, 3, side))
    assert max_rel_err(S, torch.linalg.svdvals(G)[:3]) < 1e-13
    rbasis, rS = P.randomized_singular_pairs(G, 3, side, oversampling=2, power_iters=1, generator=torch.Generator().manual_seed(1))
    assert rbasis.shape == basis.shape
    assert max_rel_err(rS, S) < 1e-12
    assert max_rel_err(rbasis, basis) < 1e-10  # same pinned signs, same subspace
