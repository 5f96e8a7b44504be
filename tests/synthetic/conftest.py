"""Shared problem instances for the synthetic tests (small, float64)."""

from __future__ import annotations

import pytest
import torch

from synthetic.problems import (
    DeepLinearNetwork,
    MatrixQuadratic,
    MatrixQuadraticCosine,
    QuadraticCosine,
    RobustRegression,
    Rosenbrock,
    SeparableLogSum,
    log_spectrum,
)


def problem_factories():
    """name -> factory of a small instance of every family (several variants where the constant changes form)."""
    return {
        "separable": lambda: SeparableLogSum(9, a=torch.linspace(0.5, 2.0, 9), c=torch.linspace(-1, 1, 9),
                                             width=torch.linspace(0.7, 1.3, 9)),
        "separable_normalized": lambda: SeparableLogSum.normalized(64, L=1.0, delta=1.0),
        "quadratic_cosine": lambda: QuadraticCosine(log_spectrum(20, 0.1, 10.0), alpha=1.0, seed=3),
        "quadratic_cosine_diag": lambda: QuadraticCosine(log_spectrum(12, 0.5, 4.0), alpha=2.0, basis="identity"),
        "matrix_cosine": lambda: MatrixQuadraticCosine.random(6, 4, cond_u=50.0, cond_v=20.0, alpha=0.3, seed=1),
        # x♮ = 0 and small label noise: the instance where L is attained (at x = 0); see the next test file
        "robust_regression": lambda: RobustRegression(d=6, n_samples=3000, x_natural=torch.zeros(6), label_noise=0.05, seed=2),
        "robust_regression_default": lambda: RobustRegression(d=6, n_samples=3000, seed=2),
        "matrix_quadratic_n1": lambda: MatrixQuadratic.random(5, 7, N=1, seed=4),
        "matrix_quadratic_n4": lambda: MatrixQuadratic.random(5, 7, N=4, seed=5),
        "deep_linear_d1": lambda: DeepLinearNetwork.random(4, 1, seed=1),
        "deep_linear_d2": lambda: DeepLinearNetwork.random(4, 2, teacher_scale=0.8, seed=2),
        "deep_linear_d3": lambda: DeepLinearNetwork.random(3, 3, radius=1.3, seed=3),
        "rosenbrock_d2": lambda: Rosenbrock(2),
        "rosenbrock_d7": lambda: Rosenbrock(7, b=30.0, radius=1.5),
    }


FACTORIES = problem_factories()


@pytest.fixture(params=sorted(FACTORIES), ids=sorted(FACTORIES))
def problem(request):
    return FACTORIES[request.param]()


@pytest.fixture
def two_threads():
    """Two intra-op threads for the test (tests/conftest.py sets one): the threaded reduction paths that
    bit-identity must survive only exist with more than one thread."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
