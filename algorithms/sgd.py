r"""SGD with optional heavy-ball or EMA momentum — the baseline every theorem is compared with.

.. math::

   \begin{aligned}
   &\textbf{input: } \eta \text{ (lr)},\ \mu \text{ (momentum)},\ \lambda \text{ (weight decay)},
     \ \text{type} \in \{\text{heavy\_ball}, \text{ema}\} \\
   &\textbf{for } t = 1, 2, \dots \\
   &\quad g_t \leftarrow \nabla f_t(x_{t-1}) + \lambda x_{t-1} \\
   &\quad \text{heavy\_ball: } b_t \leftarrow \begin{cases} g_1 & t = 1 \\
        \mu b_{t-1} + (1-\tau) g_t & t > 1 \end{cases}
        \qquad\text{(torch.optim.SGD, dampening } \tau\text{)}\\
   &\quad \text{ema: } b_t \leftarrow \mu b_{t-1} + (1-\mu) g_t,\ b_0 = 0,
        \quad \text{optionally } \hat b_t = b_t/(1-\mu^t) \\
   &\quad x_t \leftarrow x_{t-1} - \eta\, b_t \qquad (b_t = g_t \text{ when } \mu = 0)
   \end{aligned}

``momentum_type="ema"`` is the form Subspace-Momentum reduces to at full rank
(docs/methods.md §1.4): with ``momentum=β₁`` it is the EMA momentum SGD that ``subspace_momentum``
equals when the projector is the identity and never refreshed.

Defaults
--------
============== ========== ==========================================
argument       default    source
============== ========== ==========================================
lr             1e-3       ours (no paper default for a baseline)
momentum       0          torch.optim.SGD
momentum_type  heavy_ball torch.optim.SGD
dampening      0          torch.optim.SGD
weight_decay   0          torch.optim.SGD (coupled L2)
bias_correction False     ours (EMA only)
============== ========== ==========================================

Shapes: elementwise, so every shape (0-D to N-D, zero-size) is handled identically.

Fast path (``fast=``): :func:`sgd_update_foreach`, the same operations on lists of tensors.
"""

from __future__ import annotations

from typing import Any

import torch

from ._base import ReferenceOptimizer
from ._foreach import add_scaled_, advance_steps, buckets, pick
from ._registry import register
from .validation import check_beta, check_bool, check_choice, check_nonnegative, check_unit_interval

__all__ = ["SGD", "sgd_update", "sgd_update_foreach"]


def sgd_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    momentum_buffer: torch.Tensor | None,
    step: int,
    *,
    lr: float,
    momentum: float,
    momentum_type: str,
    dampening: float,
    weight_decay: float,
    bias_correction: bool,
) -> None:
    """One SGD step, in place on ``param`` and ``momentum_buffer`` (any leading batch dims)."""
    if weight_decay != 0:
        grad = grad.add(param, alpha=weight_decay)
    if momentum == 0:
        direction = grad
    elif momentum_type == "heavy_ball":
        if step == 1:
            momentum_buffer.copy_(grad)
        else:
            momentum_buffer.mul_(momentum).add_(grad, alpha=1 - dampening)
        direction = momentum_buffer
    else:  # ema
        momentum_buffer.mul_(momentum).add_(grad, alpha=1 - momentum)
        direction = momentum_buffer / (1 - momentum**step) if bias_correction else momentum_buffer
    param.add_(direction, alpha=-lr)


def sgd_update_foreach(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    momentum_buffers: list[torch.Tensor] | None,
    step: int,
    *,
    lr: float,
    momentum: float,
    momentum_type: str,
    dampening: float,
    weight_decay: float,
    bias_correction: bool,
) -> None:
    """:func:`sgd_update` on lists of tensors of one device and dtype that share ``step``, in place."""
    if weight_decay != 0:
        grads = torch._foreach_add(grads, params, alpha=weight_decay)
    if momentum == 0:
        directions = grads
    elif momentum_type == "heavy_ball":
        if step == 1:
            torch._foreach_copy_(momentum_buffers, grads)
        else:
            torch._foreach_mul_(momentum_buffers, momentum)
            torch._foreach_add_(momentum_buffers, grads, alpha=1 - dampening)
        directions = momentum_buffers
    else:  # ema
        torch._foreach_mul_(momentum_buffers, momentum)
        torch._foreach_add_(momentum_buffers, grads, alpha=1 - momentum)
        directions = torch._foreach_div(momentum_buffers, 1 - momentum**step) if bias_correction else momentum_buffers
    add_scaled_(params, directions, -lr)


@register("sgd")
class SGD(ReferenceOptimizer):
    __doc__ = __doc__
    paper = "Robbins & Monro (1951); Polyak (1964) heavy ball"
    variants = ("paper",)
    elementwise = True
    supports_complex = False
    has_fast_path = True

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        *,
        momentum_type: str = "heavy_ball",
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        bias_correction: bool = False,
        seed: int = 0,
        nonfinite: str = "raise",
        batch_dims: int = 0,
        fast: bool | str = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            momentum_type=momentum_type,
            dampening=dampening,
            weight_decay=weight_decay,
            bias_correction=bias_correction,
        )
        super().__init__(params, defaults, seed=seed, nonfinite=nonfinite, batch_dims=batch_dims, fast=fast)

    def _validate_group(self, group: dict[str, Any]) -> None:
        check_nonnegative("lr", group["lr"])
        check_beta("momentum", group["momentum"])
        check_choice("momentum_type", group["momentum_type"], ("heavy_ball", "ema"))
        check_unit_interval("dampening", group["dampening"])
        check_nonnegative("weight_decay", group["weight_decay"])
        check_bool("bias_correction", group["bias_correction"])

    def _init_state(self, p, group, state) -> None:
        if group["momentum"] != 0:
            state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _update_param(self, p, grad, state, group) -> None:
        state["step"] += 1
        buf = state.get("momentum_buffer")
        if group["momentum"] != 0 and buf is None:  # momentum switched on mid-run via the group
            buf = state["momentum_buffer"] = torch.zeros_like(p)
        sgd_update(
            p,
            grad,
            buf,
            int(state["step"]),
            lr=float(group["lr"]),
            momentum=group["momentum"],
            momentum_type=group["momentum_type"],
            dampening=group["dampening"],
            weight_decay=group["weight_decay"],
            bias_correction=group["bias_correction"],
        )

    def _step_group_fast(self, group) -> None:
        params, grads, states = self._active_params(group)
        steps = advance_steps(states)
        momentum = group["momentum"]
        if momentum != 0:
            for p, state in zip(params, states):
                if "momentum_buffer" not in state:  # momentum switched on mid-run via the group
                    state["momentum_buffer"] = torch.zeros_like(p)
        for idx in buckets(params, steps):
            self._kernel(sgd_update_foreach)(
                pick(params, idx),
                pick(grads, idx),
                [states[i]["momentum_buffer"] for i in idx] if momentum != 0 else None,
                steps[idx[0]],
                lr=float(group["lr"]),
                momentum=momentum,
                momentum_type=group["momentum_type"],
                dampening=group["dampening"],
                weight_decay=group["weight_decay"],
                bias_correction=group["bias_correction"],
            )
