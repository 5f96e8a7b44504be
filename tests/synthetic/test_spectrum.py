"""synthetic/spectrum.py against the definitions (docs/rank.md §1), in float64."""

from __future__ import annotations

import math

import pytest
import torch

from synthetic import spectrum as sp


def matrix_with_spectrum(sigma, m, n, seed=0, batch=()):
    """U diag(sigma) Vᵀ with random orthonormal U (m×k), V (n×k)."""
    g = torch.Generator().manual_seed(seed)
    sigma = torch.as_tensor(sigma, dtype=torch.float64)
    k = sigma.shape[-1]
    U, _ = torch.linalg.qr(torch.randn(*batch, m, k, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(*batch, n, k, generator=g, dtype=torch.float64))
    return U @ torch.diag_embed(sigma.expand(*batch, k)) @ V.mT


def test_singular_values_sorted_and_dtype_kept():
    G = matrix_with_spectrum([3.0, 2.0, 0.5], 7, 5)
    s = sp.singular_values(G)
    assert s.dtype == torch.float64
    torch.testing.assert_close(s[:3], torch.tensor([3.0, 2.0, 0.5], dtype=torch.float64), rtol=1e-13, atol=1e-13)
    assert s.shape == (5,) and float(s[3:].abs().max()) < 1e-14


def test_stable_rank_matches_norm_definition():
    g = torch.Generator().manual_seed(3)
    G = torch.randn(6, 9, 13, generator=g, dtype=torch.float64)
    sr = sp.stable_rank(sp.singular_values(G))
    fro = torch.linalg.matrix_norm(G) ** 2
    two = torch.linalg.matrix_norm(G, ord=2) ** 2
    torch.testing.assert_close(sr, fro / two, rtol=1e-13, atol=0)
    assert bool((sr >= 1).all()) and bool((sr <= 9).all())


def test_stable_rank_of_known_spectrum():
    sigma = [4.0, 2.0, 1.0, 1.0]
    G = matrix_with_spectrum(sigma, 10, 6)
    expected = sum(s * s for s in sigma) / 16.0
    assert abs(float(sp.stable_rank(sp.singular_values(G))) - expected) < 1e-13 * expected


def test_stable_rank_is_at_least_one_exactly_and_one_for_rank_one():
    g = torch.Generator().manual_seed(4)
    u, v = torch.randn(20, 1, generator=g, dtype=torch.float64), torch.randn(1, 30, generator=g, dtype=torch.float64)
    sr = float(sp.stable_rank(sp.singular_values(u @ v)))
    assert 1.0 <= sr < 1 + 1e-13


def test_batched_equals_loop():
    g = torch.Generator().manual_seed(5)
    G = torch.randn(3, 4, 8, 5, generator=g, dtype=torch.float64)
    spec = sp.spectrum(G, eps=(0.01, 0.1))
    for i in range(3):
        for j in range(4):
            one = sp.spectrum(G[i, j], eps=(0.01, 0.1))
            assert float(spec.stable_rank[i, j]) == pytest.approx(float(one.stable_rank), rel=1e-14)
            assert float(spec.kappa[i, j]) == pytest.approx(float(one.kappa), rel=1e-14)
            for eps in (0.01, 0.1):
                assert int(spec.energy_ranks[eps][i, j]) == int(one.energy_ranks[eps])


def brute_energy_rank(sigma, eps):
    sq = [s * s for s in sigma]
    total = sum(sq)
    for r in range(len(sq) + 1):
        if sum(sq[r:]) <= eps * total:  # tail definition, summed exactly as written
            return r
    raise AssertionError


@pytest.mark.parametrize("seed", range(5))
def test_energy_rank_matches_definition_on_random_spectra(seed):
    g = torch.Generator().manual_seed(seed)
    sigma = torch.rand(12, generator=g, dtype=torch.float64).sort(descending=True).values
    sigma[-3:] = 0.0
    for eps in (0.0, 0.001, 0.01, 0.05, 0.3, 0.9, 1.0):
        got = int(sp.energy_rank(sigma, eps))
        assert got == brute_energy_rank(sigma.tolist(), eps), eps
    # cumulative-sum form of the definition, away from ties
    sq = sigma.square()
    for eps in (0.01, 0.05, 0.3):
        kept = sq.cumsum(0)
        want = int((kept < (1 - eps) * sq.sum()).sum()) + 1
        assert int(sp.energy_rank(sigma, eps)) == want


def test_energy_rank_exact_cases():
    sigma = torch.tensor([2.0, 1.0, 1.0, 0.0], dtype=torch.float64)  # energies 4, 1, 1, 0; E = 6
    assert int(sp.energy_rank(sigma, 0.0)) == 3  # counts the non-zero singular values
    assert int(sp.energy_rank(sigma, 1 / 6 + 1e-12)) == 2
    assert int(sp.energy_rank(sigma, 1 / 3 + 1e-12)) == 1
    assert int(sp.energy_rank(sigma, 1.0)) == 0


def test_kappa_equals_residual_after_best_rank_one():
    g = torch.Generator().manual_seed(6)
    G = torch.randn(9, 14, generator=g, dtype=torch.float64)
    U, S, Vh = torch.linalg.svd(G, full_matrices=False)
    explicit = torch.linalg.matrix_norm(G - S[0] * torch.outer(U[:, 0], Vh[0])) / torch.linalg.matrix_norm(G)
    kappa = sp.rank_one_residual(sp.singular_values(G))
    assert float(kappa) == pytest.approx(float(explicit), rel=1e-12)
    sr = sp.stable_rank(sp.singular_values(G))
    assert float(kappa) == pytest.approx(math.sqrt(1 - 1 / float(sr)), rel=1e-12)


def test_kappa_accurate_near_rank_one():
    """The tail form keeps relative accuracy where sqrt(1 - 1/sr) cancels to zero."""
    sigma = torch.tensor([1.0, 3e-9, 4e-9], dtype=torch.float64).sort(descending=True).values
    kappa = float(sp.rank_one_residual(sigma))
    assert kappa == pytest.approx(5e-9 / math.sqrt(1 + 25e-18), rel=1e-14)
    naive = math.sqrt(max(0.0, 1 - 1 / float(sp.stable_rank(sigma))))
    assert abs(naive - kappa) / kappa > 1e-3  # the cancelling form is visibly wrong here


def test_zero_matrix_conventions():
    Z = torch.zeros(2, 4, 3, dtype=torch.float64)
    spec = sp.spectrum(Z)
    assert bool(torch.isnan(spec.stable_rank).all()) and bool(torch.isnan(spec.kappa).all())
    assert spec.energy_ranks[0.01].tolist() == [0, 0]
    empty = sp.spectrum(torch.zeros(0, 5, dtype=torch.float64))
    assert math.isnan(float(empty.stable_rank)) and int(empty.energy_ranks[0.01]) == 0


def test_single_column_kappa_zero():
    G = torch.randn(6, 1, dtype=torch.float64)
    assert float(sp.rank_one_residual(sp.singular_values(G))) == 0.0


def test_float32_input_stays_float32():
    G = torch.randn(5, 4)
    spec = sp.spectrum(G)
    assert spec.sigma.dtype == torch.float32 and spec.stable_rank.dtype == torch.float32


def test_bad_inputs():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        sp.singular_values(torch.zeros(3))
    with pytest.raises(TypeError, match="real"):
        sp.singular_values(torch.zeros(2, 2, dtype=torch.complex128))
    with pytest.raises(TypeError, match="floating-point"):
        sp.singular_values(torch.zeros(2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="eps"):
        sp.energy_rank(torch.ones(3), 1.5)
    with pytest.raises(TypeError, match="eps"):
        sp.energy_rank(torch.ones(3), "small")
    with pytest.raises(ValueError, match="top"):
        sp.spectrum(torch.ones(2, 2), top=-1)
    with pytest.raises(ValueError, match="factor"):
        sp.float_floor_threshold(1.0, torch.float64, factor=0)
    with pytest.raises(ValueError, match="batch_dims"):
        sp.as_matrix(torch.zeros(3), batch_dims=2)


def test_as_matrix_rules():
    assert sp.as_matrix(torch.zeros(5)) is None
    assert sp.as_matrix(torch.zeros(())) is None
    assert sp.as_matrix(torch.zeros(4, 3)).shape == (4, 3)
    assert sp.as_matrix(torch.zeros(8, 3, 3, 2)).shape == (8, 18)
    assert sp.as_matrix(torch.zeros(2, 8, 3, 3), batch_dims=1).shape == (2, 8, 9)
    assert sp.as_matrix(torch.zeros(2, 7), batch_dims=1) is None


def test_layer_spectra_skips_vectors_and_upcasts():
    g = torch.Generator().manual_seed(7)
    grads = [("w", torch.randn(6, 4, generator=g).to(torch.bfloat16)), ("b", torch.randn(4)),
             ("conv", torch.randn(5, 2, 3, 3, generator=g)), ("none", None)]
    out = sp.layer_spectra(grads)
    assert set(out) == {"w", "conv"}
    assert out["conv"]["matrix_shape"] == [5, 18]
    expected = sp.stable_rank(sp.singular_values(grads[0][1].to(torch.float64)))
    assert out["w"]["stable_rank"] == pytest.approx(float(expected), rel=1e-14)


def test_steps_before_floor_first_crossing():
    eps = torch.finfo(torch.float64).eps
    t = torch.arange(60, dtype=torch.float64)
    norms = 0.5**t  # crosses 1e3·eps at t = ceil(log2(1/(1e3 eps))) = 43
    first = math.ceil(math.log2(1 / (1e3 * eps)))
    assert int(sp.steps_before_floor(norms)) == first
    bounced = norms.clone()
    bounced[first + 2:] = 1.0  # a bounce back after the floor is not measured
    assert int(sp.steps_before_floor(bounced)) == first
    batch = torch.stack([norms, torch.ones(60, dtype=torch.float64)], dim=1)
    assert sp.steps_before_floor(batch).tolist() == [first, 60]
    assert int(sp.steps_before_floor(norms.float(), dtype=torch.float32)) == math.ceil(
        math.log2(1 / (1e3 * torch.finfo(torch.float32).eps)))


def test_steps_before_floor_stops_at_nan():
    norms = torch.tensor([1.0, 0.5, float("nan"), 0.4], dtype=torch.float64)
    assert int(sp.steps_before_floor(norms)) == 2


def test_gaussian_stable_rank_level():
    assert sp.gaussian_stable_rank(32, 48) == pytest.approx(32 * 48 / (math.sqrt(32) + math.sqrt(48)) ** 2)
    assert sp.gaussian_stable_rank(32, 48) == pytest.approx(9.70, abs=0.01)  # docs/rank.md §3
    g = torch.Generator().manual_seed(8)
    Z = torch.randn(400, 32, 48, generator=g, dtype=torch.float64)
    mean_sr = float(sp.stable_rank(sp.singular_values(Z)).mean())
    # finite-size: the top singular value sits below the sqrt(m)+sqrt(n) edge, so sr is a little above
    assert sp.gaussian_stable_rank(32, 48) < mean_sr < 1.15 * sp.gaussian_stable_rank(32, 48)
    with pytest.raises(ValueError, match="m"):
        sp.gaussian_stable_rank(0, 3)
