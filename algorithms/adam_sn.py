r"""AdamSN: Adam with a Subset-Norm second moment (Nguyen & Nguyen, arXiv 2411.07120; the code's rule: docs/methods.md §1.3).

.. math::

   \begin{aligned}
   &\textbf{input: } \eta \text{ (lr)},\ (\beta_1, \beta_2),\ \epsilon,\ \lambda,
     \ \text{partition } \Psi_1 \cup \dots \cup \Psi_c \text{ (subset\_size)} \\
   &\textbf{for } t = 1, 2, \dots \\
   &\quad m_t \leftarrow \beta_1 m_{t-1} + (1-\beta_1) g_t
        \qquad (\text{no state, } m_t = g_t, \text{ when } \beta_1 = 0) \\
   &\quad v_{t,j} \leftarrow \begin{cases}
        \beta_2 v_{t-1,j} + (1-\beta_2) \|g_{t,\Psi_j}\|_2^2 & \beta_2 < 1 \\
        v_{t-1,j} + \|g_{t,\Psi_j}\|_2^2 & \beta_2 = 1 \ (\text{AdaGrad accumulation})
        \end{cases} \\
   &\quad c_1 = 1-\beta_1^t,\quad c_2 = 1-\beta_2^t \quad (c_1 = c_2 = 1 \text{ without bias correction}) \\
   &\quad \text{hf (official): } x_i \leftarrow x_i - \frac{\eta\sqrt{c_2}}{c_1}\,
        \frac{m_{t,i}}{\sqrt{v_{t,\psi(i)}} + \epsilon}
   \qquad
   \text{torch: } x_i \leftarrow x_i - \frac{\eta}{c_1}\,
        \frac{m_{t,i}}{\sqrt{v_{t,\psi(i)} / c_2} + \epsilon} \\
   &\quad x \leftarrow x - \eta\lambda\, x \qquad \text{(decoupled, after the update, scheduled lr)}
   \end{aligned}

The accumulator is an EMA of the per-subset **sum** of squares, so the denominator is
:math:`\sqrt{k}` times an RMS and per-coordinate steps are about :math:`1/\sqrt{k}` of Adam's (the
authors' README: use about 10× Adam's lr).

Variants (``variant="paper"|"official"``; each difference is also an explicit argument):

* ``eps_placement``: official ``"hf"``, ε added to the uncorrected :math:`\sqrt{v}` (``GenericOptim``
  [C]); paper ``"torch"``, ε after the bias-corrected :math:`\sqrt{\hat v}` (textbook Adam; the
  paper's own box is **unverified** [U]).
* β₂ = 1 with bias correction: official :math:`c_2 = 1 - 1^t = 0`, so the step is exactly **zero**
  and training silently stalls (docs/methods.md §1.7, item 2; reproduced, with a :class:`ZeroStepWarning`);
  paper: accumulation with :math:`c_2 = 1` (a sum needs no bias correction).

The authors' ``GenericOptim`` also switches the denominator off entirely when β₂ = 0 (its "sgd"
preset); that is not reproduced here (β₂ = 0 means :math:`v_t = \|g_{t,\Psi}\|^2` in both variants):
use ``sgd`` / ``subspace_momentum`` for an SGD step.

Paper numbering: the algorithm and equation numbers of arXiv 2411.07120 are **not verified** (the
paper body was not read); the update is the authors' code [C].

Exact reductions (tested in float64 to round-off): ``subset_size=1`` ≡ ``adam`` with the same
``eps_placement`` and ``weight_decay_timing="after"`` (official: Adam with the HF ε);
``betas[0]=0`` ≡ ``rmsprop_sn``; ``betas=(0, 1)``, ``bias_correction=False`` ≡
``adagrad_subset_norm(variant="official")`` with the same ε; ``subset_size=1``, ``betas[0]=0``,
no bias correction ≡ ``torch.optim.RMSprop``.

Subsets and shapes: ``subset_size`` follows :mod:`algorithms.subsets` (``"heuristics"``: slices
along the smaller dimension of a matrix; 0-D/1-D coordinate-wise; N-D viewed as
``shape[0] × prod(shape[1:])``; integers: row-major chunks whose size divides numel; zero-size
tensors are a no-op); with ``batch_dims`` the partition never crosses independent problems.
``subset_fallback`` handles integer rules that degrade to single coordinates.

Defaults
--------
================ ============ ===========================================================
argument         default      source
================ ============ ===========================================================
lr               1e-3         authors' code (``GenericOptim``); README: ~10× Adam's lr
betas            (0.9, 0.999) authors' code
eps              1e-6         authors' code (``GenericOptim``); the paper's value is not verified
weight_decay     0            authors' code
subset_size      -2           authors' code (CLI, ``adamw_sng``; their README says -1)
bias_correction  True         authors' code (``correct_bias=True`` for the adamw presets)
eps_placement    by variant   official: authors' code ("hf"); paper: textbook Adam ("torch") [U]
subset_fallback  "warn"       ours (the code degrades silently)
================ ============ ===========================================================
"""

from __future__ import annotations

import math
import warnings
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
from .validation import check_beta, check_bool, check_choice, check_nonnegative
from .weight_decay import decay_after, decay_after_foreach

__all__ = [
    "AdamSN",
    "adam_sn_update",
    "adam_sn_update_foreach",
    "sn_second_moment_update",
    "sn_adam_direction",
    "second_moment_correction",
    "validate_sn_adam_group",
    "ZeroStepWarning",
    "SN_VARIANT_DEFAULTS",
]

EPS_PLACEMENTS = ("torch", "hf")
#: the ε placement each variant resolves when ``eps_placement=None``
SN_VARIANT_DEFAULTS = {"paper": {"eps_placement": "torch"}, "official": {"eps_placement": "hf"}}


class ZeroStepWarning(UserWarning):
    """``variant="official"`` with β₂ = 1 and bias correction: the authors' code takes zero steps."""


def second_moment_correction(beta2: float, step: int, enabled: bool, variant: str) -> float:
    """:math:`c_2`: ``1 - β2^t``; 1 without bias correction; for β₂ = 1, 1 (paper) or 0 (official)."""
    if not enabled:
        return 1.0
    if beta2 == 1.0:
        return 0.0 if variant == "official" else 1.0
    return 1.0 - beta2**step


def sn_second_moment_update(exp_avg_sq: torch.Tensor, grad: torch.Tensor, layout: SubsetLayout, beta2: float, batch_ndim: int) -> None:
    """EMA (β₂ < 1) or accumulation (β₂ = 1) of the per-subset sum of squares, in place."""
    sum_sq = subset_sum_of_squares(grad, layout, batch_ndim)
    if beta2 < 1:
        exp_avg_sq.mul_(beta2).add_(sum_sq, alpha=1 - beta2)
    else:
        exp_avg_sq.add_(sum_sq)


def sn_adam_direction(
    numerator: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    layout: SubsetLayout,
    *,
    c1: float,
    c2: float,
    eps: float,
    eps_placement: str,
    batch_ndim: int,
) -> torch.Tensor:
    """The step :math:`u` with ``x ← x − lr·u``: ``numerator`` over the per-subset denominator, bias corrections folded in."""
    if c2 == 0.0:  # official β2 = 1 with bias correction: sqrt(c2) = 0, the code's step is exactly zero
        return torch.zeros_like(numerator)
    if eps_placement == "torch":
        denom = (exp_avg_sq.sqrt() / math.sqrt(c2)).add_(eps)
        return divide_by_subsets(numerator, denom, layout, batch_ndim) / c1
    denom = exp_avg_sq.sqrt().add_(eps)
    return divide_by_subsets(numerator, denom, layout, batch_ndim) * (math.sqrt(c2) / c1)


def adam_sn_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    exp_avg: torch.Tensor | None,
    exp_avg_sq: torch.Tensor,
    layout: SubsetLayout,
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    eps_placement: str,
    bias_correction: bool,
    variant: str,
    batch_ndim: int,
) -> None:
    """One AdamSN step, in place (``exp_avg`` is ``None`` when β₁ = 0)."""
    if beta1 != 0:
        exp_avg.lerp_(grad, 1 - beta1)
        numerator = exp_avg
    else:
        numerator = grad
    sn_second_moment_update(exp_avg_sq, grad, layout, beta2, batch_ndim)
    c1 = 1.0 - beta1**step if bias_correction else 1.0
    c2 = second_moment_correction(beta2, step, bias_correction, variant)
    direction = sn_adam_direction(numerator, exp_avg_sq, layout, c1=c1, c2=c2, eps=eps,
                                  eps_placement=eps_placement, batch_ndim=batch_ndim)
    param.add_(direction, alpha=-lr)
    decay_after(param, lr, weight_decay)


def adam_sn_update_foreach(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor] | None,
    exp_avg_sqs: list[torch.Tensor],
    layouts: list[SubsetLayout],
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    eps_placement: str,
    bias_correction: bool,
    variant: str,
    batch_ndim: int,
) -> None:
    """:func:`adam_sn_update` on lists of tensors of one device and dtype that share ``step``, in place."""
    if beta1 != 0:
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        numerators = exp_avgs
    else:
        numerators = grads
    sums = subset_sums_of_squares_foreach(grads, layouts, batch_ndim)
    if beta2 < 1:
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_add_(exp_avg_sqs, sums, alpha=1 - beta2)
    else:
        torch._foreach_add_(exp_avg_sqs, sums)
    c1 = 1.0 - beta1**step if bias_correction else 1.0
    c2 = second_moment_correction(beta2, step, bias_correction, variant)
    if c2 == 0.0:  # official β2 = 1 with bias correction: the code's step is exactly zero
        directions = [torch.zeros_like(x) for x in numerators]
    elif eps_placement == "torch":
        denominators = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denominators, math.sqrt(c2))
        torch._foreach_add_(denominators, eps)
        directions = divide_by_subsets_foreach(numerators, denominators, layouts, batch_ndim)
        torch._foreach_div_(directions, c1)
    else:
        denominators = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_add_(denominators, eps)
        directions = divide_by_subsets_foreach(numerators, denominators, layouts, batch_ndim)
        torch._foreach_mul_(directions, math.sqrt(c2) / c1)
    add_scaled_(params, directions, -lr)
    decay_after_foreach(params, lr, weight_decay)


def validate_sn_adam_group(group: dict[str, Any], betas: tuple[float, float]) -> None:
    """Validate the hyperparameters shared by the SN-Adam family (``betas`` already extracted)."""
    check_nonnegative("lr", group["lr"])
    check_nonnegative("eps", group["eps"])
    check_nonnegative("weight_decay", group["weight_decay"])
    check_bool("bias_correction", group["bias_correction"])
    if group["eps_placement"] is not None:
        check_choice("eps_placement", group["eps_placement"], EPS_PLACEMENTS)
    check_subset_size(group["subset_size"])
    check_choice("subset_fallback", group["subset_fallback"], SUBSET_FALLBACKS)
    if betas[1] == 1.0 and group["bias_correction"] and group["variant"] == "official":
        warnings.warn(
            "variant='official' with betas[1]=1 and bias_correction=True reproduces the authors' GenericOptim, whose "
            "step is exactly zero (sqrt(1 - 1**t) = 0; docs/methods.md §1.7, item 2); pass bias_correction=False for AdaGrad",
            ZeroStepWarning,
            stacklevel=3,
        )


def check_betas(betas: Any) -> tuple[float, float]:
    """β₁ in [0, 1), β₂ in [0, 1] (β₂ = 1: AdaGrad accumulation)."""
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    return check_beta("betas[0]", betas[0]), check_beta("betas[1]", betas[1], allow_one=True)


@register("adam_sn")
class AdamSN(ReferenceOptimizer):
    __doc__ = __doc__
    paper = PAPER
    paper_routing = SN_ROUTING
    variants = ("paper", "official")
    VARIANT_DEFAULTS = SN_VARIANT_DEFAULTS
    has_fast_path = True

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        *,
        subset_size: int | str = -2,
        bias_correction: bool = True,
        eps_placement: str | None = None,
        subset_fallback: str = "warn",
        variant: str = "paper",
        seed: int = 0,
        nonfinite: str = "raise",
        batch_dims: int = 0,
        fast: bool | str = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            betas=tuple(betas) if isinstance(betas, (tuple, list)) else betas,
            eps=eps,
            weight_decay=weight_decay,
            subset_size=subset_size,
            bias_correction=bias_correction,
            eps_placement=eps_placement,
            subset_fallback=subset_fallback,
            variant=variant,
        )
        super().__init__(params, defaults, seed=seed, nonfinite=nonfinite, batch_dims=batch_dims, fast=fast)

    # ---------------------------------------------------------------- hooks (rmsprop_sn overrides)
    def _betas(self, group: dict[str, Any]) -> tuple[float, float]:
        return check_betas(group["betas"])

    def _validate_group(self, group: dict[str, Any]) -> None:
        check_choice("variant", group["variant"], self.variants)
        validate_sn_adam_group(group, self._betas(group))
        apply_fallback_policy(self, group, group["subset_size"], group["subset_fallback"])

    # ---------------------------------------------------------------- per-parameter step
    def _init_state(self, p, group, state) -> None:
        batch, _ = batch_shape(p, group)
        layout = param_layout(p, group["batch_dims"], group["subset_size"])
        if self._betas(group)[0] != 0:
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = full_for(p, (*batch, *layout.state_shape))

    def _update_param(self, p, grad, state, group) -> None:
        state["step"] += 1
        beta1, beta2 = self._betas(group)
        if beta1 != 0 and "exp_avg" not in state:  # momentum switched on mid-run through the group
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        placement = self.resolved(group, "eps_placement")
        adam_sn_update(
            p,
            grad,
            state.get("exp_avg"),
            state["exp_avg_sq"],
            param_layout(p, group["batch_dims"], group["subset_size"]),
            int(state["step"]),
            lr=float(group["lr"]),
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            eps_placement=placement,
            bias_correction=group["bias_correction"],
            variant=group["variant"],
            batch_ndim=group["batch_dims"],
        )

    def _step_group_fast(self, group) -> None:
        params, grads, states = self._active_params(group)
        steps = advance_steps(states)
        beta1, beta2 = self._betas(group)
        if beta1 != 0:
            for p, state in zip(params, states):
                if "exp_avg" not in state:  # momentum switched on mid-run through the group
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        layouts = [param_layout(p, group["batch_dims"], group["subset_size"]) for p in params]
        for idx in buckets(params, steps):
            self._kernel(adam_sn_update_foreach)(
                pick(params, idx),
                pick(grads, idx),
                [states[i]["exp_avg"] for i in idx] if beta1 != 0 else None,
                [states[i]["exp_avg_sq"] for i in idx],
                pick(layouts, idx),
                steps[idx[0]],
                lr=float(group["lr"]),
                beta1=beta1,
                beta2=beta2,
                eps=group["eps"],
                weight_decay=group["weight_decay"],
                eps_placement=self.resolved(group, "eps_placement"),
                bias_correction=group["bias_correction"],
                variant=group["variant"],
                batch_ndim=group["batch_dims"],
            )
