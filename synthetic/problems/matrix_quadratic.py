r"""ABC: the matrix quadratic behind the gradient-rank theory (GaLore Theorem 3.2's gradient form; docs/rank.md §2, §4).

.. math::

   f(W) = \frac1N \sum_{i=1}^{N} \Big[\tfrac12 \operatorname{tr}(W^\top B_i W C_i) - \operatorname{tr}(A_i^\top W)\Big],
   \qquad W \in \mathbb{R}^{m \times n},\ B_i \succeq 0\ (m \times m),\ C_i \succeq 0\ (n \times n).

**Gradient.** :math:`\nabla f(W) = \frac1N \sum_i (B_i W C_i - A_i)`, the GaLore form
:math:`G = \frac1N\sum_i (A_i - B_i W C_i)` up to the sign convention (the papers write :math:`G = -\nabla f`;
this module uses :math:`\nabla f` throughout).

**Hessian and L.** :math:`f` is quadratic with Hessian operator :math:`\mathcal S(V) = \frac1N\sum_i B_i V C_i`, which
on :math:`\operatorname{vec} V` (column-major) is :math:`S = \frac1N \sum_i C_i \otimes B_i`, symmetric PSD. Hence
:math:`\|\nabla^2 f\|_2 = \lambda_{\max}(S) = L` everywhere (attained along the top eigenvector). For
:math:`N = 1`, :math:`\lambda_{\max}(S) = \lambda_{\max}(B)\lambda_{\max}(C)`; otherwise :math:`S` is formed and
diagonalised (``eigvalsh``) when :math:`mn \le` :data:`DENSE_LIMIT`, else :math:`\lambda_{\max}` comes from Lanczos
(``scipy.sparse.linalg.eigsh``, relative tolerance 1e-12) on the operator.

**Minimum.** With :math:`\bar A = \frac1N\sum_i A_i` and :math:`S \succ 0`, the unique minimiser solves
:math:`\mathcal S(W^\star) = \bar A` and :math:`f^\star = -\tfrac12\langle \bar A, W^\star\rangle` (convex quadratic, so
:math:`f_{\inf} = f^\star` is finite [D]). A singular :math:`S` is rejected (``ValueError``): then :math:`f` is either
unbounded below or has a non-unique minimiser, and neither case is needed here.

**Stochastic oracle** (finite sum): :meth:`MatrixQuadratic.sample_grad` averages
:math:`B_i W C_i - A_i` over ``batch_size`` indices drawn uniformly with replacement from the seed's stream.

**Rank-decay experiment** (docs/rank.md §4): :meth:`MatrixQuadratic.random` draws :math:`B_i, C_i` with
eigenvalues log-spaced in ``eig_range`` = [1, 10] in Haar-random bases and Gaussian :math:`A_i`; :math:`W_0 = 0`.
"""

from __future__ import annotations

import math

import torch

from algorithms.validation import check_int, check_positive

from .._invariant import batched_matmul_left, batched_matmul_right, rowsum
from ._base import Problem, as_problem_tensor, check_dimension
from .quadratic_cosine import haar_orthogonal

__all__ = ["MatrixQuadratic", "DENSE_LIMIT"]

#: largest m·n for which the Hessian S is formed densely
DENSE_LIMIT = 2500


def _stack(name: str, value, dtype: torch.dtype) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape [N, rows, cols], got {type(value).__name__}")
    if value.dim() == 2:
        value = value.unsqueeze(0)
    if value.dim() != 3 or value.numel() == 0:
        raise ValueError(f"{name} must have shape [N, rows, cols] (or one matrix), got {tuple(value.shape)}")
    value = value.to(dtype).clone()
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} must be finite")
    return value


def _check_psd(name: str, mats: torch.Tensor) -> None:
    if mats.shape[-1] != mats.shape[-2]:
        raise ValueError(f"{name} must hold square matrices, got shape {tuple(mats.shape)}")
    asym = float((mats - mats.transpose(-1, -2)).abs().max())
    scale = float(mats.abs().max())
    if asym > 1e-12 * max(scale, 1.0):
        raise ValueError(f"{name} must be symmetric (max |M - Mᵀ| = {asym:.2e})")
    lam_min = float(torch.linalg.eigvalsh(mats).min())
    if lam_min < -1e-12 * max(scale, 1.0):
        raise ValueError(f"{name} must be positive semidefinite (smallest eigenvalue {lam_min:.3e})")


class MatrixQuadratic(Problem):
    __doc__ = __doc__
    name = "matrix_quadratic"
    stochastic = True

    def __init__(self, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, *, x0=None,
                 dtype: torch.dtype = torch.float64) -> None:
        self.dtype = dtype
        self.A, self.B, self.C = _stack("A", A, dtype), _stack("B", B, dtype), _stack("C", C, dtype)
        N = self.A.shape[0]
        if self.B.shape[0] != N or self.C.shape[0] != N:
            raise ValueError(f"A, B, C must hold the same number N of terms, got {self.A.shape[0]}, "
                             f"{self.B.shape[0]}, {self.C.shape[0]}")
        m, n = self.A.shape[1:]
        if self.B.shape[1:] != (m, m) or self.C.shape[1:] != (n, n):
            raise ValueError(f"B_i must be {m}x{m} and C_i {n}x{n} for A_i of shape {m}x{n}, got B {tuple(self.B.shape[1:])}, "
                             f"C {tuple(self.C.shape[1:])}")
        _check_psd("B", self.B)
        _check_psd("C", self.C)
        self.n_terms = N
        self.shape = (m, n)
        self.A_mean = self.A.mean(0)
        self.x0 = torch.zeros(self.shape, dtype=dtype) if x0 is None else as_problem_tensor("x0", x0, self.shape, dtype)
        lam = self._extreme_eigenvalues()
        self.L, self.mu = lam[1], lam[0]
        if not self.mu > 0:
            raise ValueError(f"the Hessian S = (1/N) Σ C_i ⊗ B_i must be positive definite (λ_min = {self.mu:.3e})")
        self.x_star = self._solve(self.A_mean)
        self.f_star = -0.5 * float((self.A_mean * self.x_star).sum())
        self.f_inf = self.f_star

    @classmethod
    def random(cls, m: int, n: int, N: int = 1, *, eig_range=(1.0, 10.0), seed: int = 0,
               dtype: torch.dtype = torch.float64) -> "MatrixQuadratic":
        """docs/rank.md §4: B_i, C_i with log-spaced eigenvalues in ``eig_range``, Gaussian A_i, W_0 = 0."""
        m, n, N = check_dimension("m", m), check_dimension("n", n), check_dimension("N", N)
        lo, hi = (check_positive("eig_range[0]", eig_range[0]), check_positive("eig_range[1]", eig_range[1]))
        if hi < lo:
            raise ValueError(f"eig_range must be (low, high) with low <= high, got {eig_range}")
        seed = check_int("seed", seed, minimum=0)

        def psd(k: int, s: int) -> torch.Tensor:
            q = haar_orthogonal(k, s, dtype)
            m_ = (q * torch.logspace(math.log10(lo), math.log10(hi), k, dtype=dtype)) @ q.T
            return 0.5 * (m_ + m_.T)

        B = torch.stack([psd(m, 1000 * seed + 2 * i) for i in range(N)])
        C = torch.stack([psd(n, 1000 * seed + 2 * i + 1) for i in range(N)])
        g = torch.Generator().manual_seed(seed)
        A = torch.randn(N, m, n, generator=g, dtype=dtype)
        return cls(A, B, C, dtype=dtype)

    # ------------------------------------------------------------------ the Hessian operator
    def hessian_apply(self, v: torch.Tensor) -> torch.Tensor:
        """:math:`\\mathcal S(V) = \\frac1N \\sum_i B_i V C_i` for ``v`` of shape ``[S, m, n]`` (batch-invariant)."""
        out = None
        for i in range(self.n_terms):
            term = batched_matmul_right(batched_matmul_left(self.B[i], v), self.C[i])
            out = term if out is None else out + term
        return out / self.n_terms

    def hessian_matrix(self) -> torch.Tensor:
        """The dense :math:`S = \\frac1N\\sum_i C_i \\otimes B_i` (column-major vec), ``mn × mn``."""
        return sum(torch.kron(self.C[i], self.B[i]) for i in range(self.n_terms)) / self.n_terms

    def _extreme_eigenvalues(self) -> tuple[float, float]:
        m, n = self.shape
        if self.n_terms == 1:
            lb, lc = torch.linalg.eigvalsh(self.B[0]), torch.linalg.eigvalsh(self.C[0])
            return float(lb[0] * lc[0]), float(lb[-1] * lc[-1])
        if m * n <= DENSE_LIMIT:
            lam = torch.linalg.eigvalsh(self.hessian_matrix())
            return float(lam[0]), float(lam[-1])
        return self._lanczos_extremes()

    def _operator(self):
        from scipy.sparse.linalg import LinearOperator

        m, n = self.shape

        def matvec(vec):
            V = torch.as_tensor(vec, dtype=self.dtype).reshape(n, m).T.unsqueeze(0)  # column-major vec
            return self.hessian_apply(V)[0].T.reshape(-1).numpy()

        return LinearOperator((m * n, m * n), matvec=matvec, dtype="float64")

    def _lanczos_extremes(self) -> tuple[float, float]:
        from scipy.sparse.linalg import eigsh

        op = self._operator()
        top = eigsh(op, k=1, which="LA", tol=1e-12, return_eigenvectors=False)[0]
        bottom = eigsh(op, k=1, which="SA", tol=1e-12, return_eigenvectors=False)[0]
        return float(bottom), float(top)

    def _solve(self, rhs: torch.Tensor) -> torch.Tensor:
        m, n = self.shape
        if self.n_terms == 1:
            # B W C = rhs  =>  W = B^{-1} rhs C^{-1}
            return torch.linalg.solve(self.B[0], torch.linalg.solve(self.C[0], rhs.T).T)
        if m * n <= DENSE_LIMIT:
            w = torch.linalg.solve(self.hessian_matrix(), rhs.T.reshape(-1))
            return w.reshape(n, m).T.contiguous()
        from scipy.sparse.linalg import cg

        w, info = cg(self._operator(), rhs.T.reshape(-1).numpy(), rtol=1e-14, atol=0.0, maxiter=100 * m * n)
        if info != 0:
            raise RuntimeError(f"conjugate gradients did not converge for the minimiser (info={info})")
        return torch.as_tensor(w, dtype=self.dtype).reshape(n, m).T.contiguous()

    # ------------------------------------------------------------------ the function
    def value(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_point(x)
        return rowsum(0.5 * x * self.hessian_apply(x) - self.A_mean * x, 2)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_point(x)
        return self.hessian_apply(x) - self.A_mean

    def hvp(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        self.check_point(x)
        return self.hessian_apply(self.check_point(v, "v"))

    def sample_grad(self, x: torch.Tensor, streams, step: int, batch_size: int = 1) -> torch.Tensor:
        x = self.check_point(x)
        b = check_int("batch_size", batch_size, minimum=1)
        idx = streams.integers(step, "sample", (b,), self.n_terms)  # [S, b]
        per_term = torch.stack(
            [batched_matmul_right(batched_matmul_left(self.B[i], x), self.C[i]) - self.A[i] for i in range(self.n_terms)],
            dim=-1,
        )  # [S, m, n, N]
        picked = torch.gather(per_term, -1, idx[:, None, None, :].expand(-1, *self.shape, -1))  # [S, m, n, b]
        return rowsum(picked, 1) / b
