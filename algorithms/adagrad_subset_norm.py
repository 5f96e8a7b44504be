r"""AdaGrad-Subset-Norm (Nguyen & Nguyen, arXiv 2411.07120, ICML 2025; docs/methods.md §1.1–1.2).

.. math::

   \begin{aligned}
   &\textbf{input: } \eta \text{ (lr)},\ \text{partition } [d] = \Psi_1 \cup \dots \cup \Psi_c
     \text{ (subset\_size)},\ b_0 \ge 0,\ \epsilon \ge 0,\ \lambda \text{ (weight decay)} \\
   &\textbf{init: } b_{0,j}^2 = b_0^2 \quad (j = 1, \dots, c) \\
   &\textbf{for } t = 1, 2, \dots \\
   &\quad b_{t,j}^2 \leftarrow b_{t-1,j}^2 + \textstyle\sum_{i \in \Psi_j} g_{t,i}^2
        \qquad \text{(a sum of squares, not a mean)} \\
   &\quad x_{t,i} \leftarrow x_{t-1,i} - \eta\, \frac{g_{t,i}}{b_{t,\psi(i)} + \epsilon}
        \qquad (\psi(i) = \text{the subset holding } i) \\
   &\quad x_t \leftarrow x_t - \eta\lambda\, x_t \qquad \text{(decoupled, after the update, as the authors' code)}
   \end{aligned}

``variant="paper"`` (the theory, docs/methods.md §1.1): :math:`b_0 > 0` sits **inside** the square root
and :math:`\epsilon = 0`. That placement of :math:`b_0` is an **unverified** reconstruction [U] (the
paper body was not read); it is why ``b0`` is an explicit argument. ``variant="official"`` (the
authors' ``GenericOptim`` with ``betas=(0, 1)``, ``correct_bias=False`` [C]): :math:`b_0 = 0` and
:math:`\epsilon = 10^{-6}` added **after** the square root. The variant only picks the defaults of
``b0`` and ``eps``; both formulas are the one above.

The authors' CLI preset "adagrad" keeps EMA momentum (``--beta1`` defaults to 0.9) on top of this
(docs/methods.md §1.7, item 3); that optimizer is ``adam_sn`` with ``betas=(0.9, 1.0)``,
``bias_correction=False``, ``variant="official"``. Pass ``--beta1 0`` to the code to get this one.

Paper numbering: the algorithm and equation numbers of arXiv 2411.07120 are **not verified** (the
paper body was not read); the update is the one of the authors' figure [F] and code [C].

Exact reductions (tested in float64 to round-off): ``subset_size=1`` ≡ ``adagrad_coordinate`` ≡
``torch.optim.Adagrad(lr, initial_accumulator_value=b0**2, eps=eps)``; one subset
(``subset_size="norm"``, or any integer ≥ numel) ≡ ``adagrad_norm(scope="tensor")``.

Subsets and shapes: ``subset_size`` follows :mod:`algorithms.subsets` (``"heuristics"`` = slices
along the smaller dimension of a matrix; positive/negative integers = row-major contiguous chunks
whose size is a divisor of numel; 0-D/1-D under ``"heuristics"`` are coordinate-wise; N-D under
``"heuristics"`` is viewed as ``shape[0] × prod(shape[1:])``; zero-size tensors are a no-op). With
``batch_dims=B`` the partition is applied to each of the independent problems separately.
``subset_fallback`` ("warn" | "raise" | "allow") says what happens when an integer rule degrades to
single coordinates (prime numel).

Defaults
--------
================= ============ =============================================================
argument          default      source
================= ============ =============================================================
lr                1e-2         ours (torch.optim.Adagrad's default; the theory has no default η)
subset_size       -2           authors' code (CLI and ``adamw_sng``; their README says -1)
b0                paper: 1e-2  ours (the theory needs b0 > 0; its value is not given) [U]
                  official: 0  authors' code (no b0)
eps               paper: 0     the theory (no ε)
                  official:    authors' code (``GenericOptim``), after the square root
                  1e-6
weight_decay      0            authors' code
subset_fallback   "warn"       ours (the code degrades silently)
================= ============ =============================================================
"""

from __future__ import annotations

from typing import Any

import torch

from ._base import ReferenceOptimizer, batch_shape
from .distributed import full_for
from ._foreach import add_scaled_, advance_steps, buckets, pick
from ._registry import register
from .subsets import (
    PAPER,
    SN_ROUTING,
    SUBSET_FALLBACKS,
    SubsetLayout,
    apply_fallback_policy,
    check_subset_size,
    divide_by_subsets,
    divide_by_subsets_foreach,
    param_layout,
    subset_sum_of_squares,
    subset_sums_of_squares_foreach,
)
from .validation import check_choice, check_nonnegative
from .weight_decay import decay_after, decay_after_foreach

__all__ = ["AdagradSubsetNorm", "AdagradFamily", "adagrad_subset_norm_update", "adagrad_subset_norm_update_foreach"]


def adagrad_subset_norm_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    sum_sq: torch.Tensor,
    layout: SubsetLayout,
    *,
    lr: float,
    eps: float,
    weight_decay: float,
    batch_ndim: int,
) -> None:
    r"""One AdaGrad-Subset-Norm step, in place on ``param`` and ``sum_sq`` (:math:`b_{t,j}^2`, started at :math:`b_0^2`)."""
    sum_sq.add_(subset_sum_of_squares(grad, layout, batch_ndim))
    denom = sum_sq.sqrt().add_(eps)
    param.add_(divide_by_subsets(grad, denom, layout, batch_ndim), alpha=-lr)
    decay_after(param, lr, weight_decay)


def adagrad_subset_norm_update_foreach(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    sum_sqs: list[torch.Tensor],
    layouts: list[SubsetLayout],
    *,
    lr: float,
    eps: float,
    weight_decay: float,
    batch_ndim: int,
) -> None:
    """:func:`adagrad_subset_norm_update` on lists of tensors of one device and dtype, in place."""
    torch._foreach_add_(sum_sqs, subset_sums_of_squares_foreach(grads, layouts, batch_ndim))
    denominators = torch._foreach_sqrt(sum_sqs)
    torch._foreach_add_(denominators, eps)
    add_scaled_(params, divide_by_subsets_foreach(grads, denominators, layouts, batch_ndim), -lr)
    decay_after_foreach(params, lr, weight_decay)


class AdagradFamily(ReferenceOptimizer):
    """Shared bookkeeping of ``adagrad_subset_norm`` / ``adagrad_coordinate`` / ``adagrad_norm``."""

    paper = PAPER
    variants = ("paper", "official")
    VARIANT_DEFAULTS = {"paper": {"b0": 1e-2, "eps": 0.0}, "official": {"b0": 0.0, "eps": 1e-6}}
    has_fast_path = True

    def __init__(self, params, defaults: dict[str, Any], *, seed: int, nonfinite: str, batch_dims: int,
                 fast: bool | str = False) -> None:
        super().__init__(params, defaults, seed=seed, nonfinite=nonfinite, batch_dims=batch_dims, fast=fast)

    # ---------------------------------------------------------------- hooks for the subclasses
    def _subset_rule(self, group: dict[str, Any]) -> int | str:
        return group["subset_size"]

    # ---------------------------------------------------------------- validation
    def _validate_group(self, group: dict[str, Any]) -> None:
        check_nonnegative("lr", group["lr"])
        check_choice("variant", group["variant"], self.variants)
        for key in ("b0", "eps"):
            if group[key] is not None:
                check_nonnegative(key, group[key])
        check_nonnegative("weight_decay", group["weight_decay"])
        if self.resolved(group, "b0") == 0 and self.resolved(group, "eps") == 0:
            raise ValueError("b0 and eps must not both be 0 (a zero gradient subset would divide 0 by 0); "
                             "the theory uses b0 > 0, the authors' code eps > 0")
        if "subset_size" in group:
            check_subset_size(group["subset_size"])
        if "subset_fallback" in group:
            check_choice("subset_fallback", group["subset_fallback"], SUBSET_FALLBACKS)
        # at construction, so a "raise" never leaves a step half done
        apply_fallback_policy(self, group, self._subset_rule(group), group.get("subset_fallback", "warn"))

    # ---------------------------------------------------------------- per-parameter step
    def _layout(self, p: torch.Tensor, group: dict[str, Any]) -> SubsetLayout:
        return param_layout(p, group["batch_dims"], self._subset_rule(group))

    def _init_state(self, p, group, state) -> None:
        batch, _ = batch_shape(p, group)
        layout = self._layout(p, group)
        b0 = self.resolved(group, "b0")
        state["sum_sq"] = full_for(p, (*batch, *layout.state_shape), b0 * b0)

    def _update_param(self, p, grad, state, group) -> None:
        state["step"] += 1
        adagrad_subset_norm_update(
            p,
            grad,
            state["sum_sq"],
            self._layout(p, group),
            lr=float(group["lr"]),
            eps=self.resolved(group, "eps"),
            weight_decay=group["weight_decay"],
            batch_ndim=group["batch_dims"],
        )

    def _step_group_fast(self, group: dict[str, Any]) -> None:
        params, grads, states = self._active_params(group)
        advance_steps(states)
        layouts = [self._layout(p, group) for p in params]
        for idx in buckets(params):
            self._kernel(adagrad_subset_norm_update_foreach)(
                pick(params, idx),
                pick(grads, idx),
                [states[i]["sum_sq"] for i in idx],
                pick(layouts, idx),
                lr=float(group["lr"]),
                eps=self.resolved(group, "eps"),
                weight_decay=group["weight_decay"],
                batch_ndim=group["batch_dims"],
            )


@register("adagrad_subset_norm")
class AdagradSubsetNorm(AdagradFamily):
    __doc__ = __doc__
    paper_routing = SN_ROUTING

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        subset_size: int | str = -2,
        *,
        b0: float | None = None,
        eps: float | None = None,
        weight_decay: float = 0.0,
        subset_fallback: str = "warn",
        variant: str = "paper",
        seed: int = 0,
        nonfinite: str = "raise",
        batch_dims: int = 0,
        fast: bool | str = False,
    ) -> None:
        defaults = dict(lr=lr, subset_size=subset_size, b0=b0, eps=eps, weight_decay=weight_decay,
                        subset_fallback=subset_fallback, variant=variant)
        super().__init__(params, defaults, seed=seed, nonfinite=nonfinite, batch_dims=batch_dims, fast=fast)

