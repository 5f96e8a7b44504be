r"""AdaGrad-Norm (Streeter & McMahan 2010; Ward, Wu & Bottou 2019): one scalar step size, the
``k = d`` end of Subset-Norm (Nguyen & Nguyen, arXiv 2411.07120; docs/methods.md §1.1).

.. math::

   \begin{aligned}
   &\textbf{input: } \eta \text{ (lr)},\ b_0 \ge 0,\ \epsilon \ge 0,\ \lambda \text{ (weight decay)},
     \ \text{scope} \in \{\text{group}, \text{tensor}\} \\
   &\textbf{init: } b_0^2 \\
   &\textbf{for } t = 1, 2, \dots \\
   &\quad b_t^2 \leftarrow b_{t-1}^2 + \|g_t\|_2^2 \\
   &\quad x_t \leftarrow x_{t-1} - \eta\, \frac{g_t}{b_t + \epsilon} \\
   &\quad x_t \leftarrow x_t - \eta\lambda\, x_t \qquad \text{(decoupled, after the update)}
   \end{aligned}

``scope="group"`` (default, the theory's :math:`x \in \mathbb{R}^d`): :math:`\|g_t\|_2^2` is summed over
**every parameter of the group** that has a gradient this step, so a group holding the whole model
is AdaGrad-Norm on the model. The accumulator belongs to the group; each parameter's state keeps a
copy (``sum_sq``, shape ``[*batch, 1]``), and every copy is updated at every step. All parameters of
such a group must share their dtype and their ``batch_dims`` leading shape. ``scope="tensor"``:
one accumulator per parameter tensor (``adagrad_subset_norm`` with ``subset_size="norm"``).

``variant="paper"``: :math:`b_0 > 0` inside the square root, :math:`\epsilon = 0` (the placement
is an **unverified** reconstruction of the SN theory [U]); ``variant="official"``: :math:`b_0 = 0`,
:math:`\epsilon = 10^{-6}` after the square root (the authors' SN convention [C]; their code has no
AdaGrad-Norm of its own). Paper numbering: not verified.

Exact reduction (tested in float64 to round-off): with one parameter, ``adagrad_subset_norm`` with
one subset; with several parameters and ``scope="group"``, ``adagrad_norm`` on their concatenation.

Shapes: every shape is flattened (the norm is over all coordinates); zero-size tensors contribute
nothing; with ``batch_dims`` each independent problem has its own accumulator.

Defaults
--------
============ ============ ===========================================================
argument     default      source
============ ============ ===========================================================
lr           1e-2         ours (the theory has no default η)
scope        "group"      the theory (x is every parameter)
b0           paper: 1e-2  ours (the theory needs b0 > 0; its value is not given) [U]
             official: 0  authors' SN code
eps          paper: 0     the theory
             official:    authors' SN code, after the square root
             1e-6
weight_decay 0            authors' code (decoupled, after the update)
============ ============ ===========================================================
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch

from ._base import batch_shape
from .distributed import full_for
from ._foreach import add_scaled_, pick
from ._registry import register
from .subsets import (
    describe_param,
    divide_by_subsets,
    divide_by_subsets_foreach,
    subset_layout,
    subset_sum_of_squares,
    subset_sums_of_squares_foreach,
)
from .validation import check_choice
from .adagrad_subset_norm import AdagradFamily
from .weight_decay import decay_after, decay_after_foreach

__all__ = ["AdagradNorm", "adagrad_norm_group_update", "adagrad_norm_group_update_foreach", "SCOPES"]

SCOPES = ("group", "tensor")


def adagrad_norm_group_update(
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    sum_sq: torch.Tensor,
    *,
    lr: float,
    eps: float,
    weight_decay: float,
    batch_ndim: int,
) -> torch.Tensor:
    r"""One AdaGrad-Norm step on several tensors that form one vector :math:`x`; returns :math:`b_t^2`.

    ``sum_sq`` is :math:`b_{t-1}^2` with shape ``[*batch, 1]`` (not modified).
    """
    new_sum_sq = sum_sq.clone()
    layouts = [subset_layout(tuple(p.shape[batch_ndim:]), "norm") for p in params]
    for g, layout in zip(grads, layouts):
        if math.prod(layout.view):
            new_sum_sq.add_(subset_sum_of_squares(g, layout, batch_ndim))
    denom = new_sum_sq.sqrt().add_(eps)
    for p, g, layout in zip(params, grads, layouts):
        if not math.prod(layout.view):  # zero-size: nothing to update (its layout does not broadcast over batch dims)
            continue
        p.add_(divide_by_subsets(g, denom, layout, batch_ndim), alpha=-lr)
        decay_after(p, lr, weight_decay)
    return new_sum_sq


def adagrad_norm_group_update_foreach(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    sum_sq: torch.Tensor,
    *,
    lr: float,
    eps: float,
    weight_decay: float,
    batch_ndim: int,
) -> torch.Tensor:
    """:func:`adagrad_norm_group_update` with multi-tensor ops (the squares, the divisions, the updates); the
    per-tensor sums are added to :math:`b^2` in the same order."""
    new_sum_sq = sum_sq.clone()
    layouts = [subset_layout(tuple(p.shape[batch_ndim:]), "norm") for p in params]
    nonempty = [i for i, layout in enumerate(layouts) if math.prod(layout.view)]
    grads, layouts, params = pick(grads, nonempty), pick(layouts, nonempty), pick(params, nonempty)
    for sums in subset_sums_of_squares_foreach(grads, layouts, batch_ndim):
        new_sum_sq.add_(sums)
    if not params:  # only zero-size tensors: nothing to update
        return new_sum_sq
    denom = new_sum_sq.sqrt().add_(eps)
    add_scaled_(params, divide_by_subsets_foreach(grads, [denom] * len(grads), layouts, batch_ndim), -lr)
    decay_after_foreach(params, lr, weight_decay)
    return new_sum_sq


@register("adagrad_norm")
class AdagradNorm(AdagradFamily):
    __doc__ = __doc__

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        *,
        scope: str = "group",
        b0: float | None = None,
        eps: float | None = None,
        weight_decay: float = 0.0,
        variant: str = "paper",
        seed: int = 0,
        nonfinite: str = "raise",
        batch_dims: int = 0,
        fast: bool | str = False,
    ) -> None:
        defaults = dict(lr=lr, scope=scope, b0=b0, eps=eps, weight_decay=weight_decay, variant=variant)
        super().__init__(params, defaults, seed=seed, nonfinite=nonfinite, batch_dims=batch_dims, fast=fast)

    def _subset_rule(self, group: dict[str, Any]) -> str:
        return "norm"

    def _validate_group(self, group: dict[str, Any]) -> None:
        super()._validate_group(group)
        check_choice("scope", group["scope"], SCOPES)
        if group["scope"] == "group":
            self._check_group_is_one_vector(group)

    def _check_group_is_one_vector(self, group: dict[str, Any]) -> None:
        params = group["params"]
        if not params:
            return
        dtype, batch = params[0].dtype, batch_shape(params[0], group)[0]
        for index, p in enumerate(params):
            if p.dtype != dtype or batch_shape(p, group)[0] != batch:
                raise ValueError(
                    f"scope='group' needs one dtype and one batch shape per group: {describe_param(self, group, index)} "
                    f"has dtype {p.dtype} and batch shape {tuple(batch_shape(p, group)[0])}, the group's first parameter "
                    f"{dtype} and {tuple(batch)}; use scope='tensor' or separate groups"
                )

    def _step_group(self, group: dict[str, Any]) -> None:
        if group["scope"] == "tensor":
            super()._step_group(group)
            return
        self._step_whole_group(group, adagrad_norm_group_update)

    def _step_group_fast(self, group: dict[str, Any]) -> None:
        if group["scope"] == "tensor":
            super()._step_group_fast(group)
            return
        self._step_whole_group(group, self._kernel(adagrad_norm_group_update_foreach))

    def _step_whole_group(self, group: dict[str, Any], update) -> None:
        """``scope="group"``: one accumulator for every parameter of the group; ``update`` is
        :func:`adagrad_norm_group_update` or its multi-tensor twin."""
        active = [p for p in group["params"] if p.grad is not None]
        if not active:
            return
        holders = [p for p in group["params"] if "sum_sq" in self.state[p]]
        if holders:
            previous = self.state[holders[0]]["sum_sq"]
        else:
            batch, _ = batch_shape(active[0], group)
            b0 = self.resolved(group, "b0")
            previous = full_for(active[0], (*batch, 1), b0 * b0)
        new_sum_sq = update(
            active,
            [p.grad for p in active],
            previous,
            lr=float(group["lr"]),
            eps=self.resolved(group, "eps"),
            weight_decay=group["weight_decay"],
            batch_ndim=group["batch_dims"],
        )
        touched = {id(p) for p in active} | {id(p) for p in holders}
        for p in group["params"]:
            if id(p) not in touched:
                continue
            state = self.state[p]
            if p.grad is not None:
                state["step"] = state.get("step", torch.zeros((), dtype=torch.int64)) + 1
            state["sum_sq"] = new_sum_sq.clone()
