r"""P2: a quadratic plus a cosine ripple, with a prescribed spectrum (docs/problems.md §3; SM experiment E5).

.. math::

   f(x) = \tfrac12\, x^\top A x + \alpha \sum_{i=1}^{d} \cos x_i,
   \qquad A = Q\,\operatorname{diag}(\lambda)\,Q^\top,\ \lambda_i \ge 0,\ \alpha \ge 0.

:math:`\nabla f(x) = A x - \alpha \sin x` and :math:`\nabla^2 f(x) = A - \alpha\,\operatorname{diag}(\cos x)`.

**Smoothness, L = λ_max(A) + α.** For a unit vector :math:`v`,
:math:`v^\top \nabla^2 f(x) v = v^\top A v - \alpha \sum_i \cos(x_i) v_i^2 \in [\lambda_{\min} - \alpha,\ \lambda_{\max} + \alpha]`,
so :math:`\|\nabla^2 f(x)\|_2 \le \max(\lambda_{\max} + \alpha,\ \alpha - \lambda_{\min}) = \lambda_{\max} + \alpha`
(:math:`\lambda_{\min} \ge 0`). At :math:`x = \pi\mathbf 1` the Hessian is :math:`A + \alpha I`, whose norm is
:math:`\lambda_{\max} + \alpha`: the constant is global and attained.

**Lower bound.** :math:`x^\top A x \ge 0` and :math:`\cos \ge -1` give :math:`f \ge f_{\inf} = -\alpha d`
(a bound, not the infimum); :math:`f^\star = 0` at :math:`x = 0` only when :math:`\alpha = 0`.
The problem is non-convex at the origin iff :math:`\alpha > \lambda_{\min}` (then
:math:`\nabla^2 f(0) = A - \alpha I` has a negative eigenvalue), which SM E5 requires.

**Spectrum and basis.** ``eigenvalues`` is any non-negative vector; :func:`linear_spectrum`,
:func:`log_spectrum` and :func:`two_cluster_spectrum` (the DeepOBS ``quadratic_deep`` layout: 90 % of the
eigenvalues in (0, 1), 10 % in (30, 60)) build common ones. ``basis="random"`` draws a Haar orthogonal
:math:`Q` from ``seed`` (QR of a Gaussian matrix with the signs of diag R fixed); ``"identity"`` makes
:math:`A` diagonal (and the gradient elementwise); a tensor is used as :math:`Q` after an orthogonality check.

Defaults (ours): :math:`\alpha = 1`, ``basis="random"``, ``seed=0``, :math:`x_0 = 2\cdot\mathbf 1`.
"""

from __future__ import annotations

import math

import torch

from algorithms.validation import check_int, check_nonnegative, check_positive, check_unit_interval

from .._invariant import row_matmul, rowsum
from ._base import Problem, as_problem_tensor, check_dimension

__all__ = ["QuadraticCosine", "linear_spectrum", "log_spectrum", "two_cluster_spectrum", "haar_orthogonal"]


def linear_spectrum(d: int, low: float, high: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``d`` eigenvalues evenly spaced in [low, high]."""
    d = check_dimension("d", d)
    low, high = check_nonnegative("low", low), check_nonnegative("high", high)
    if high < low:
        raise ValueError(f"high must be >= low, got low={low}, high={high}")
    return torch.linspace(low, high, d, dtype=dtype)


def log_spectrum(d: int, low: float, high: float, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``d`` eigenvalues log-spaced in [low, high] (condition number high/low)."""
    d = check_dimension("d", d)
    low, high = check_positive("low", low), check_positive("high", high)
    if high < low:
        raise ValueError(f"high must be >= low, got low={low}, high={high}")
    return torch.logspace(math.log10(low), math.log10(high), d, dtype=dtype)


def two_cluster_spectrum(d: int, *, high_fraction: float = 0.1, low=(0.0, 1.0), high=(30.0, 60.0), seed: int = 0,
                         dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """DeepOBS ``quadratic_deep``-style spectrum: a fraction of the eigenvalues uniform in ``high``, the rest in ``low``."""
    d = check_dimension("d", d)
    high_fraction = check_unit_interval("high_fraction", high_fraction)
    seed = check_int("seed", seed, minimum=0)
    for name, (lo, hi) in (("low", low), ("high", high)):
        if check_nonnegative(f"{name}[0]", lo) > check_nonnegative(f"{name}[1]", hi):
            raise ValueError(f"{name} must be an interval (lo <= hi), got {low if name == 'low' else high}")
    g = torch.Generator().manual_seed(seed)
    n_high = round(high_fraction * d)
    u = torch.rand(d, generator=g, dtype=dtype)
    lam = low[0] + (low[1] - low[0]) * u
    lam[d - n_high:] = high[0] + (high[1] - high[0]) * u[d - n_high:]
    return lam


def haar_orthogonal(d: int, seed: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A Haar-distributed orthogonal ``d × d`` matrix (QR of a Gaussian matrix, signs of diag R made positive)."""
    g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
    q, r = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=dtype))
    return q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, torch.ones((), dtype=dtype))


class QuadraticCosine(Problem):
    __doc__ = __doc__
    name = "quadratic_cosine"

    def __init__(self, eigenvalues, *, alpha: float = 1.0, basis="random", seed: int = 0, x0=None,
                 dtype: torch.dtype = torch.float64) -> None:
        if not isinstance(eigenvalues, torch.Tensor):
            try:
                eigenvalues = torch.as_tensor(eigenvalues, dtype=dtype)
            except (TypeError, ValueError, RuntimeError):
                raise TypeError("eigenvalues must be a 1-D tensor or sequence of numbers") from None
        if eigenvalues.dim() != 1 or eigenvalues.numel() == 0:
            raise ValueError(f"eigenvalues must be a non-empty 1-D tensor, got shape {tuple(eigenvalues.shape)}")
        d = eigenvalues.numel()
        self.shape = (d,)
        self.dtype = dtype
        self.eigenvalues = as_problem_tensor("eigenvalues", eigenvalues, self.shape, dtype, nonnegative=True)
        self.alpha = check_nonnegative("alpha", alpha)
        self.basis = self._make_basis(basis, d, seed, dtype)
        if self.basis is None:
            self.A = torch.diag(self.eigenvalues)
        else:
            self.A = (self.basis * self.eigenvalues) @ self.basis.T
            self.A = 0.5 * (self.A + self.A.T)
        self.x0 = torch.full(self.shape, 2.0, dtype=dtype) if x0 is None else as_problem_tensor("x0", x0, self.shape, dtype)
        self.L = float(self.eigenvalues.max()) + self.alpha
        self.f_inf = -self.alpha * d
        self.f_star = 0.0 if self.alpha == 0 else None
        self.x_star = torch.zeros(self.shape, dtype=dtype) if self.alpha == 0 else None

    @staticmethod
    def _make_basis(basis, d: int, seed: int, dtype: torch.dtype) -> torch.Tensor | None:
        if isinstance(basis, torch.Tensor):
            q = basis.to(dtype)
            if q.shape != (d, d):
                raise ValueError(f"basis must be a {d}x{d} orthogonal matrix, got shape {tuple(q.shape)}")
            err = float((q.T @ q - torch.eye(d, dtype=dtype)).abs().max())
            if err > 1e-10:
                raise ValueError(f"basis must be orthogonal (max |QᵀQ - I| = {err:.2e})")
            return q.clone()
        if basis == "identity":
            return None
        if basis == "random":
            return haar_orthogonal(d, seed, dtype)
        raise ValueError(f"basis must be 'random', 'identity' or an orthogonal matrix, got {basis!r}")

    @property
    def eigenvectors(self) -> torch.Tensor:
        """:math:`Q` (columns are the eigenvectors of :math:`A`, in the order of ``eigenvalues``)."""
        return torch.eye(self.dim, dtype=self.dtype) if self.basis is None else self.basis

    @property
    def nonconvex_at_origin(self) -> bool:
        return self.alpha > float(self.eigenvalues.min())

    def _ax(self, x: torch.Tensor) -> torch.Tensor:
        if self.basis is None:
            return x * self.eigenvalues
        return row_matmul(x, self.A)  # A is symmetric: (A x)^T = x^T A

    def value(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_point(x)
        return rowsum(0.5 * x * self._ax(x) + self.alpha * torch.cos(x), 1)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_point(x)
        return self._ax(x) - self.alpha * torch.sin(x)

    def hvp(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        x, v = self.check_point(x), self.check_point(v, "v")
        return self._ax(v) - self.alpha * torch.cos(x) * v
