r"""Problems and noises of the rate cells, named by plain data (a thin layer over :mod:`synthetic`).

A cell names its problem and its noise by a family and JSON-able parameters, so that a cached
result row records exactly what ran; :func:`build_problem` and :func:`build_noise` turn them into
:mod:`synthetic` objects. Nothing here re-implements a problem or a noise generator.

Problems (:data:`PROBLEM_FAMILIES`):

``separable``          P1, :meth:`synthetic.SeparableLogSum.normalized` (L and Δ fixed for every d).
``matrix_quadratic``   the ABC quadratic :class:`synthetic.MatrixQuadratic` with N = 1, B and C from
                       :meth:`~synthetic.MatrixQuadratic.random` (eigenvalues log-spaced in
                       ``eig_range``), **A = 0** (so W* = 0, f* = 0) and a random start of Frobenius norm
                       ``start_norm`` (seeded): a well-conditioned matrix problem whose initial
                       gradient is O(1), so that the noise dominates early.
``robust_regression``  RR, :class:`synthetic.RobustRegression` (finite sum; its own sampling noise),
                       started at :math:`x^\natural + \text{start\_offset}\cdot\mathbf 1`.

Noises (:data:`NOISE_FAMILIES`); every generator is Rademacher (``σ_i = s_i`` exactly under
E exp(ξ²/σ²) ≤ e, the cheapest draw) unless stated, and ``level`` is the **sub-gaussian**
:math:`\|\sigma\|_2` (= the noise standard deviation :math:`\sqrt{E\|\xi\|^2}` for Rademacher):

``none``        exact gradients.
``isotropic``   :math:`s_i = \text{level}/\sqrt{\dim}` on every coordinate.
``sparse``      :math:`s_i = \text{level}` on :math:`\lceil d^\beta\rceil` coordinates (docs/problems.md §5, E3:
                σ_i = 1 on a random set), :func:`synthetic.sparse_scale`.
``rows``        a matrix parameter: :math:`s_{ij} = \text{level}/\sqrt{\text{rows}\cdot n}` on its first
                ``rows`` rows, 0 elsewhere (the noise sits in a low-dimensional row space; an SVD of
                the noisy gradient then selects the noise's rows, docs/methods.md §4.3).
``student_t``   heavy-tailed :math:`t_3` noise with per-coordinate standard deviation
                :math:`\text{level}/\sqrt{\dim}`: **not sub-gaussian**; used only as the planted
                violation of a check's premise.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from synthetic import AdditiveNoise, MatrixQuadratic, NoiseModel, Problem, RobustRegression, SeparableLogSum, sparse_scale

__all__ = ["PROBLEM_FAMILIES", "NOISE_FAMILIES", "build_problem", "build_noise", "noise_constants"]


def _separable(d: int = 16, L: float = 1.0, delta: float = 1.0, r: float = 2.0, start: float | None = None,
               instance: int = 0, centre: float = 0.0) -> Problem:
    """P1 normalised by (L, Δ at radius r). ``start``: the start radius in widths (default r; a smaller value
    starts in the locally quadratic basin, where the noise dominates). ``instance`` > 0 draws each
    coordinate's start radius uniformly in [0.5, 1.5]·start (and its side) from that seed. ``centre``: the
    minimiser c = centre·w·1 (a nonzero centre makes weight decay, which pulls towards 0, matter)."""
    base = SeparableLogSum.normalized(int(d), L=float(L), delta=float(delta), r=float(r))
    if centre:
        base = SeparableLogSum(int(d), a=base.a, c=float(centre) * base.width, width=base.width,
                               x0=float(centre) * base.width + float(r) * base.width)
    if start is None and not instance:
        return base
    radius = float(r if start is None else start)
    offset = torch.full((int(d),), radius, dtype=torch.float64)
    if instance:
        g = torch.Generator().manual_seed(20_000 + int(instance))
        offset = offset * (0.5 + torch.rand(int(d), generator=g, dtype=torch.float64))
        offset = offset * torch.where(torch.rand(int(d), generator=g) < 0.5, -1.0, 1.0).to(torch.float64)
    return SeparableLogSum(int(d), a=base.a, c=base.c, width=base.width, x0=base.c + offset * base.width)


def _matrix_quadratic(m: int = 8, n: int = 16, eig_range=(1.0, 2.0), seed: int = 0, start_norm: float = 0.5) -> Problem:
    base = MatrixQuadratic.random(int(m), int(n), 1, eig_range=tuple(eig_range), seed=int(seed))
    g = torch.Generator().manual_seed(10_000 + int(seed))
    start = torch.randn(int(m), int(n), generator=g, dtype=torch.float64)
    start = start * (float(start_norm) / float(start.norm()))
    return MatrixQuadratic(torch.zeros(1, int(m), int(n), dtype=torch.float64), base.B, base.C, x0=start)


def _robust_regression(d: int = 10, n_samples: int = 1024, seed: int = 0, start_offset: float = 3.0,
                       grad_bound: float = 0.5) -> Problem:
    """RR with x0 = x♮ + start_offset·1 (the MARS paper's experiment uses 3); ``grad_bound`` sets κ (and so L)."""
    base = RobustRegression(d=int(d), n_samples=int(n_samples), seed=int(seed), grad_bound=float(grad_bound))
    if float(start_offset) == 3.0:
        return base
    return RobustRegression(d=int(d), n_samples=int(n_samples), seed=int(seed), grad_bound=float(grad_bound),
                            x0=base.x_natural + float(start_offset))


PROBLEM_FAMILIES = {"separable": _separable, "matrix_quadratic": _matrix_quadratic, "robust_regression": _robust_regression}


def build_problem(family: str, params: Mapping[str, Any]) -> Problem:
    try:
        factory = PROBLEM_FAMILIES[family]
    except KeyError:
        raise ValueError(f"unknown problem family {family!r}; known: {sorted(PROBLEM_FAMILIES)}") from None
    return factory(**dict(params))


def _scale_isotropic(shape, level: float) -> torch.Tensor:
    dim = math.prod(shape)
    return torch.full(tuple(shape), float(level) / math.sqrt(dim), dtype=torch.float64)


def _scale_sparse(shape, level: float, beta: float, placement: str = "random", seed: int = 0) -> torch.Tensor:
    return sparse_scale(tuple(shape), float(beta), scale=float(level), placement=placement, seed=int(seed))


def _scale_rows(shape, level: float, rows: int) -> torch.Tensor:
    if len(shape) != 2:
        raise ValueError(f"noise family 'rows' needs a matrix problem, got shape {tuple(shape)}")
    m, n = shape
    rows = int(rows)
    if not 1 <= rows <= m:
        raise ValueError(f"rows must be in [1, {m}], got {rows}")
    scale = torch.zeros(m, n, dtype=torch.float64)
    scale[:rows] = float(level) / math.sqrt(rows * n)
    return scale


def noise_scale(family: str, params: Mapping[str, Any], shape) -> torch.Tensor | None:
    """The per-coordinate standard deviation :math:`s` of the noise (``None`` for ``none``)."""
    params = dict(params)
    if family == "none":
        return None
    if family in ("isotropic", "student_t"):
        return _scale_isotropic(shape, params["level"])
    if family == "sparse":
        return _scale_sparse(shape, **params)
    if family == "rows":
        return _scale_rows(shape, **params)
    raise ValueError(f"unknown noise family {family!r}; known: {sorted(NOISE_FAMILIES)}")


NOISE_FAMILIES = ("none", "isotropic", "sparse", "rows", "student_t")


def build_noise(family: str, params: Mapping[str, Any], shape) -> NoiseModel | None:
    scale = noise_scale(family, params, shape)
    if scale is None:
        return None
    if family == "student_t":
        return AdditiveNoise(scale, "student_t", df=3)
    return AdditiveNoise(scale, "rademacher")


def noise_constants(family: str, params: Mapping[str, Any], shape, subset_size: int | None = None) -> dict[str, float]:
    """Constants of the noise for the theorems: variance, ‖σ‖₂, ‖σ‖₁ and the mixed ‖σ‖₂,₁ (contiguous subsets)."""
    scale = noise_scale(family, params, shape)
    if scale is None:
        return {"variance": 0.0, "sigma_l2": 0.0, "sigma_l1": 0.0, "sigma_21": 0.0, "sub_gaussian": True}
    s = scale.reshape(-1)
    out = {"variance": float((s * s).sum()), "sub_gaussian": family != "student_t"}
    if family == "student_t":
        out.update(sigma_l2=math.nan, sigma_l1=math.nan, sigma_21=math.nan)
        return out
    out["sigma_l2"] = float(s.norm())
    out["sigma_l1"] = float(s.abs().sum())
    k = int(subset_size or s.numel())
    if s.numel() % k:
        raise ValueError(f"subset_size {k} does not divide the dimension {s.numel()}")
    out["sigma_21"] = float(s.reshape(-1, k).norm(dim=1).sum())
    return out
