r"""The contract of a synthetic problem: value, exact gradient, stochastic oracle and known constants.

Every problem is a smooth function :math:`f : \mathbb{R}^{\text{shape}} \to \mathbb{R}` evaluated on a
batch of independent points ``x`` of shape ``[S, *shape]`` (one row per seed), in the problem's dtype
(float64 by default). Every method is written once for batched inputs and is **batch-invariant**:
row ``s`` of the result is bit-identical whatever ``S`` is (see :mod:`synthetic._invariant`).

A problem provides

* ``shape`` and ``dim`` (the number of coordinates);
* ``value(x) -> [S]``, ``grad(x) -> [S, *shape]`` (exact), ``hvp(x, v)`` (exact Hessian-vector
  product; by default double back-propagation through :meth:`value`, independent of the hand-written
  gradient);
* ``sample_grad(x, streams, step, batch_size)``: the problem's own stochastic oracle
  :math:`g(x, \xi)` (finite sums sample their terms; problems without one return the exact gradient,
  and additive or multiplicative noise comes from :mod:`synthetic.noise`);
* ``L``: a smoothness constant, :math:`\|\nabla^2 f(x)\|_2 \le L` on ``domain`` (everywhere when
  ``domain is None``), proved in each class docstring and checked in tests by sampling Hessian-vector
  products (no sampled curvature exceeds ``L``; the largest comes within 10 % of it);
* ``f_inf`` (a lower bound on :math:`f`), ``f_star`` (the infimum, or ``None`` when unknown),
  ``x_star`` (a minimiser, or ``None``), ``x0`` (the default start) and ``delta(x0) = f(x0) - f_inf``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Sequence

import torch

from algorithms.validation import check_int, check_nonnegative

__all__ = ["Problem", "as_problem_tensor", "check_dimension"]


def check_dimension(name: str, value: Any) -> int:
    """A problem dimension: a positive int."""
    return check_int(name, value, minimum=1)


def as_problem_tensor(name: str, value: Any, shape: Sequence[int], dtype: torch.dtype, *, positive: bool = False,
                      nonnegative: bool = False) -> torch.Tensor:
    """``value`` (a number or a tensor broadcastable to ``shape``) as a finite tensor of that shape."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number or a tensor, got bool")
    try:
        t = torch.as_tensor(value, dtype=dtype)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{name} must be a number or a tensor, got {type(value).__name__}") from None
    if t.is_complex():
        raise TypeError(f"{name} must be real")
    try:
        t = torch.broadcast_to(t, tuple(shape)).clone()
    except RuntimeError:
        raise ValueError(f"{name} must be broadcastable to shape {tuple(shape)}, got shape {tuple(t.shape)}") from None
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite")
    if positive and t.numel() and not bool((t > 0).all()):
        raise ValueError(f"{name} must be > 0, got minimum {float(t.min())}")
    if nonnegative and t.numel() and not bool((t >= 0).all()):
        raise ValueError(f"{name} must be >= 0, got minimum {float(t.min())}")
    return t


class Problem:
    """Base class; subclasses set the attributes below and implement :meth:`value` and :meth:`grad`."""

    #: short name used in results and reports
    name: ClassVar[str] = ""
    #: True when :meth:`sample_grad` draws its own randomness (finite sums, online data)
    stochastic: ClassVar[bool] = False

    shape: tuple[int, ...]
    dtype: torch.dtype
    L: float
    f_inf: float
    f_star: float | None = None
    x_star: torch.Tensor | None = None
    x0: torch.Tensor
    #: where ``L`` holds; ``None`` means everywhere (subclasses describe it in words)
    domain: str | None = None

    # ------------------------------------------------------------------ shape helpers
    @property
    def dim(self) -> int:
        return math.prod(self.shape)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def check_point(self, x: torch.Tensor, name: str = "x") -> torch.Tensor:
        """Raise a clear error unless ``x`` is a real tensor of shape ``[S, *shape]`` in the problem dtype."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.dtype != self.dtype:
            raise TypeError(f"{name} must have dtype {self.dtype} (the problem's), got {x.dtype}")
        if x.dim() != self.ndim + 1 or tuple(x.shape[1:]) != tuple(self.shape):
            raise ValueError(
                f"{name} must have shape [S, {', '.join(map(str, self.shape))}] (a leading seed dimension), "
                f"got {tuple(x.shape)}"
            )
        return x

    # ------------------------------------------------------------------ the function
    def value(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def value_and_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.value(x), self.grad(x)

    def hvp(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Exact Hessian-vector product :math:`\\nabla^2 f(x)\\,v`, per row (double back-propagation)."""
        self.check_point(x)
        self.check_point(v, "v")
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self.value(xg).sum(), xg, create_graph=True)
            (hv,) = torch.autograd.grad((g * v).sum(), xg)
        return hv.detach()

    def curvature(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The Rayleigh quotient :math:`v^\\top \\nabla^2 f(x) v / \\|v\\|^2`, per row."""
        hv = self.hvp(x, v)
        dims = tuple(range(1, v.dim()))
        return (hv * v).sum(dims) / (v * v).sum(dims)

    def sample_grad(self, x: torch.Tensor, streams, step: int, batch_size: int = 1) -> torch.Tensor:
        """The problem's stochastic oracle; the exact gradient unless the problem is a finite sum."""
        return self.grad(x)

    def in_domain(self, x: torch.Tensor) -> torch.Tensor:
        """Per row: whether ``x`` lies where the smoothness constant ``L`` holds (everywhere by default)."""
        self.check_point(x)
        return torch.ones(x.shape[0], dtype=torch.bool)

    # ------------------------------------------------------------------ starting points and constants
    def initial_points(self, streams, radius: float = 0.0) -> torch.Tensor:
        """``[S, *shape]`` starting points: ``x0`` for every seed, plus (``radius > 0``) a per-seed
        Gaussian perturbation of norm about ``radius`` drawn from the seed's stream (channel ``"x0"``)."""
        radius = check_nonnegative("radius", radius)
        x = self.x0.unsqueeze(0).expand(len(streams), *self.shape).clone()
        if radius > 0:
            z = streams.normal(0, "x0", self.shape, self.dtype)
            x = x + z * (radius / math.sqrt(max(self.dim, 1)))
        return x

    def delta(self, x0: torch.Tensor | None = None) -> torch.Tensor | float:
        """:math:`\\Delta = f(x_0) - f_{\\inf}` (per row for a batch, a float for the default ``x0``)."""
        if x0 is None:
            return float(self.value(self.x0.unsqueeze(0))[0]) - self.f_inf
        return self.value(self.check_point(x0, "x0")) - self.f_inf

    def constants(self) -> dict[str, Any]:
        """The known constants as plain numbers (JSON-friendly)."""
        return {
            "problem": self.name,
            "shape": list(self.shape),
            "dtype": str(self.dtype).replace("torch.", ""),
            "L": self.L,
            "f_inf": self.f_inf,
            "f_star": self.f_star,
            "delta": self.delta(),
            "domain": self.domain,
            "stochastic": self.stochastic,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={self.shape}, L={self.L:.6g}, f_inf={self.f_inf:.6g})"
