r"""A deep linear network learning a linear teacher (teacher–student, population loss on whitened inputs).

Student :math:`W = (W_1, \dots, W_D)`, each :math:`h \times h` (``shape = (D, h, h)``), end-to-end map
:math:`P(W) = W_D \cdots W_1`; teacher :math:`T` (:math:`h \times h`). For inputs :math:`x \sim N(0, I_h)`
the population risk is

.. math::

   f(W) = \mathbb{E}_x\, \tfrac12 \|(P(W) - T)\,x\|^2 = \tfrac12 \|P(W) - T\|_F^2 .

:meth:`DeepLinearNetwork.grad` is its exact gradient,
:math:`\nabla_{W_l} f = A_l^\top (P - T) B_l^\top` with :math:`A_l = W_D\cdots W_{l+1}`, :math:`B_l = W_{l-1}\cdots W_1`;
:meth:`DeepLinearNetwork.sample_grad` is the gradient of the loss on a fresh minibatch of ``batch_size``
inputs, :math:`A_l^\top (P - T)\hat\Sigma B_l^\top` with :math:`\hat\Sigma = \frac1b\sum_k x_k x_k^\top`
(unbiased, :math:`E\hat\Sigma = I`; state-dependent, non-additive noise, as in online training).

**Minimum.** :math:`f \ge 0 = f^\star = f_{\inf}`, attained at the teacher's own factors
:math:`W_l = W_l^\natural` (``x_star``); the minimisers form a continuum (any factorisation of :math:`T`).

**Smoothness on a spectral ball, L_R = (2D − 1)R^{2D−2} + (D − 1)R^{D−2}‖T‖₂.** :math:`f` is a polynomial of
degree :math:`2D` and is not globally smooth for :math:`D \ge 2`; the constant holds on the convex set
:math:`\mathcal D_R = \{W : \|W_l\|_2 \le R\ \forall l\}` (``domain``; check iterates with :meth:`in_domain`).
*Proof* [D]. Along :math:`W + tV` with :math:`\sum_l \|V_l\|_F^2 = 1`,
:math:`\frac{d^2}{dt^2} f = \|P'\|_F^2 + \langle P - T, P''\rangle`, where :math:`P' = \sum_l A_l V_l B_l` and
:math:`P''` is twice the sum over pairs :math:`l < k` of the product with :math:`V_l` and :math:`V_k` in place of
:math:`W_l, W_k`. On :math:`\mathcal D_R`: :math:`\|P'\|_F \le R^{D-1}\sum_l \|V_l\|_F \le R^{D-1}\sqrt D`;
:math:`\|P''\|_* \le 2R^{D-2}\sum_{l<k}\|V_l\|_F\|V_k\|_F = R^{D-2}[(\sum_l\|V_l\|_F)^2 - 1] \le (D-1)R^{D-2}`
(using :math:`\|X Y\|_* \le \|X\|_F\|Y\|_F`); and :math:`|\langle P - T, P''\rangle| \le \|P - T\|_2 \|P''\|_*` with
:math:`\|P - T\|_2 \le R^D + \|T\|_2`. Summing, :math:`|f''| \le D R^{2D-2} + (D-1)R^{D-2}(R^D + \|T\|_2) = L_R`.
*Attained* (:meth:`DeepLinearNetwork.extremal_point`): with :math:`T = U\Sigma V^\top`, take :math:`W_1 = R V^\top`,
:math:`W_l = R I` (:math:`1 < l < D`), :math:`W_D = -R U`, so :math:`P - T = -U(R^D I + \Sigma)V^\top`, and the rank-one
direction :math:`V_1 = e_1 v_1^\top/\sqrt D`, :math:`V_l = e_1e_1^\top/\sqrt D`, :math:`V_D = -u_1 e_1^\top/\sqrt D`: every
term of :math:`P'` and of :math:`P''` is a negative multiple of :math:`u_1 v_1^\top`, all the inequalities above are
equalities, and :math:`f'' = L_R`. For :math:`D = 1`, :math:`f = \frac12\|W - T\|_F^2` and :math:`L = 1` everywhere.

**Teacher** (:meth:`DeepLinearNetwork.random`): :math:`W_l^\natural = s\,O_l` with Haar orthogonal :math:`O_l`, so
:math:`\|T\|_2 = s^D`. Defaults (ours): :math:`s = 1`, :math:`R = 1.5`, student start
:math:`W_l = I + 0.1\,G_l/\sqrt h` with Gaussian :math:`G_l` (near-identity initialisation, inside the ball).

Shapes: the parameter is one 3-D tensor ``[D, h, h]`` per seed (matrix optimizers apply their rule for
3-D tensors to it).
"""

from __future__ import annotations

import math

import torch

from algorithms.validation import check_int, check_nonnegative, check_positive

from .._invariant import rowsum
from ._base import Problem, as_problem_tensor, check_dimension
from .quadratic_cosine import haar_orthogonal

__all__ = ["DeepLinearNetwork"]


def _chain(x: torch.Tensor, lo: int, hi: int) -> torch.Tensor | None:
    """:math:`W_{hi-1} \\cdots W_{lo}` (0-based layers, ``[S, h, h]``), ``None`` for an empty product."""
    out = None
    for layer in range(lo, hi):
        out = x[:, layer] if out is None else torch.matmul(x[:, layer], out)
    return out


class DeepLinearNetwork(Problem):
    __doc__ = __doc__
    name = "deep_linear"
    stochastic = True

    def __init__(self, teacher: torch.Tensor, depth: int, *, radius: float = 1.5, teacher_factors=None, x0=None,
                 init_scale: float = 0.1, seed: int = 0, dtype: torch.dtype = torch.float64) -> None:
        if not isinstance(teacher, torch.Tensor) or teacher.dim() != 2 or teacher.shape[0] != teacher.shape[1]:
            raise ValueError("teacher must be a square matrix (torch.Tensor of shape [h, h])")
        self.depth = check_dimension("depth", depth)
        h = check_dimension("h", teacher.shape[0])
        self.width = h
        self.dtype = dtype
        self.shape = (self.depth, h, h)
        self.teacher = as_problem_tensor("teacher", teacher, (h, h), dtype)
        self.radius = check_positive("radius", radius)
        self.teacher_norm = float(torch.linalg.matrix_norm(self.teacher, 2))
        D, R = self.depth, self.radius
        if D == 1:
            self.L = 1.0
            self.domain = None
        else:
            self.L = (2 * D - 1) * R ** (2 * D - 2) + (D - 1) * R ** (D - 2) * self.teacher_norm
            self.domain = f"spectral ball: ||W_l||_2 <= {R} for every layer"
        if x0 is None:
            g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
            init_scale = check_nonnegative("init_scale", init_scale)
            noise = torch.randn(self.shape, generator=g, dtype=dtype) * (init_scale / math.sqrt(h))
            x0 = torch.eye(h, dtype=dtype).expand(self.shape) + noise
        self.x0 = as_problem_tensor("x0", x0, self.shape, dtype)
        self.f_inf = 0.0
        self.f_star = 0.0
        if teacher_factors is not None:
            self.x_star = as_problem_tensor("teacher_factors", teacher_factors, self.shape, dtype)
        else:
            self.x_star = None

    @classmethod
    def random(cls, h: int, depth: int, *, teacher_scale: float = 1.0, radius: float = 1.5, seed: int = 0,
               init_scale: float = 0.1, dtype: torch.dtype = torch.float64) -> "DeepLinearNetwork":
        """Teacher factors :math:`s\\,O_l` (Haar orthogonal), student near the identity."""
        h, depth = check_dimension("h", h), check_dimension("depth", depth)
        s = check_positive("teacher_scale", teacher_scale)
        seed = check_int("seed", seed, minimum=0)
        factors = torch.stack([s * haar_orthogonal(h, 7919 * seed + l, dtype) for l in range(depth)])
        teacher = _chain(factors.unsqueeze(0), 0, depth)[0]
        return cls(teacher, depth, radius=radius, teacher_factors=factors, seed=seed, init_scale=init_scale, dtype=dtype)

    def extremal_point(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The point and unit direction where the curvature equals ``L`` (class docstring), ``[D, h, h]`` each."""
        D, R, h = self.depth, self.radius, self.width
        U, _, Vh = torch.linalg.svd(self.teacher)
        eye = torch.eye(h, dtype=self.dtype)
        if D == 1:
            return self.teacher.unsqueeze(0).clone(), (eye[:, :1] @ eye[:1]).unsqueeze(0)
        W = torch.stack([R * Vh] + [R * eye] * (D - 2) + [-R * U])
        e1 = eye[:, :1]
        u1, v1 = U[:, :1], Vh[:1].T
        V = torch.stack([e1 @ v1.T] + [e1 @ e1.T] * (D - 2) + [-u1 @ e1.T]) / math.sqrt(D)
        return W, V

    def in_domain(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_point(x)
        if self.domain is None:
            return torch.ones(x.shape[0], dtype=torch.bool)
        norms = torch.linalg.matrix_norm(x, 2)  # [S, D]
        return (norms <= self.radius * (1 + 1e-12)).all(dim=1)

    def end_to_end(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`P = W_D \\cdots W_1`, ``[S, h, h]``."""
        return _chain(self.check_point(x), 0, self.depth)

    def value(self, x: torch.Tensor) -> torch.Tensor:
        r = self.end_to_end(x) - self.teacher
        return 0.5 * rowsum(r * r, 2)

    def _layer_grads(self, x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        grads = []
        for layer in range(self.depth):
            left = _chain(x, layer + 1, self.depth)  # A_l
            right = _chain(x, 0, layer)  # B_l
            g = m if left is None else torch.matmul(left.transpose(1, 2), m)
            g = g if right is None else torch.matmul(g, right.transpose(1, 2))
            grads.append(g)
        return torch.stack(grads, dim=1)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        x = self.check_point(x)
        return self._layer_grads(x, self.end_to_end(x) - self.teacher)

    def sample_grad(self, x: torch.Tensor, streams, step: int, batch_size: int = 1) -> torch.Tensor:
        x = self.check_point(x)
        b = check_int("batch_size", batch_size, minimum=1)
        inputs = streams.normal(step, "sample", (self.width, b), self.dtype)  # [S, h, b]
        cov = rowsum(inputs.unsqueeze(2) * inputs.unsqueeze(1), 1) / b  # [S, h, h]
        return self._layer_grads(x, torch.matmul(self.end_to_end(x) - self.teacher, cov))

    def constants(self) -> dict:
        out = super().constants()
        out.update(depth=self.depth, width=self.width, radius=self.radius, teacher_norm=self.teacher_norm)
        return out
