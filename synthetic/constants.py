r"""Numerical checks of a problem's constants: sampled curvature against ``L``, and ``f ≥ f_inf``.

Used by the test suite and by ``verify check`` (group ``synthetic``). The curvature probe runs power
iteration on exact Hessian-vector products, batched over sample points, so each point contributes the
Rayleigh quotient of (approximately) its top-magnitude eigenvector:

.. math::

   \kappa(x) = \frac{v_K^\top \nabla^2 f(x)\, v_K}{\|v_K\|^2}, \qquad
   v_{k+1} = \nabla^2 f(x)\, v_k / \|\nabla^2 f(x)\, v_k\|,

and :math:`|\kappa(x)| \le \|\nabla^2 f(x)\|_2 \le L` must hold at every point of the domain. Tightness is
the ratio :math:`\max_x |\kappa(x)| / L`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._invariant import rowsum
from .problems import (
    DeepLinearNetwork,
    MatrixQuadratic,
    MatrixQuadraticCosine,
    Problem,
    QuadraticCosine,
    RobustRegression,
    Rosenbrock,
    SeparableLogSum,
)
from .rng import SeedStreams

__all__ = ["CurvatureReport", "probe_curvature", "sample_points", "extremal_points", "power_curvature"]


@dataclass
class CurvatureReport:
    L: float
    max_abs_curvature: float
    ratio: float  # max |curvature| / L
    exceeds: bool  # some |curvature| > L (1 + rtol)
    n_points: int

    def passed(self, tightness: float = 0.9) -> bool:
        return not self.exceeds and self.ratio >= tightness


def _normalize(v: torch.Tensor) -> torch.Tensor:
    norm = rowsum(v * v, v.dim() - 1).sqrt()
    return v / norm.reshape(-1, *([1] * (v.dim() - 1))).clamp_min(1e-300)


def power_curvature(problem: Problem, x: torch.Tensor, v0: torch.Tensor, iters: int) -> torch.Tensor:
    """Rayleigh quotients after ``iters`` power steps from ``v0`` (per row)."""
    v = _normalize(v0)
    for _ in range(iters):
        v = _normalize(problem.hvp(x, v))
    return problem.curvature(x, v)


def sample_points(problem: Problem, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` points in the problem's domain: around ``x0``, ``x_star`` and spread over the region of interest."""
    streams = SeedStreams([seed * 1_000_003 + i for i in range(n)])
    z = streams.normal(0, "probe.points", problem.shape, problem.dtype)
    if isinstance(problem, Rosenbrock):
        u = streams.uniform(0, "probe.box", problem.shape, problem.dtype)
        return (2.0 * u - 1.0) * problem.radius
    if isinstance(problem, DeepLinearNetwork):
        # random points, rescaled into the spectral ball layer by layer
        norms = torch.linalg.matrix_norm(z, 2).clamp_min(1e-300)  # [n, D]
        u = streams.uniform(0, "probe.radius", (problem.depth,), problem.dtype)
        return z / norms[..., None, None] * (problem.radius * u)[..., None, None]
    centre = problem.x_star if problem.x_star is not None else problem.x0
    scale = torch.linspace(0.0, 3.0, n, dtype=problem.dtype).reshape(n, *([1] * problem.ndim))
    return centre.unsqueeze(0) + scale * z


def extremal_points(problem: Problem) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Points (and, where known, directions) where each family's bound is attained (class docstrings)."""
    dtype = problem.dtype
    if isinstance(problem, SeparableLogSum):
        return problem.c.unsqueeze(0).clone(), None
    if isinstance(problem, (QuadraticCosine, MatrixQuadraticCosine)):
        return torch.full((1, *problem.shape), torch.pi, dtype=dtype), None
    if isinstance(problem, MatrixQuadratic):
        return problem.x0.unsqueeze(0).clone(), None
    if isinstance(problem, DeepLinearNetwork):
        W, V = problem.extremal_point()
        return W.unsqueeze(0), V.unsqueeze(0)
    if isinstance(problem, Rosenbrock):
        return torch.full((1, *problem.shape), -problem.radius, dtype=dtype), None
    if isinstance(problem, RobustRegression):
        return torch.zeros((1, *problem.shape), dtype=dtype), None
    return problem.x0.unsqueeze(0).clone(), None


def probe_curvature(problem: Problem, *, n_points: int = 24, iters: int = 100, seed: int = 0,
                    rtol: float = 1e-10) -> CurvatureReport:
    """Sampled curvature at random domain points and at the extremal point, against ``problem.L``."""
    points = torch.cat([sample_points(problem, n_points, seed), extremal_points(problem)[0]])
    streams = SeedStreams([seed * 7 + 1 + i for i in range(points.shape[0])])
    v0 = streams.normal(0, "probe.direction", problem.shape, problem.dtype)
    curv = [power_curvature(problem, points, v0, iters).abs()]
    x_ext, v_ext = extremal_points(problem)
    if v_ext is not None:
        curv.append(problem.curvature(x_ext, v_ext).abs())
    inside = torch.cat([problem.in_domain(points), torch.ones(curv[-1].shape[0] if v_ext is not None else 0, dtype=torch.bool)])
    values = torch.cat(curv)[inside]
    top = float(values.max())
    return CurvatureReport(problem.L, top, top / problem.L, bool((values > problem.L * (1 + rtol)).any()), int(values.numel()))
