r"""An ill-conditioned Rosenbrock valley (the chained form), as a hard case.

.. math::

   f(x) = \sum_{i=1}^{d-1} \Big[\, b\,(x_{i+1} - x_i^2)^2 + (1 - x_i)^2 \Big], \qquad d \ge 2,\ b > 0.

A curved, narrow valley :math:`x_{i+1} \approx x_i^2`; the Hessian at the minimiser :math:`x^\star = \mathbf 1`
has condition number of order :math:`b` (about 2500 for :math:`b = 100`, :math:`d = 2`). :math:`f^\star = f_{\inf} = 0`.
The classic start is :math:`x_0 = (-1.2, 1, -1.2, 1, \dots)`.

**Smoothness on a box, L_R = 2 + 2b(4R² + 1 + 4R cos(π/d)) + 4b(R² + R).** :math:`f` is quartic, so a constant
exists only on a bounded set: here the box :math:`\|x\|_\infty \le R` (``domain``; :meth:`in_domain`).
*Proof* [D]. With :math:`q_i = x_{i+1} - x_i^2` and :math:`J` the :math:`(d-1) \times d` Jacobian of
:math:`q` (:math:`J_{ii} = -2x_i`, :math:`J_{i,i+1} = 1`),

.. math::

   \nabla^2 f = 2\,\Pi + 2b\,J^\top J - 4b\,\operatorname{diag}(q_1, \dots, q_{d-1}, 0),
   \qquad \Pi = \operatorname{diag}(1, \dots, 1, 0).

On the box :math:`q_i \ge -(R + R^2)` and :math:`q_i \le R`. :math:`JJ^\top` is tridiagonal with diagonal
:math:`4x_i^2 + 1 \le 4R^2 + 1` and off-diagonal :math:`-2x_{i+1}`, :math:`|\cdot| \le 2R`; the spectral radius of a
matrix is at most that of any entrywise larger non-negative matrix (Perron–Frobenius), and the
:math:`(d-1) \times (d-1)` tridiagonal Toeplitz matrix with diagonal :math:`4R^2 + 1` and off-diagonal :math:`2R` has
top eigenvalue :math:`4R^2 + 1 + 4R\cos(\pi/d)`. So :math:`\nabla^2 f \preceq [2 + 2b(4R^2 + 1 + 4R\cos\frac{\pi}{d}) + 4b(R^2 + R)]\,I`
and :math:`\nabla^2 f \succeq -4bR\,I`, whence :math:`\|\nabla^2 f\|_2 \le L_R`. *Nearly attained*: at :math:`x = -R\mathbf 1`
both parts reach their maxima, and only the last coordinate (where the diagonal terms vanish) separates
:math:`\lambda_{\max}` from the bound (tests measure the ratio; it is above 0.95 for :math:`b = 100, R = 2` and every
:math:`d \ge 2`).

Defaults: :math:`b = 100` (Rosenbrock 1960), :math:`R = 2` (ours; contains :math:`x_0` and :math:`x^\star`).
"""

from __future__ import annotations

import math

import torch

from algorithms.validation import check_positive

from .._invariant import rowsum
from ._base import Problem, as_problem_tensor, check_dimension

__all__ = ["Rosenbrock"]


class Rosenbrock(Problem):
    __doc__ = __doc__
    name = "rosenbrock"

    def __init__(self, d: int = 2, *, b: float = 100.0, radius: float = 2.0, x0=None,
                 dtype: torch.dtype = torch.float64) -> None:
        d = check_dimension("d", d)
        if d < 2:
            raise ValueError(f"d must be >= 2 for the Rosenbrock valley, got {d}")
        self.shape = (d,)
        self.dtype = dtype
        self.b = check_positive("b", b)
        self.radius = check_positive("radius", radius)
        if x0 is None:
            x0 = torch.tensor([-1.2 if i % 2 == 0 else 1.0 for i in range(d)], dtype=dtype)
        self.x0 = as_problem_tensor("x0", x0, self.shape, dtype)
        if float(self.x0.abs().max()) > self.radius or self.radius < 1.0:
            raise ValueError(f"radius must be >= 1 and >= max|x0| = {float(self.x0.abs().max())} so that the box "
                             f"contains x0 and the minimiser, got {self.radius}")
        b, R = self.b, self.radius
        self.L = 2.0 + 2.0 * b * (4 * R * R + 1 + 4 * R * math.cos(math.pi / d)) + 4.0 * b * (R * R + R)
        self.domain = f"box: |x_i| <= {R}"
        self.f_inf = 0.0
        self.f_star = 0.0
        self.x_star = torch.ones(self.shape, dtype=dtype)

    def in_domain(self, x: torch.Tensor) -> torch.Tensor:
        return self.check_point(x).abs().amax(dim=1) <= self.radius

    def value(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_point(x)
        head, tail = x[:, :-1], x[:, 1:]
        q = tail - head * head
        return rowsum(self.b * q * q + (1.0 - head) ** 2, 1)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_point(x)
        head, tail = x[:, :-1], x[:, 1:]
        q = tail - head * head
        g = torch.zeros_like(x)
        g[:, :-1] = -4.0 * self.b * head * q - 2.0 * (1.0 - head)
        g[:, 1:] += 2.0 * self.b * q
        return g

    def hessian(self, x: torch.Tensor) -> torch.Tensor:
        """The dense Hessian, ``[S, d, d]`` (tridiagonal)."""
        x = self.check_point(x)
        S, d = x.shape
        head, tail = x[:, :-1], x[:, 1:]
        diag = torch.zeros_like(x)
        diag[:, :-1] = 2.0 + 12.0 * self.b * head * head - 4.0 * self.b * tail
        diag[:, 1:] += 2.0 * self.b
        off = -4.0 * self.b * head
        H = torch.diag_embed(diag)
        H[:, torch.arange(d - 1), torch.arange(1, d)] = off
        H[:, torch.arange(1, d), torch.arange(d - 1)] = off
        return H
