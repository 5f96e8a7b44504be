"""Problem families: gradients, Hessian-vector products, smoothness constants, lower bounds, oracles, errors."""

from __future__ import annotations

import math

import pytest
import torch

from synthetic.constants import probe_curvature, sample_points
from synthetic.problems import (
    DeepLinearNetwork,
    MatrixQuadratic,
    MatrixQuadraticCosine,
    Problem,
    QuadraticCosine,
    RobustRegression,
    Rosenbrock,
    SeparableLogSum,
    linear_spectrum,
    log_spectrum,
    two_cluster_spectrum,
)
from synthetic.problems import matrix_quadratic as mq_module
from synthetic.rng import SeedStreams

from ..helpers import max_rel_err
from .conftest import FACTORIES

RTOL = 1e-12


def _points(problem, n=6, seed=0):
    return sample_points(problem, n, seed)


# ----------------------------------------------------------------------------- derivatives
def test_gradient_matches_autograd(problem):
    x = _points(problem)
    xg = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(problem.value(xg).sum(), xg)
    assert max_rel_err(problem.grad(x), expected) <= RTOL


def test_hvp_matches_double_backprop(problem):
    """Hand-written Hessian-vector products (where a class has one) equal double back-propagation."""
    x = _points(problem)
    v = SeedStreams(x.shape[0]).normal(1, "v", problem.shape)
    assert max_rel_err(problem.hvp(x, v), Problem.hvp(problem, x, v)) <= RTOL


def test_value_and_grad_dtype_and_shape(problem):
    x = _points(problem, 3)
    f, g = problem.value_and_grad(x)
    assert f.shape == (3,) and g.shape == x.shape
    assert f.dtype == g.dtype == torch.float64


# ----------------------------------------------------------------------------- constants
#: instances whose proved constant is valid but not attained (documented in the class docstring)
NOT_TIGHT = {"robust_regression_default": (0.6, 0.9)}


def test_sampled_curvature_never_exceeds_L_and_reaches_it(problem, request):
    report = probe_curvature(problem, n_points=24, iters=100)
    assert not report.exceeds, report
    name = request.node.callspec.id
    if name in NOT_TIGHT:
        lo, hi = NOT_TIGHT[name]  # label noise and x♮ ≠ 0 keep ρ''(r_i) < 1: the bound is loose, by this much
        assert lo <= report.ratio < hi, report
    else:
        assert report.ratio >= 0.9, report


def test_lower_bound_holds_at_sampled_points(problem):
    x = _points(problem, 40, seed=3)
    assert bool((problem.value(x) >= problem.f_inf - 1e-12 * max(1.0, abs(problem.f_inf))).all())


def test_minimiser_is_stationary_and_attains_f_star(problem):
    if problem.x_star is None:
        pytest.skip(f"{type(problem).__name__} has no known minimiser for this instance")
    x = problem.x_star.unsqueeze(0)
    g = problem.grad(x)
    scale = max(1.0, float(problem.grad(problem.x0.unsqueeze(0)).abs().max()))
    assert float(g.abs().max()) <= 1e-12 * scale
    assert problem.f_star is not None
    assert float(problem.value(x)[0]) == pytest.approx(problem.f_star, abs=1e-12 * max(1.0, abs(problem.f_star)))


def test_delta_is_value_gap_at_x0(problem):
    assert problem.delta() == pytest.approx(float(problem.value(problem.x0.unsqueeze(0))[0]) - problem.f_inf, rel=1e-15)
    assert problem.delta() >= 0
    batch = problem.initial_points(SeedStreams(3), radius=0.5)
    assert torch.equal(problem.delta(batch), problem.value(batch) - problem.f_inf)
    assert problem.constants()["L"] == problem.L


def test_separable_constants_closed_form():
    p = SeparableLogSum(5, a=torch.tensor([1.0, 2.0, 0.5, 3.0, 1.0]), width=torch.tensor([1.0, 2.0, 0.5, 1.0, 3.0]))
    assert p.L == max(2 * a / w**2 for a, w in [(1, 1), (2, 2), (0.5, 0.5), (3, 1), (1, 3)])
    q = SeparableLogSum.normalized(256, L=2.0, delta=0.7)
    assert q.L == pytest.approx(2.0, rel=1e-15)
    assert q.delta() == pytest.approx(0.7, rel=1e-13)


def test_quadratic_cosine_constants_and_spectra():
    lam = two_cluster_spectrum(100, seed=1)
    assert int((lam > 30).sum()) == 10 and float(lam[lam < 30].max()) < 1
    p = QuadraticCosine(lam, alpha=0.5, seed=2)
    assert p.L == pytest.approx(float(lam.max()) + 0.5, rel=1e-15)
    assert torch.linalg.eigvalsh(p.A)[-1].item() == pytest.approx(float(lam.max()), rel=1e-12)
    assert p.nonconvex_at_origin and p.f_inf == -50.0
    assert torch.equal(linear_spectrum(3, 1.0, 3.0), torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    assert log_spectrum(3, 1.0, 100.0)[1].item() == pytest.approx(10.0, rel=1e-14)
    zero = QuadraticCosine(torch.ones(4), alpha=0.0)
    assert zero.f_star == 0.0 and zero.x_star is not None


def test_matrix_quadratic_L_matches_dense_hessian_and_minimiser():
    p = FACTORIES["matrix_quadratic_n4"]()
    S = p.hessian_matrix()
    lam = torch.linalg.eigvalsh(S)
    assert p.L == pytest.approx(float(lam[-1]), rel=1e-13)
    w = torch.linalg.solve(S, p.A_mean.T.reshape(-1))
    assert max_rel_err(p.x_star, w.reshape(p.shape[1], p.shape[0]).T) <= 1e-12
    n1 = FACTORIES["matrix_quadratic_n1"]()
    assert n1.L == pytest.approx(float(torch.linalg.eigvalsh(n1.hessian_matrix())[-1]), rel=1e-13)


def test_matrix_quadratic_large_path_uses_lanczos_and_cg(monkeypatch):
    """Above DENSE_LIMIT the constants come from Lanczos and CG; they agree with the dense route."""
    dense = MatrixQuadratic.random(6, 5, N=3, seed=7)
    monkeypatch.setattr(mq_module, "DENSE_LIMIT", 10)
    sparse = MatrixQuadratic.random(6, 5, N=3, seed=7)
    assert sparse.L == pytest.approx(dense.L, rel=1e-10)
    assert sparse.mu == pytest.approx(dense.mu, rel=1e-10)
    assert max_rel_err(sparse.x_star, dense.x_star) <= 1e-10


def test_robust_regression_per_sample_constants():
    """Per-sample curvature stays below κ(d + 2μ), approaches it at x = 0 when y_i ≈ 0; ‖∇f_i‖ ≤ the bound."""
    p = RobustRegression(d=8, n_samples=500, x_natural=torch.zeros(8), label_noise=0.01, seed=1)
    S = 64
    streams = SeedStreams(S)
    idx = p.sample_indices(streams, 1, 1)
    x = torch.cat([torch.zeros(1, 8, dtype=torch.float64), sample_points(p, S - 1, seed=2)])

    def sample_curvature(x, v):
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(p.sample_value(xg, idx).sum(), xg, create_graph=True)
            (hv,) = torch.autograd.grad((g * v).sum(), xg)
        return (hv * v).sum(1) / (v * v).sum(1)

    v = p.features[idx[:, 0]]  # the worst direction a_i
    curv = sample_curvature(x, v).abs()
    assert float(curv.max()) <= p.L_sample * (1 + 1e-12)
    assert float(curv.max()) >= 0.9 * p.L_sample
    grads = p.sample_grad_at(sample_points(p, S, seed=4), idx)
    assert float(torch.linalg.vector_norm(grads, dim=1).max()) <= p.gradient_norm_bound * (1 + 1e-12)
    assert p.gradient_norm_bound == pytest.approx(0.5, rel=1e-15)


def test_deep_linear_extremal_point_attains_L_inside_the_ball():
    for depth in (2, 3, 4):
        p = DeepLinearNetwork.random(5, depth, teacher_scale=0.9, radius=1.2, seed=depth)
        W, V = p.extremal_point()
        assert bool(p.in_domain(W.unsqueeze(0))[0])
        assert float((V * V).sum()) == pytest.approx(1.0, rel=1e-14)
        assert float(p.curvature(W.unsqueeze(0), V.unsqueeze(0))[0]) == pytest.approx(p.L, rel=1e-13)


def test_deep_linear_leaves_the_domain_when_scaled_up():
    p = DeepLinearNetwork.random(3, 2)
    x = p.x0.unsqueeze(0) * torch.tensor([1.0, 10.0], dtype=torch.float64).reshape(2, 1, 1, 1)
    assert p.in_domain(x).tolist() == [True, False]


def test_rosenbrock_hessian_and_box():
    p = Rosenbrock(6, b=50.0, radius=1.5)
    x = sample_points(p, 5, seed=1)
    v = SeedStreams(5).normal(0, "v", p.shape)
    assert max_rel_err(torch.einsum("sij,sj->si", p.hessian(x), v), p.hvp(x, v)) <= RTOL
    assert p.in_domain(torch.tensor([[1.5, 0, 0, 0, 0, -1.5], [1.6, 0, 0, 0, 0, 0]], dtype=torch.float64)).tolist() == [True, False]
    assert p.f_star == 0.0 and p.delta() == pytest.approx(float(p.value(p.x0[None])[0]))


# ----------------------------------------------------------------------------- batching
def test_rows_are_batch_invariant(problem):
    """Row s of value/grad/hvp/sample_grad is bit-identical alone and inside batches of several sizes."""
    x = _points(problem, 19, seed=5)
    streams = SeedStreams(list(range(100, 119)))
    v = streams.normal(2, "v", problem.shape)
    full = (problem.value(x), problem.grad(x), problem.hvp(x, v), problem.sample_grad(x, streams, 4, 3))
    for rows in ([0], [7], [3, 4], list(range(2, 19, 4))):
        sub = SeedStreams([100 + r for r in rows])
        part = (problem.value(x[rows]), problem.grad(x[rows]), problem.hvp(x[rows], v[rows]),
                problem.sample_grad(x[rows], sub, 4, 3))
        for a, b in zip(full, part):
            assert torch.equal(a[rows], b)


@pytest.mark.parametrize("name", ["robust_regression", "matrix_quadratic_n4", "deep_linear_d2"])
def test_sampled_gradient_is_unbiased(name):
    """Mean of K sampled gradients at one point = the exact gradient within 5 standard errors per coordinate."""
    p = FACTORIES[name]()
    K = 4000
    x = sample_points(p, 2, seed=1)[1:].expand(K, *p.shape).contiguous()
    g = p.sample_grad(x, SeedStreams(K), 1, 2)
    mean, se = g.mean(0), g.std(0) / math.sqrt(K)
    exact = p.grad(x[:1])[0]
    assert bool(((mean - exact).abs() <= 5 * se + 1e-14).all())
    assert float(se.max()) > 0  # the oracle is genuinely random


def test_deterministic_problem_oracle_is_the_gradient():
    p = FACTORIES["separable"]()
    x = sample_points(p, 3)
    assert torch.equal(p.sample_grad(x, SeedStreams(3), 5), p.grad(x))


def test_initial_points_per_seed():
    p = FACTORIES["quadratic_cosine"]()
    same = p.initial_points(SeedStreams(4))
    assert torch.equal(same, p.x0.expand(4, -1))
    moved = p.initial_points(SeedStreams([9, 10]), radius=2.0)
    assert not torch.equal(moved[0], moved[1])
    assert torch.equal(moved[1], p.initial_points(SeedStreams([10]), radius=2.0)[0])


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "factory, error, match",
    [
        (lambda: SeparableLogSum(0), ValueError, "d must be >= 1"),
        (lambda: SeparableLogSum(3.5), TypeError, "d must be an int"),
        (lambda: SeparableLogSum(3, a=-1.0), ValueError, "a must be > 0"),
        (lambda: SeparableLogSum(3, width=torch.zeros(3)), ValueError, "width must be > 0"),
        (lambda: SeparableLogSum(3, c=torch.zeros(4)), ValueError, "c must be broadcastable"),
        (lambda: QuadraticCosine(torch.tensor([1.0, -1.0])), ValueError, "eigenvalues must be >= 0"),
        (lambda: QuadraticCosine(torch.ones(3), alpha=-1.0), ValueError, "alpha must be >= 0"),
        (lambda: QuadraticCosine(torch.ones(3), basis="haar"), ValueError, "basis must be"),
        (lambda: QuadraticCosine(torch.ones(2), basis=torch.ones(2, 2)), ValueError, "orthogonal"),
        (lambda: log_spectrum(4, 0.0, 1.0), ValueError, "low must be > 0"),
        (lambda: MatrixQuadraticCosine.random(3, 0), ValueError, "n must be >= 1"),
        (lambda: MatrixQuadraticCosine.random(3, 3, cond_u=0.5), ValueError, "cond_u"),
        (lambda: RobustRegression(d=-2), ValueError, "d must be >= 1"),
        (lambda: RobustRegression(d=3, n_samples=10, mu=-1.0), ValueError, "mu must be >= 0"),
        (lambda: MatrixQuadratic(torch.ones(1, 2, 2), -torch.eye(2)[None], torch.eye(2)[None]), ValueError, "B must be positive semidefinite"),
        (lambda: MatrixQuadratic(torch.ones(1, 2, 3), torch.eye(2)[None], torch.eye(2)[None]), ValueError, "C_i"),
        (lambda: MatrixQuadratic(torch.ones(1, 2, 2), torch.zeros(1, 2, 2), torch.eye(2)[None]), ValueError, "positive definite"),
        (lambda: DeepLinearNetwork.random(3, 0), ValueError, "depth must be >= 1"),
        (lambda: DeepLinearNetwork(torch.ones(2, 3), 2), ValueError, "teacher must be a square"),
        (lambda: DeepLinearNetwork.random(3, 2, radius=-1.0), ValueError, "radius must be > 0"),
        (lambda: Rosenbrock(1), ValueError, "d must be >= 2"),
        (lambda: Rosenbrock(3, radius=1.0), ValueError, "radius must be >= 1 and >= max|x0|"),
    ],
)
def test_bad_construction_raises_naming_the_argument(factory, error, match):
    with pytest.raises(error, match=match):
        factory()


def test_bad_points_raise(problem):
    x = _points(problem, 2)
    with pytest.raises(ValueError, match="leading seed dimension"):
        problem.value(x[0])
    with pytest.raises(TypeError, match="dtype"):
        problem.grad(x.float())
    with pytest.raises(TypeError, match="torch.Tensor"):
        problem.value(x.tolist())
