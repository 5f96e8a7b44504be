r"""P3: an ill-conditioned matrix least-squares problem plus a cosine ripple (docs/problems.md §3; experiment E6).

.. math::

   F(X) = \tfrac12\,\|U X V - C\|_F^2 + \alpha \sum_{i,j} \cos X_{ij},
   \qquad X \in \mathbb{R}^{m \times n},\ U \in \mathbb{R}^{p \times m},\ V \in \mathbb{R}^{n \times q}.

:math:`\nabla F(X) = U^\top (U X V - C) V^\top - \alpha \sin X`; the Hessian acts as
:math:`\Delta \mapsto U^\top U\,\Delta\,V V^\top - \alpha \cos(X) \odot \Delta`, i.e. on
:math:`\operatorname{vec}\Delta` (column-major) it is :math:`K - \alpha\,\operatorname{diag}(\operatorname{vec}\cos X)`
with :math:`K = (V V^\top) \otimes (U^\top U) \succeq 0`.

**Smoothness, L = ‖U‖₂²‖V‖₂² + α** [D]. :math:`\lambda_{\max}(K) = \lambda_{\max}(U^\top U)\,\lambda_{\max}(V V^\top)
= \|U\|_2^2 \|V\|_2^2` (eigenvalues of a Kronecker product of PSD matrices are the products), so, as for
P2, every Rayleigh quotient lies in :math:`[-\alpha,\ \|U\|_2^2\|V\|_2^2 + \alpha]`; at :math:`X = \pi\mathbf 1`
the Hessian is :math:`K + \alpha I` and the bound is attained.

**Lower bound.** :math:`F \ge f_{\inf} = -\alpha\, m n` [D] (a bound, not the infimum).

**Construction** (:meth:`MatrixQuadraticCosine.random`): square :math:`U = Q_1 \operatorname{diag}(s_U) Q_2^\top`
and :math:`V` likewise, with singular values log-spaced in :math:`[1/\sqrt{\kappa}, 1]` so that
:math:`\kappa(U^\top U) = \kappa_U`; :math:`C = U X^\natural V` for a Gaussian :math:`X^\natural` (so the
least-squares part alone has minimum 0). Defaults (ours): :math:`\kappa_U = \kappa_V = 100`, :math:`\alpha = 0.1`,
:math:`X_0 = \mathbf 1` (all ones).

Shapes: the parameter is the matrix :math:`X` itself (``shape = (m, n)``).
"""

from __future__ import annotations

import math

import torch

from algorithms.validation import check_int, check_nonnegative, check_positive

from .._invariant import batched_matmul_left, batched_matmul_right, rowsum
from ._base import Problem, as_problem_tensor, check_dimension
from .quadratic_cosine import haar_orthogonal

__all__ = ["MatrixQuadraticCosine"]


def _check_matrix(name: str, value, dtype: torch.dtype) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dim() != 2 or value.numel() == 0:
        raise ValueError(f"{name} must be a non-empty matrix, got shape {tuple(value.shape)}")
    value = value.to(dtype)
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} must be finite")
    return value.clone()


class MatrixQuadraticCosine(Problem):
    __doc__ = __doc__
    name = "matrix_quadratic_cosine"

    def __init__(self, U: torch.Tensor, V: torch.Tensor, C: torch.Tensor, *, alpha: float = 0.1, x0=None,
                 dtype: torch.dtype = torch.float64) -> None:
        self.dtype = dtype
        self.U = _check_matrix("U", U, dtype)
        self.V = _check_matrix("V", V, dtype)
        self.C = _check_matrix("C", C, dtype)
        m, n = self.U.shape[1], self.V.shape[0]
        if self.C.shape != (self.U.shape[0], self.V.shape[1]):
            raise ValueError(f"C must have shape {(self.U.shape[0], self.V.shape[1])} (rows of U, columns of V), "
                             f"got {tuple(self.C.shape)}")
        self.shape = (m, n)
        self.alpha = check_nonnegative("alpha", alpha)
        self.x0 = torch.ones(self.shape, dtype=dtype) if x0 is None else as_problem_tensor("x0", x0, self.shape, dtype)
        self._UtU = self.U.T @ self.U
        self._VVt = self.V @ self.V.T
        top = float(torch.linalg.matrix_norm(self.U, 2)) ** 2 * float(torch.linalg.matrix_norm(self.V, 2)) ** 2
        self.L = top + self.alpha
        self.f_inf = -self.alpha * m * n

    @classmethod
    def random(cls, m: int, n: int, *, cond_u: float = 100.0, cond_v: float = 100.0, alpha: float = 0.1,
               seed: int = 0, dtype: torch.dtype = torch.float64) -> "MatrixQuadraticCosine":
        """Square ill-conditioned :math:`U, V` (condition numbers of :math:`U^\\top U`, :math:`VV^\\top`) and :math:`C = U X^\\natural V`."""
        m, n = check_dimension("m", m), check_dimension("n", n)
        cond_u, cond_v = check_positive("cond_u", cond_u), check_positive("cond_v", cond_v)
        if cond_u < 1 or cond_v < 1:
            raise ValueError(f"cond_u and cond_v must be >= 1, got {cond_u}, {cond_v}")
        seed = check_int("seed", seed, minimum=0)

        def conditioned(k: int, cond: float, s: int) -> torch.Tensor:
            sv = torch.logspace(-0.5 * math.log10(cond), 0.0, k, dtype=dtype)
            return (haar_orthogonal(k, s, dtype) * sv) @ haar_orthogonal(k, s + 1, dtype).T

        U = conditioned(m, cond_u, 4 * seed)
        V = conditioned(n, cond_v, 4 * seed + 2)
        g = torch.Generator().manual_seed(seed)
        X_nat = torch.randn(m, n, generator=g, dtype=dtype)
        return cls(U, V, U @ X_nat @ V, alpha=alpha, dtype=dtype)

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        return batched_matmul_right(batched_matmul_left(self.U, x), self.V) - self.C

    def value(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_point(x)
        r = self._residual(x)
        return 0.5 * rowsum(r * r, 2) + self.alpha * rowsum(torch.cos(x), 2)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_point(x)
        r = self._residual(x)
        return batched_matmul_right(batched_matmul_left(self.U.T, r), self.V.T) - self.alpha * torch.sin(x)

    def hvp(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        x, v = self.check_point(x), self.check_point(v, "v")
        return batched_matmul_right(batched_matmul_left(self._UtU, v), self._VVt) - self.alpha * torch.cos(x) * v
