r"""RR: non-convex robust regression as a finite sum of N samples (docs/problems.md §3; MARS experiment B).

.. math::

   F(x) = \frac1N \sum_{i=1}^{N} f_i(x), \qquad
   f_i(x) = \kappa\Big[\rho(a_i^\top x - y_i) + \mu \sum_{j=1}^{d} \varphi(x_j)\Big],
   \quad \rho(r) = \log\big(1 + \tfrac{r^2}{2}\big),\ \varphi(t) = \frac{t^2}{1 + t^2},

with :math:`a_i = \sqrt d\, u_i`, :math:`u_i` uniform on the unit sphere (so :math:`\|a_i\|^2 = d` exactly),
and :math:`y_i = a_i^\top x^\natural + \epsilon_i`, :math:`\epsilon_i \sim N(0, \sigma_y^2)`. The samples are drawn
once (seeded); :meth:`RobustRegression.grad` is the **exact** full gradient over all :math:`N` of them and
:meth:`RobustRegression.sample_grad` the average over ``batch_size`` indices drawn uniformly **with
replacement** from the seed's stream (unbiased).

**Derivatives.** :math:`\rho'(r) = \frac{2r}{2 + r^2}`, :math:`\rho''(r) = \frac{4 - 2r^2}{(2 + r^2)^2}`,
:math:`\varphi'(t) = \frac{2t}{(1 + t^2)^2}`, :math:`\varphi''(t) = \frac{2 - 6t^2}{(1 + t^2)^3}`, and
:math:`\nabla^2 f_i(x) = \kappa[\rho''(r_i)\, a_i a_i^\top + \mu\,\operatorname{diag}\varphi''(x)]`.

**Bounds on the scalar functions** [D]. :math:`\rho''` is maximal at :math:`r = 0` (value 1) and minimal at
:math:`r^2 = 6` (value −1/8); :math:`\varphi''` is maximal at 0 (value 2) and minimal at :math:`t^2 = 1` (value −1/2);
:math:`|\rho'| \le 1/\sqrt2` (at :math:`r^2 = 2`) and :math:`|\varphi'| \le 3\sqrt3/8` (at :math:`t^2 = 1/3`).

**Per-sample smoothness, L_sample = κ(d + 2μ)** (Assumption B.2 of MARS: L-smooth for every ξ). With
:math:`\|a_i\|^2 = d`, :math:`-\kappa(d/8 + \mu/2) I \preceq \nabla^2 f_i \preceq \kappa(d + 2\mu) I`; equality on the
right is approached at :math:`x = 0` in the direction :math:`a_i` when :math:`y_i \to 0`.

**Smoothness of F, L = κ(λ_max(AᵀA/N) + 2μ).** Averaging,
:math:`\nabla^2 F = \kappa[\frac1N\sum_i \rho''(r_i) a_i a_i^\top + \mu\operatorname{diag}\varphi'']`, and
:math:`-\frac18 \frac{A^\top A}{N} \preceq \frac1N\sum_i \rho''(r_i) a_i a_i^\top \preceq \frac{A^\top A}{N}`, so
:math:`\|\nabla^2 F\|_2 \le \kappa(\lambda_{\max}(A^\top A/N) + 2\mu)`. It is attained in the limit
:math:`x^\natural = 0,\ \sigma_y \to 0` at :math:`x = 0`; for other instances it is a valid but loose bound
(label noise keeps :math:`\rho''(r_i) < 1`: for the defaults, :math:`\sigma_y = 0.5` and :math:`x^\natural \sim N(0, I)`,
the largest sampled curvature is about 0.76 L [M]).
Since :math:`E\,a a^\top = I`, :math:`\lambda_{\max}(A^\top A/N) \approx 1`: the per-sample constant is about
:math:`d` times larger, which is what separates variance-reduced rates from plain ones.

**Bounded gradients.** :math:`\|\nabla f_i(x)\| \le \kappa\sqrt d\,(1/\sqrt2 + 3\sqrt3\mu/8)`; by default
:math:`\kappa` is set so that this bound equals ``grad_bound`` = 0.5 (docs/problems.md §3).

**Lower bound.** :math:`\rho, \varphi \ge 0`: :math:`F \ge f_{\inf} = 0` [D] (the infimum is not known).

Defaults: :math:`d = 10`, :math:`N = 10^5`, :math:`\mu = 1`, ``grad_bound`` = 0.5, :math:`x_0 = x^\natural + 3\cdot\mathbf 1`
(docs/problems.md §3); :math:`\sigma_y = 0.5` and :math:`x^\natural \sim N(0, I)` from ``seed`` (ours).
"""

from __future__ import annotations

import math

import torch

from algorithms.validation import check_int, check_nonnegative, check_positive

from .._invariant import row_matmul, rowsum
from ._base import Problem, as_problem_tensor, check_dimension

__all__ = ["RobustRegression"]


def _rho(r: torch.Tensor) -> torch.Tensor:
    return torch.log1p(0.5 * r * r)


def _rho_prime(r: torch.Tensor) -> torch.Tensor:
    return 2.0 * r / (2.0 + r * r)


def _phi(t: torch.Tensor) -> torch.Tensor:
    t2 = t * t
    return t2 / (1.0 + t2)


def _phi_prime(t: torch.Tensor) -> torch.Tensor:
    return 2.0 * t / (1.0 + t * t) ** 2


class RobustRegression(Problem):
    __doc__ = __doc__
    name = "robust_regression"
    stochastic = True

    def __init__(self, d: int = 10, n_samples: int = 100_000, *, mu: float = 1.0, label_noise: float = 0.5,
                 grad_bound: float = 0.5, kappa: float | None = None, x_natural=None, x0=None, seed: int = 0,
                 dtype: torch.dtype = torch.float64) -> None:
        d = check_dimension("d", d)
        self.n_samples = check_dimension("n_samples", n_samples)
        self.mu = check_nonnegative("mu", mu)
        self.label_noise = check_nonnegative("label_noise", label_noise)
        seed = check_int("seed", seed, minimum=0)
        self.shape = (d,)
        self.dtype = dtype
        g = torch.Generator().manual_seed(seed)
        u = torch.randn(self.n_samples, d, generator=g, dtype=dtype)
        self.features = u / torch.linalg.vector_norm(u, dim=1, keepdim=True) * math.sqrt(d)
        if x_natural is None:
            x_natural = torch.randn(d, generator=g, dtype=dtype)
        self.x_natural = as_problem_tensor("x_natural", x_natural, self.shape, dtype)
        eps = torch.randn(self.n_samples, generator=g, dtype=dtype) * self.label_noise
        self.targets = self.features @ self.x_natural + eps
        if kappa is None:
            grad_bound = check_positive("grad_bound", grad_bound)
            kappa = grad_bound / (math.sqrt(d) * (1.0 / math.sqrt(2.0) + 3.0 * math.sqrt(3.0) * self.mu / 8.0))
        self.kappa = check_positive("kappa", kappa)
        self.x0 = self.x_natural + 3.0 if x0 is None else as_problem_tensor("x0", x0, self.shape, dtype)
        gram = self.features.T @ self.features / self.n_samples
        self.gram_top = float(torch.linalg.eigvalsh(gram)[-1])
        self.L = self.kappa * (self.gram_top + 2.0 * self.mu)
        self.L_sample = self.kappa * (d + 2.0 * self.mu)
        self.f_inf = 0.0
        self._features_t = self.features.T.contiguous()

    @property
    def gradient_norm_bound(self) -> float:
        """:math:`\\sup_{i, x} \\|\\nabla f_i(x)\\|`: the bound of the class docstring."""
        d = self.dim
        return self.kappa * math.sqrt(d) * (1.0 / math.sqrt(2.0) + 3.0 * math.sqrt(3.0) * self.mu / 8.0)

    def _residuals(self, x: torch.Tensor) -> torch.Tensor:
        return row_matmul(x, self._features_t) - self.targets  # [S, N]

    def value(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_point(x)
        data = rowsum(_rho(self._residuals(x)), 1) / self.n_samples
        return self.kappa * (data + self.mu * rowsum(_phi(x), 1))

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_point(x)
        weights = _rho_prime(self._residuals(x)) / self.n_samples
        return self.kappa * (row_matmul(weights, self.features) + self.mu * _phi_prime(x))

    # ------------------------------------------------------------------ the finite sum
    def sample_indices(self, streams, step: int, batch_size: int) -> torch.Tensor:
        """``[S, batch_size]`` indices drawn uniformly with replacement (channel ``"sample"``)."""
        return streams.integers(step, "sample", (check_int("batch_size", batch_size, minimum=1),), self.n_samples)

    def sample_value(self, x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """:math:`\\frac1b\\sum_j f_{i_j}(x)` for ``indices`` of shape ``[S, b]``."""
        x = self.check_point(x)
        r = self._sample_residuals(x, indices)
        return self.kappa * (rowsum(_rho(r), 1) / indices.shape[1] + self.mu * rowsum(_phi(x), 1))

    def sample_grad_at(self, x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """:math:`\\frac1b\\sum_j \\nabla f_{i_j}(x)` for ``indices`` of shape ``[S, b]``."""
        x = self.check_point(x)
        a = self.features[indices]  # [S, b, d]
        r = rowsum(a * x.unsqueeze(1), 1) - self.targets[indices]
        weighted = (_rho_prime(r) / indices.shape[1]).unsqueeze(1) * a.transpose(1, 2)  # [S, d, b]
        return self.kappa * (rowsum(weighted, 1) + self.mu * _phi_prime(x))

    def _sample_residuals(self, x: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        if indices.dim() != 2 or indices.shape[0] != x.shape[0]:
            raise ValueError(f"indices must have shape [S, b] with S = {x.shape[0]}, got {tuple(indices.shape)}")
        return rowsum(self.features[indices] * x.unsqueeze(1), 1) - self.targets[indices]

    def sample_grad(self, x: torch.Tensor, streams, step: int, batch_size: int = 1) -> torch.Tensor:
        return self.sample_grad_at(x, self.sample_indices(streams, step, batch_size))

    def constants(self) -> dict:
        out = super().constants()
        out.update(L_sample=self.L_sample, n_samples=self.n_samples, kappa=self.kappa, mu=self.mu,
                   label_noise=self.label_noise, gradient_norm_bound=self.gradient_norm_bound)
        return out
