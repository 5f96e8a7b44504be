r"""Machinery shared by GaLore (:mod:`algorithms.galore_adamw`) and Fira (:mod:`algorithms.fira_adamw`).

Both methods keep, per projected matrix, an exact-SVD basis refreshed every ``update_proj_gap``
steps and Adam moments of the projected gradient :math:`R_t`; they differ only in how the
normalized subspace step is lifted back (Fira adds a scaled residual). This module writes the
common parts once, as plain functions on tensors batched over leading independent-problem
dimensions, plus a thin optimizer base class :class:`SubspaceAdamWBase`.

Variants
--------
Every convention that differs between the papers and the authors' codes is set by
``variant`` (``"paper"`` or ``"official"``) and can be overridden one by one:

======================  ===========================================  ==============================================
setting                 ``variant="paper"``                          ``variant="official"``
======================  ===========================================  ==============================================
ε placement, default    bias-corrected :math:`\hat M/(\sqrt{\hat V}+ε)`,  HF: :math:`\sqrt{c_2}/c_1 · M/(\sqrt V + ε)`,
                        ε = 1e-8 (GaLore Alg. 2 / §5)                 ε = 1e-6 (``transformers.AdamW`` default)
weight decay            decoupled, *before* the update                decoupled, *after* the update, ``lr·wd``,
                        (Alg. 2 has none; torch.optim.AdamW's rule)   raw lr, without α
square matrix side      left (Alg. 2: "left projector as m ≤ n")      right (code: ``m >= n`` → right)
SVD                     in the parameter's dtype, signs pinned         float32 for every dtype (cast back), raw
                        (largest-|·| entry of each vector positive)    ``torch.linalg.svd`` signs
rank > projected dim    ``ValueError``                                silently truncated to the dimension
α, T, lr defaults       0.25, 200, 1e-2 (pretraining, §5)             1.0, 200, 1e-3 (constructor/projector)
======================  ===========================================  ==============================================

Arguments left as ``None`` are resolved once, from the constructor's ``variant``; a parameter group
that sets its own ``variant`` changes the SVD/rank conventions of that group only, and keeps the
other resolved values unless it sets them too.

Moments are *not* rotated at a refresh in either variant (neither Algorithm 2 nor the code does;
GaLore issue #54); ``moment_transfer="project"`` re-projects them (see :func:`transfer_moments`).

Refresh schedule (both variants, and both codes): the basis is recomputed from the raw gradient
when the step counter *before* the increment is a multiple of ``T``, i.e. at 1-based steps
1, T+1, 2T+1, …; bias corrections use the counter after the increment.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

from ._base import ReferenceOptimizer
from ._stacked import StackedFastPath
from ._lowrank import (
    checked_rank,
    dense_adamw_update,
    dense_adamw_update_foreach,
    init_dense_state,
    init_subspace_state,
    matrix_shape,
    uses_projection,
    validate_lowrank_flag,
)
from .projection import (
    SIDE_RULES,
    SIDES,
    change_of_basis,
    project,
    projection_side,
    rotate_coordinates,
    top_singular_basis,
)
from .validation import check_bool, check_choice, check_int, check_positive
from .adam import adam_direction, adam_update_foreach, bias_corrections, validate_adam_hyper

__all__ = [
    "VARIANTS",
    "MOMENT_TRANSFERS",
    "svd_settings",
    "resolve_side",
    "subspace_basis",
    "refresh_due",
    "transfer_moments",
    "update_moments",
    "subspace_direction",
    "bias_factor",
    "SubspaceAdamWBase",
]

VARIANTS = ("paper", "official")
MOMENT_TRANSFERS = ("keep", "project")


# ----------------------------------------------------------------------------- layout
def svd_settings(variant: str) -> dict[str, Any]:
    """Decomposition dtype, sign convention and rank-overflow rule of a variant."""
    if variant == "official":
        return {"compute_dtype": torch.float32, "sign": "none", "overflow": "truncate"}
    return {"compute_dtype": None, "sign": "max_abs", "overflow": "raise"}


def resolve_side(m: int, n: int, proj_side: str, square_side: str) -> str:
    """The projected side of an ``m × n`` matrix (``projection_side`` with the variant's square rule)."""
    return projection_side(m, n, proj_side, square=square_side)


def subspace_basis(G: torch.Tensor, rank: int, side: str, variant: str) -> torch.Tensor:
    """Top-``rank`` singular basis ``[..., d, r]`` of the raw gradient, with the variant's SVD settings.

    A problem whose gradient holds NaN gets a NaN basis (see :mod:`algorithms.projection`), so a
    non-finite gradient propagates into the parameter as in ``torch.optim`` (``nonfinite="ignore"``).
    """
    settings = svd_settings(variant)
    return top_singular_basis(G, rank, side, compute_dtype=settings["compute_dtype"], sign=settings["sign"])


def refresh_due(step_before: int, update_proj_gap: int) -> bool:
    """GaLore/Fira schedule: refresh when the pre-increment counter is a multiple of T (0, T, 2T, …)."""
    return step_before % update_proj_gap == 0


# ----------------------------------------------------------------------------- moments
def transfer_moments(
    exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor, C: torch.Tensor, side: str
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Re-project the subspace moments into a new basis (``moment_transfer="project"``; ours).

    .. math::

       \text{left } (r \times n):\ M \leftarrow C M,\quad V \leftarrow (C \circ C)\, V
       \qquad
       \text{right } (m \times r):\ M \leftarrow M C^\top,\quad V \leftarrow V (C \circ C)^\top

    :math:`M` is moved exactly (:math:`U_{new} M_{new} = U_{new}U_{new}^\top U_{old} M`, the
    projection of the old full-space momentum). :math:`V` is moved as the variance of independent
    coordinates, :math:`\operatorname{Var}(\sum_j c_{ij} x_j) = \sum_j c_{ij}^2 \operatorname{Var}(x_j)`:
    non-negative by construction and exact whenever :math:`C` is a signed permutation (e.g. a
    refresh that only flips singular-vector signs), which makes the trajectory independent of the
    SVD backend's sign choices. (LDAdam's rule also moves :math:`M^2`; see ``ldadam``.)
    """
    return rotate_coordinates(exp_avg, C, side), rotate_coordinates(exp_avg_sq, C * C, side)


def update_moments(R: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor, beta1: float, beta2: float) -> None:
    """Adam's moment EMAs of the projected gradient, in place."""
    exp_avg.lerp_(R, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(R, R, value=1 - beta2)


def subspace_direction(
    exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor, step: int, group: dict[str, Any]
) -> torch.Tensor:
    """The normalized subspace step :math:`N_t` (bias corrections folded in) with the group's ε placement."""
    beta1, beta2 = group["betas"]
    return adam_direction(
        exp_avg, exp_avg_sq, step, beta1=beta1, beta2=beta2, eps=group["eps"],
        eps_placement=group["eps_placement"], bias_correction=group["bias_correction"],
    )


def bias_factor(step: int, group: dict[str, Any]) -> float:
    r""":math:`\sqrt{1-\beta_2^t}/(1-\beta_1^t)`, the HF step-size factor (1 without bias correction)."""
    beta1, beta2 = group["betas"]
    c1, c2 = bias_corrections(beta1, beta2, step, group["bias_correction"])
    return math.sqrt(c2) / c1


# ----------------------------------------------------------------------------- the optimizer base
class SubspaceAdamWBase(StackedFastPath, ReferenceOptimizer):
    """GaLore-family bookkeeping: argument resolution, validation, routing, refreshes, state layout.

    Subclasses implement :meth:`_projected_step` (the update of one projected matrix, given the
    refreshed basis and the projected gradient) and may add group keys through
    :meth:`_validate_extra`.

    State of a projected parameter (``[*B]`` = the ``batch_dims`` leading dims):

    ``step``        CPU int64 0-D tensor
    ``basis``       ``[*B, d, r]``, orthonormal columns (d = m for a left basis, n for a right one;
                    the authors' codes store a right basis transposed, as ``r × n``)
    ``exp_avg``     ``[*B, r, n]`` (left) or ``[*B, m, r]`` (right)
    ``exp_avg_sq``  same shape

    Dense parameters keep ``step``, ``exp_avg``, ``exp_avg_sq`` of their own shape.

    Fast path (``fast=``, :mod:`algorithms._stacked`): the projected matrices of one shape are stepped as one
    stack (one batched SVD at a refresh, batched projections every step); the dense parameters take
    :func:`algorithms._lowrank.dense_adamw_update_foreach`.
    """

    variants: ClassVar[tuple[str, ...]] = VARIANTS
    #: the defaults each variant resolves when an argument is left as ``None``
    VARIANT_DEFAULTS: ClassVar[dict[str, dict[str, Any]]] = {
        "paper": dict(lr=1e-2, eps=1e-8, scale=0.25, update_proj_gap=200, eps_placement="torch",
                      weight_decay_timing="before", square_side="left"),
        "official": dict(lr=1e-3, eps=1e-6, scale=1.0, update_proj_gap=200, eps_placement="hf",
                         weight_decay_timing="after", square_side="right"),
    }

    def __init__(
        self,
        params,
        *,
        lr: float | None,
        betas: tuple[float, float],
        eps: float | None,
        weight_decay: float,
        rank: int,
        update_proj_gap: int | None,
        scale: float | None,
        proj_side: str,
        square_side: str | None,
        moment_transfer: str,
        eps_placement: str | None,
        weight_decay_timing: str | None,
        bias_correction: bool,
        variant: str,
        extra: dict[str, Any],
        seed: int,
        nonfinite: str,
        batch_dims: int,
        fast: bool | str = False,
    ) -> None:
        resolved = self.resolve_variant(variant, lr=lr, eps=eps, scale=scale, update_proj_gap=update_proj_gap,
                                        eps_placement=eps_placement, weight_decay_timing=weight_decay_timing,
                                        square_side=square_side)
        defaults = dict(
            resolved,
            betas=tuple(betas) if isinstance(betas, (tuple, list)) else betas,
            weight_decay=weight_decay,
            rank=rank,
            proj_side=proj_side,
            moment_transfer=moment_transfer,
            bias_correction=bias_correction,
            variant=variant,
            lowrank=True,
            **extra,
        )
        super().__init__(params, defaults, seed=seed, nonfinite=nonfinite, batch_dims=batch_dims, fast=fast)

    # ------------------------------------------------------------------ validation
    def _validate_group(self, group: dict[str, Any]) -> None:
        validate_adam_hyper(group)
        check_choice("variant", group["variant"], VARIANTS)
        check_int("rank", group["rank"], minimum=1)
        check_int("update_proj_gap", group["update_proj_gap"], minimum=1)
        check_positive("scale", group["scale"])
        check_choice("proj_side", group["proj_side"], SIDE_RULES)
        check_choice("square_side", group["square_side"], SIDES)
        check_choice("moment_transfer", group["moment_transfer"], MOMENT_TRANSFERS)
        check_bool("bias_correction", group["bias_correction"])
        validate_lowrank_flag(group)
        self._validate_extra(group)
        for p in group["params"]:  # ranks are checked against the shapes known now, not at step time
            if uses_projection(p, group):
                self._layout(p, group)

    def _validate_extra(self, group: dict[str, Any]) -> None:
        """Subclass hook for method-specific group keys."""

    def _layout(self, p: torch.Tensor, group: dict[str, Any]) -> tuple[str, int]:
        """``(side, rank)`` of a projected parameter: the side rule, then the rank checked (or truncated)."""
        m, n = matrix_shape(p, group)
        side = resolve_side(m, n, group["proj_side"], group["square_side"])
        # the official codes slice U[:, :r] of a thin SVD, so min(m, n) bounds the rank on either side
        rank = checked_rank(group["rank"], m, n, overflow=svd_settings(group["variant"])["overflow"])
        return side, rank

    # ------------------------------------------------------------------ state and step
    def _init_state(self, p: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        if not uses_projection(p, group):
            init_dense_state(p, state)
            return
        init_subspace_state(p, state, *self._layout(p, group))

    def _update_param(self, p, grad, state, group) -> None:
        if not uses_projection(p, group):
            state["step"] += 1
            dense_adamw_update(p, grad, state, group, eps_placement=group["eps_placement"],
                               weight_decay_timing=group["weight_decay_timing"],
                               bias_correction=group["bias_correction"])
            return
        side, rank = self._layout(p, group)
        if "basis" not in state or refresh_due(int(state["step"]), group["update_proj_gap"]):
            self._refresh(grad, state, group, side, rank)
        state["step"] += 1
        R = project(grad, state["basis"], side)
        self._projected_step(p, grad, R, state, group, side)

    def _fast_dense(self, p: torch.Tensor, group: dict[str, Any]) -> bool:
        return not uses_projection(p, group)

    def _step_dense_foreach(self, params, grads, states, group) -> None:
        dense_adamw_update_foreach(params, grads, states, group, eps_placement=group["eps_placement"],
                                   update=self._kernel(adam_update_foreach),
                                   weight_decay_timing=group["weight_decay_timing"],
                                   bias_correction=group["bias_correction"])

    def _refresh(self, grad, state, group, side: str, rank: int) -> None:
        new = subspace_basis(grad, rank, side, group["variant"])
        if "basis" in state and group["moment_transfer"] == "project":
            C = change_of_basis(state["basis"], new)
            state["exp_avg"], state["exp_avg_sq"] = transfer_moments(state["exp_avg"], state["exp_avg_sq"], C, side)
        state["basis"] = new

    def _projected_step(self, p, grad, R, state, group, side: str) -> None:
        raise NotImplementedError
