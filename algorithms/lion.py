r"""Lion (Chen et al., "Symbolic Discovery of Optimization Algorithms", NeurIPS 2023, arXiv 2302.06675,
Algorithm 2: Lion with decoupled weight decay).

.. math::

   \begin{aligned}
   &\textbf{input: } \eta_t,\ \beta_1,\ \beta_2,\ \lambda; \quad m_0 = 0 \\
   &\textbf{for } t = 1, 2, \dots \\
   &\quad g_t = \nabla f(x_{t-1}) \\
   &\quad c_t = \beta_1 m_{t-1} + (1-\beta_1) g_t \\
   &\quad x_t = x_{t-1} - \eta_t \bigl( \operatorname{sign}(c_t) + \lambda x_{t-1} \bigr) \\
   &\quad m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t
   \end{aligned}

:math:`\operatorname{sign}(0) = 0` (torch semantics; the paper does not discuss it). The decay term
uses the pre-update :math:`x_{t-1}` and is scaled by :math:`\eta_t` (Algorithm 2), i.e.
:math:`x \leftarrow (1-\eta\lambda)x - \eta\,\mathrm{sign}(c)`, as in the authors' ``lion_pytorch.py``.

Reductions: Lion(β1, β2) ≡ approx MARS-Lion with β = β2, γ = (β2−β1)/β2, no clipping and the
official first step (MARS §3.2.2, eqs. 3.18–3.19; docs/methods.md §2.5) — tested in float64. β1 = β2 makes
Lion signSGD on an EMA (Signum with decoupled decay).

Defaults
--------
============= ============ ===============================================================
argument      default      source
============= ============ ===============================================================
lr            1e-4         authors' code (google/automl ``lion/lion_pytorch.py``)
betas         (0.9, 0.99)  authors' code (also the paper's stated default; section not re-read)
weight_decay  0            authors' code
============= ============ ===============================================================

Variants: only ``"paper"`` (the authors' code is the same algorithm).

Shapes: elementwise, so every shape (0-D to N-D, zero-size) is handled identically and any
leading ``batch_dims`` are independent problems trivially.

Fast path (``fast=``): :func:`lion_update_foreach`, the same operations on lists of tensors.
"""

from __future__ import annotations

from typing import Any

import torch

from ._base import ReferenceOptimizer
from ._foreach import add_scaled_, advance_steps, buckets, pick
from ._registry import register
from .validation import check_beta, check_nonnegative
from .weight_decay import decay_before, decay_before_foreach

__all__ = ["Lion", "lion_update", "sign_descent_step", "lion_update_foreach", "sign_descent_step_foreach"]


def sign_descent_step(param: torch.Tensor, direction: torch.Tensor, *, lr: float, weight_decay: float) -> None:
    """:math:`x \\leftarrow x - \\eta(\\operatorname{sign}(d) + \\lambda x)`, in place (shared with MARS-Lion)."""
    decay_before(param, lr, weight_decay)
    param.add_(direction.sign(), alpha=-lr)


def lion_update(
    param: torch.Tensor, grad: torch.Tensor, exp_avg: torch.Tensor, *, lr: float, beta1: float, beta2: float,
    weight_decay: float,
) -> None:
    """One Lion step (Algorithm 2), in place on ``param`` and ``exp_avg``."""
    interpolation = exp_avg.lerp(grad, 1 - beta1)
    sign_descent_step(param, interpolation, lr=lr, weight_decay=weight_decay)
    exp_avg.lerp_(grad, 1 - beta2)


def sign_descent_step_foreach(params: list[torch.Tensor], directions: list[torch.Tensor], *, lr: float,
                              weight_decay: float) -> None:
    """:func:`sign_descent_step` on lists of tensors (shared with MARS-Lion's fast path)."""
    decay_before_foreach(params, lr, weight_decay)
    add_scaled_(params, torch._foreach_sign(directions), -lr)


def lion_update_foreach(
    params: list[torch.Tensor], grads: list[torch.Tensor], exp_avgs: list[torch.Tensor], *, lr: float, beta1: float,
    beta2: float, weight_decay: float,
) -> None:
    """:func:`lion_update` on lists of tensors of one device and dtype, in place."""
    interpolations = torch._foreach_lerp(exp_avgs, grads, 1 - beta1)
    sign_descent_step_foreach(params, interpolations, lr=lr, weight_decay=weight_decay)
    torch._foreach_lerp_(exp_avgs, grads, 1 - beta2)


@register("lion")
class Lion(ReferenceOptimizer):
    __doc__ = __doc__
    paper = "Chen et al., NeurIPS 2023, arXiv 2302.06675 (Algorithm 2)"
    variants = ("paper",)
    elementwise = True
    has_fast_path = True

    def __init__(
        self,
        params,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        *,
        seed: int = 0,
        nonfinite: str = "raise",
        batch_dims: int = 0,
        fast: bool | str = False,
    ) -> None:
        defaults = dict(lr=lr, betas=tuple(betas) if isinstance(betas, (tuple, list)) else betas, weight_decay=weight_decay)
        super().__init__(params, defaults, seed=seed, nonfinite=nonfinite, batch_dims=batch_dims, fast=fast)

    def _validate_group(self, group: dict[str, Any]) -> None:
        check_nonnegative("lr", group["lr"])
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        check_beta("betas[0]", betas[0])
        check_beta("betas[1]", betas[1])
        check_nonnegative("weight_decay", group["weight_decay"])

    def _init_state(self, p, group, state) -> None:
        state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _update_param(self, p, grad, state, group) -> None:
        state["step"] += 1
        beta1, beta2 = group["betas"]
        lion_update(p, grad, state["exp_avg"], lr=float(group["lr"]), beta1=beta1, beta2=beta2,
                    weight_decay=group["weight_decay"])

    def _step_group_fast(self, group) -> None:
        params, grads, states = self._active_params(group)
        advance_steps(states)
        beta1, beta2 = group["betas"]
        for idx in buckets(params):
            self._kernel(lion_update_foreach)(pick(params, idx), pick(grads, idx), [states[i]["exp_avg"] for i in idx],
                                lr=float(group["lr"]), beta1=beta1, beta2=beta2, weight_decay=group["weight_decay"])
