r"""AdamSNSM: Subspace-Momentum numerator over a Subset-Norm denominator, the optimizer of the
LLaMA runs (Nguyen & Nguyen, arXiv 2411.07120, ICML 2025; docs/methods.md §1.5; the authors'
``GenericOptim(momentum_type="sm", second_moment_type="sn")``).

.. math::

   \begin{aligned}
   &\textbf{input: } \eta,\ (\beta_1, \beta_2),\ \epsilon,\ \lambda,\ r,\ T,\ \text{proj\_type},
     \ \text{partition } \Psi \text{ (subset\_size)} \\
   &\textbf{for } t = 1, 2, \dots \quad \text{(a projected matrix } W \in \mathbb{R}^{m \times n}\text{)} \\
   &\quad \textbf{if } t = 1 \text{ or } t \equiv 0 \pmod T:\ P_t \leftarrow \text{basis}(G_t)
          \text{ and apply the refresh rule to } m \\
   &\quad m_t \leftarrow \beta_1 m_{t-1} + (1-\beta_1) P_t G_t, \qquad
          R_t = (I - P_t^\top P_t)\, G_t \\
   &\quad v_{t,j} \leftarrow \beta_2 v_{t-1,j} + (1-\beta_2) \|G_{t,\Psi_j}\|_2^2
          \quad (\text{accumulation when } \beta_2 = 1) \\
   &\quad c_1 = 1-\beta_1^t,\ c_2 = 1-\beta_2^t \quad (1 \text{ without bias correction}) \\
   &\quad \text{official: } W \leftarrow W - \frac{\eta\sqrt{c_2}}{c_1}\,
          \frac{P_t^\top m_t + R_t}{\sqrt{v_{t,\psi}} + \epsilon}
   \qquad
   \text{paper: } W \leftarrow W - \eta\,
          \frac{P_t^\top m_t / c_1 + R_t}{\sqrt{v_{t,\psi} / c_2} + \epsilon} \\
   &\quad W \leftarrow W - \eta\lambda\, W \qquad \text{(decoupled, after the update)}
   \end{aligned}

The SN denominator is taken from the **full** gradient :math:`G_t` (the authors' code).
Projections, refresh rules and the per-variant SVD conventions are those of
:mod:`algorithms.subspace_momentum`; subset rules those of :mod:`algorithms.subsets`; the
numerator / denominator functions are written once there and in :mod:`algorithms.adam_sn`.

Routing: a parameter gets SN + SM when its group has ``lowrank=True`` (the default) and its problem
shape is a non-empty matrix; every other parameter (embeddings and norms put in a
``lowrank=False`` group, and 0-D, 1-D, N-D or zero-size tensors) takes plain Adam with the same
conventions (the authors' code: full EMA momentum and a coordinate-wise second moment, HF ε,
weight decay after the update). The class declares the paper's split (``paper_routing``, applied by
:func:`algorithms.grouping.paper_param_groups`):
every ``nn.Linear`` weight, **including** ``lm_head``, gets SN + SM; everything else Adam.

Variants (``variant="paper"|"official"``; each item is also an explicit argument):

==================== ===================================== =========================================
item                 ``"official"`` (authors' code [C])     ``"paper"``
==================== ===================================== =========================================
``eps_placement``    ``"hf"``                               ``"torch"`` [U]
``correct_sgd_part`` True: :math:`1/c_1` scales            False: only the momentum part is bias
                     :math:`R_t` too (×10 at t = 1 for      corrected [U]
                     β₁ = 0.9; docs/methods.md §1.7, item 5)
``refresh``          ``"official"`` (stale basis, bug 1)    ``"reset"`` [U]
β₂ = 1 with bias     zero step (bug 2; warned)              accumulation with :math:`c_2 = 1`
correction
``rank_overflow``    ``"truncate"``                         ``"raise"``
SVD                  float32, cast back; LAPACK signs       parameter dtype; pinned signs
==================== ===================================== =========================================

With β₁ = 0 the momentum is off and no basis is built: the numerator is :math:`G_t` (the code).

Paper numbering: the algorithm and equation numbers of arXiv 2411.07120 are **not verified** (the
paper body was not read); the update is the authors' code [C].

Exact reductions (tested in float64 to round-off): ``rank=0`` with ``correct_sgd_part=False`` ≡
``adam_sn`` with ``betas=(0, β₂)`` (with the official ``correct_sgd_part=True`` the SGD numerator
is also divided by :math:`c_1`, as in the code); full rank without refresh ≡ ``adam_sn`` of the same
variant; ``betas[0]=0`` ≡ ``rmsprop_sn`` with the same bias correction; the dense path ≡ ``adam``
with the same ``eps_placement`` and ``weight_decay_timing="after"``.

State of a projected ``m × n`` matrix (m ≥ n, svd, ``"heuristics"``): ``exp_avg`` ``m × r``,
``basis`` ``n × r``, ``exp_avg_sq`` ``m × 1`` (docs/memory.md §1: :math:`r(M + \mu) + M`).

Defaults
--------
================ ============ ============================================================
argument         default      source
================ ============ ============================================================
lr               1e-3         authors' code (examples.sh uses 5e-2 on LLaMA-60M)
betas            (0.9, 0.999) authors' code
eps              1e-6         authors' code
weight_decay     0            authors' code
subset_size      "heuristics" authors' examples.sh (the CLI default is -2)
rank             128          authors' code
proj_type        "svd"        authors' code
update_proj_gap  200          authors' code (examples.sh effectively uses 100)
bias_correction  True         authors' code (adamw preset)
eps_placement    by variant   official: "hf"; paper: "torch" [U]
correct_sgd_part by variant   official: True; paper: False [U]
refresh          by variant   official: "official"; paper: "reset" [U]
rank_overflow    by variant   official: "truncate"; paper: "raise"
proj_side        None         the code's rule per proj_type
subset_fallback  "warn"       ours
================ ============ ============================================================
"""

from __future__ import annotations

from typing import Any

import torch

from ._base import ReferenceOptimizer, batch_shape
from .distributed import full_for
from ._lowrank import uses_projection
from ._registry import register
from .subsets import PAPER, ROUTING_SOURCE, apply_fallback_policy, param_layout
from .adam_sn import (
    SN_VARIANT_DEFAULTS,
    adam_sn_update,
    check_betas,
    second_moment_correction,
    sn_adam_direction,
    sn_second_moment_update,
    validate_sn_adam_group,
)
from .grouping import Routing
from .subspace_momentum import SM_VARIANT_DEFAULTS, SubspaceMomentumMixin, combine_numerator
from .validation import check_choice
from .weight_decay import decay_after

__all__ = ["AdamSNSM"]


@register("adam_sn_sm")
class AdamSNSM(SubspaceMomentumMixin, ReferenceOptimizer):
    __doc__ = __doc__
    paper = PAPER
    paper_routing = Routing("all_linear", method={"subset_size": "heuristics"}, dense={"lowrank": False},
                            rank_option="rank", source=ROUTING_SOURCE)
    variants = ("paper", "official")
    VARIANT_DEFAULTS = {v: {**SN_VARIANT_DEFAULTS[v], **SM_VARIANT_DEFAULTS[v]} for v in variants}

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        *,
        subset_size: int | str = "heuristics",
        rank: int = 128,
        proj_type: str = "svd",
        update_proj_gap: int = 200,
        bias_correction: bool = True,
        eps_placement: str | None = None,
        correct_sgd_part: bool | None = None,
        refresh: str | None = None,
        rank_overflow: str | None = None,
        proj_side: str | None = None,
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
            rank=rank,
            proj_type=proj_type,
            update_proj_gap=update_proj_gap,
            bias_correction=bias_correction,
            eps_placement=eps_placement,
            correct_sgd_part=correct_sgd_part,
            refresh=refresh,
            rank_overflow=rank_overflow,
            proj_side=proj_side,
            subset_fallback=subset_fallback,
            variant=variant,
        )
        super().__init__(params, defaults, seed=seed, nonfinite=nonfinite, batch_dims=batch_dims, fast=fast)

    def _validate_group(self, group: dict[str, Any]) -> None:
        check_choice("variant", group["variant"], self.variants)
        beta1, beta2 = check_betas(group["betas"])
        validate_sn_adam_group(group, (beta1, beta2))
        self._validate_sm_group(group, "betas[0]", beta1)
        apply_fallback_policy(self, group, group["subset_size"], group["subset_fallback"],
                              only=lambda p: uses_projection(p, group))

    def _layout(self, p: torch.Tensor, group: dict[str, Any]):
        rule = group["subset_size"] if uses_projection(p, group) else "coordinate"
        return param_layout(p, group["batch_dims"], rule)

    def _init_state(self, p, group, state) -> None:
        batch, _ = batch_shape(p, group)
        state["exp_avg_sq"] = full_for(p, (*batch, *self._layout(p, group).state_shape))

    def _update_param(self, p, grad, state, group) -> None:
        state["step"] += 1
        if uses_projection(p, group):
            self._projected_step(p, grad, state, group)
        else:
            self._dense_step(p, grad, state, group)

    def _projected_step(self, p, grad, state, group) -> None:
        step = int(state["step"])
        beta1, beta2 = group["betas"]
        layout = self._layout(p, group)
        lifted, orthogonal = self._subspace_parts(p, grad, state, group, beta1)
        sn_second_moment_update(state["exp_avg_sq"], grad, layout, beta2, group["batch_dims"])
        c1 = 1.0 - beta1**step if group["bias_correction"] else 1.0
        c2 = second_moment_correction(beta2, step, group["bias_correction"], group["variant"])
        numerator, c = combine_numerator(lifted, orthogonal, c1, self.resolved(group, "correct_sgd_part"))
        direction = sn_adam_direction(numerator, state["exp_avg_sq"], layout, c1=c, c2=c2, eps=group["eps"],
                                      eps_placement=self.resolved(group, "eps_placement"), batch_ndim=group["batch_dims"])
        p.add_(direction, alpha=-float(group["lr"]))
        decay_after(p, float(group["lr"]), group["weight_decay"])

    def _dense_step(self, p, grad, state, group) -> None:
        beta1, beta2 = group["betas"]
        if beta1 != 0 and "exp_avg" not in state:
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        adam_sn_update(
            p,
            grad,
            state.get("exp_avg"),
            state["exp_avg_sq"],
            self._layout(p, group),
            int(state["step"]),
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
