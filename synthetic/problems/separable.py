r"""P1: a separable non-convex sum of log-barriers (docs/problems.md §3; SN experiments E1–E4).

.. math::

   f(x) = \sum_{i=1}^{d} a_i \log\Big(1 + \frac{(x_i - c_i)^2}{w_i^2}\Big), \qquad a_i > 0,\ w_i > 0.

**Gradient and Hessian.** With :math:`u_i = (x_i - c_i)/w_i`,
:math:`\partial_i f = \frac{2 a_i}{w_i}\,\frac{u_i}{1 + u_i^2}` and the Hessian is diagonal,
:math:`\partial_{ii} f = \frac{2 a_i}{w_i^2}\, h(u_i)` with :math:`h(u) = \frac{1 - u^2}{(1 + u^2)^2}`.

**Smoothness, L = 2 max_i a_i / w_i².** :math:`h'(u) = \frac{2u(u^2 - 3)}{(1+u^2)^3}`, so :math:`h`
has its maximum :math:`h(0) = 1` and its minimum :math:`h(\pm\sqrt 3) = -1/8`; hence
:math:`|\partial_{ii} f| \le 2a_i/w_i^2` and, the Hessian being diagonal,
:math:`\|\nabla^2 f(x)\|_2 = \max_i |\partial_{ii} f(x)| \le 2 \max_i a_i/w_i^2`, with equality at
:math:`x = c`. The constant is global and attained.

**Lower bound.** Every term is :math:`\ge 0` and vanishes at :math:`x = c`: :math:`f^\star = f_{\inf} = 0`,
:math:`x^\star = c`. The function is non-convex (:math:`\partial_{ii} f < 0` for :math:`|u_i| > 1`).

**Scaling in d (E3).** :meth:`SeparableLogSum.normalized` picks equal :math:`a_i = a`,
:math:`w_i = w` and :math:`x_0 = c + r\,w` so that :math:`L` and :math:`\Delta = d\,a \log(1 + r^2)`
are the requested O(1) values for every :math:`d`.

Defaults (ours): :math:`a = 1`, :math:`c = 0`, :math:`w = 1`, :math:`x_0 = c + 2w`.
"""

from __future__ import annotations

import math

import torch

from algorithms.validation import check_positive

from .._invariant import rowsum
from ._base import Problem, as_problem_tensor, check_dimension

__all__ = ["SeparableLogSum"]


class SeparableLogSum(Problem):
    __doc__ = __doc__
    name = "separable_log"

    def __init__(self, d: int, *, a=1.0, c=0.0, width=1.0, x0=None, dtype: torch.dtype = torch.float64) -> None:
        d = check_dimension("d", d)
        self.shape = (d,)
        self.dtype = dtype
        self.a = as_problem_tensor("a", a, self.shape, dtype, positive=True)
        self.c = as_problem_tensor("c", c, self.shape, dtype)
        self.width = as_problem_tensor("width", width, self.shape, dtype, positive=True)
        self.x0 = self.c + 2.0 * self.width if x0 is None else as_problem_tensor("x0", x0, self.shape, dtype)
        self._curv = 2.0 * self.a / self.width**2  # 2 a_i / w_i^2
        self._inv_width = 1.0 / self.width
        self._grad_coef = 2.0 * self.a / self.width  # 2 a_i / w_i
        self.L = float(self._curv.max())
        self.f_inf = 0.0
        self.f_star = 0.0
        self.x_star = self.c.clone()

    @classmethod
    def normalized(cls, d: int, *, L: float = 1.0, delta: float = 1.0, r: float = 2.0, c=0.0,
                   dtype: torch.dtype = torch.float64) -> "SeparableLogSum":
        """Equal weights with smoothness ``L`` and :math:`\\Delta = f(x_0) - 0 =` ``delta`` for any ``d``."""
        d = check_dimension("d", d)
        L = check_positive("L", L)
        delta = check_positive("delta", delta)
        r = check_positive("r", r)
        a = delta / (d * math.log1p(r * r))
        width = math.sqrt(2.0 * a / L)
        c = as_problem_tensor("c", c, (d,), dtype)
        return cls(d, a=a, c=c, width=width, x0=c + r * width, dtype=dtype)

    def _u(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`u = (x - c)/w`, computed as :math:`(x - c)\cdot(1/w)` (a fresh tensor)."""
        return (self.check_point(x) - self.c).mul_(self._inv_width)

    def value(self, x: torch.Tensor) -> torch.Tensor:
        u = self._u(x)
        return rowsum(self.a * torch.log1p(u * u), 1)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        u = self._u(x)
        denominator = (u * u).add_(1.0)
        return u.mul_(self._grad_coef).div_(denominator)  # one division: this runs at every step

    def hessian_diagonal(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\partial_{ii} f(x)`, per row (the Hessian is diagonal)."""
        u2 = self._u(x) ** 2
        return self._curv * (1.0 - u2) / (1.0 + u2) ** 2
