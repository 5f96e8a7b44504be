r"""Fira-AdamW (Chen et al., "Fira: Can We Achieve Full-rank Training of LLMs Under Low-rank
Constraint?", NeurIPS 2025, arXiv 2410.01623, Algorithm 1 of App. A.1), with the authors' code as
``variant="official"``.

GaLore's subspace Adam step (:mod:`algorithms.galore_adamw`) plus the part of the gradient outside
the subspace, rescaled by the norm ratio of the subspace step and limited in growth:

.. math::

   \begin{aligned}
   &\textbf{input: } \eta,\ (\beta_1, \beta_2),\ \epsilon,\ r,\ T,\ \alpha,\ \gamma
     \quad (W \in \mathbb{R}^{m \times n},\ \text{left side shown}) \\
   &\textbf{for } t = 1, 2, \dots \\
   &\quad \textbf{if } (t-1) \bmod T = 0:\ P_t \leftarrow U_{[:, :r]} \text{ of } \operatorname{SVD}(G_t)
          \ \text{else } P_t \leftarrow P_{t-1} \\
   &\quad R_t \leftarrow P_t^\top G_t, \qquad
          S_t \leftarrow G_t - P_t R_t \ \text{(paper)} \quad
          S_t \leftarrow G_t - \alpha P_t R_t \ \text{(official)} \\
   &\quad M_t, V_t \text{ as Adam on } R_t; \quad N_t \text{ as in GaLore (paper: bias-corrected)} \\
   &\quad \phi_i = \frac{\|N_t[:, i]\|}{\|R_t[:, i]\| + \epsilon_s} \ \ (i = 1..n,\ \text{Eq. 9 column level})
     \quad\text{or}\quad \phi = \frac{\|N_t\|_F}{\|R_t\|_F + \epsilon_s} \ \ (\text{Eq. 10 matrix level}) \\
   &\quad S_t \leftarrow \phi \circ S_t; \qquad
     S_t \leftarrow S_t \cdot \frac{\gamma}{\max\{\|S_t\| / (\|S_{t-1}\| + \epsilon_s),\ \gamma\}}
     \ \ (t > 1;\ \|S_{t-1}\| \text{ is stored after limiting}) \\
   &\quad \text{paper: } W_t \leftarrow W_{t-1} - \eta\,\alpha\,(P_t N_t + S_t)
     \qquad \text{official: } W_t \leftarrow W_{t-1} - \eta\,(\alpha P_t N_t + b_t S_t)
   \end{aligned}

with :math:`b_t = \sqrt{1-\beta_2^t}/(1-\beta_1^t)`: the official code computes :math:`\phi` and
the limiter from the *uncorrected* ratio :math:`M/(\sqrt V + \epsilon)` and multiplies the whole
update by the HF step size :math:`\eta b_t`, so its limiter sees :math:`S_t/b_t` (paper: the
bias-corrected :math:`S_t`); the two agree without the limiter, and differ in early steps with it.

**Scaling axis.** One factor per index of the dimension that is *not* projected: per column
(norms over the r rows of the ``r × n`` coordinates) for a left basis, per row (norms over the r
columns of the ``m × r`` coordinates) for a right basis — Algorithm 1's column rule for
:math:`m \le n`, transposed. The official code instead picks the axis from the shape of
:math:`N_t` (dim 0 if it has fewer rows than columns, else dim 1); the two rules agree except when
:math:`N_t` is square on a left basis (``rank = n`` with ``proj_side="left"`` or ``"reverse_std"``),
where the code scales rows of :math:`S_t` with factors of :math:`N_t`'s rows (a broadcasting error
for ``m ≠ n``). pytorch-optimizer 4.1.0 follows the side rule, as here.

Defaults
--------
====================  =====================  ============================================================
argument              default                source
====================  =====================  ============================================================
lr                    1e-2 / 1e-3            paper App. B.1 (same as GaLore) / code constructor
betas, weight_decay   (0.9, 0.999), 0        paper and code
eps                   1e-8 / 1e-6            paper (Adam; text example) / code (HF default)
rank                  128                    paper (60M, as GaLore Table 2)
update_proj_gap       200                    paper and ``GradientProjector``
scale (α)             0.25 / 1.0             paper App. B.1 (< 1B; 0.0625 for ≥ 1B) / ``GradientProjector``
limiter_gamma (γ)     1.01                   paper App. H and code (hard-coded); ``None`` = no limiter
scaling               "column"               paper ("Fira" = column level) and code; "matrix" = Eq. 10
scaling_eps           1e-8                   code (both denominators); the paper writes ε
residual_form         "paper" / "official"   Algorithm 1 / code (S = G − αPR, α not applied to S)
proj_side             "std"                  code
square_side           "left" / "right"       Algorithm 1 (m ≤ n, left) / code (m ≥ n, right)
moment_transfer       "keep"                 paper and code; "project" is ours (see galore_adamw)
eps_placement         "torch" / "hf"         paper (bias-corrected N_t) / code
weight_decay_timing   "before" / "after"     ours (Algorithm 1 has none) / code (raw lr, after)
====================  =====================  ============================================================

``scaling="none"`` (φ ≡ 1) is the paper's "GaLore-add" ablation (Eq. 8); ``limiter_gamma=None``
its "w.o. limiter" ablation (Table 15's γ = ∞).

Variants
--------
``variant="paper"``: Algorithm 1 as read (the formula images were not decoded, so the box follows
the text): α multiplies both terms, the residual is the orthogonal complement
:math:`(I - PP^\top)G`, bias-corrected :math:`N_t` everywhere, SVD in the parameter's dtype with
pinned signs, ``ValueError`` for an oversized rank. The initial value of :math:`\|S_0\|` is not
stated in the text we read; both variants only record :math:`\|S_1\|` on the first step, the code's
rule.

``variant="official"``: ``fira.FiraAdamW`` 1.0.2 (repo 5dcc167): residual :math:`G - \alpha P R`
(so for α ≠ 1 it leaks :math:`(1-\alpha) P R` and is not multiplied by α; equal to the paper only
at α = 1), HF ε 1e-6, decay after the update with the raw lr, float32 SVD with raw signs (cast
back; nothing float32 is stored), silent rank truncation, right projection for square matrices.
Cross-checked against fira 1.0.2 and pytorch-optimizer 4.1.0's ``Fira`` (which includes the α leak,
follows the side rule for the scaling axis, and refreshes one step early: 1-based steps 1, T, 2T, …;
see galore_adamw).

Shapes
------
As GaLore: non-empty matrices in ``lowrank=True`` groups are projected, every other parameter takes
the variant's dense AdamW step (the code's rule for parameters outside ``rank`` groups).

State of a projected parameter: GaLore's (``step``, ``basis``, ``exp_avg``, ``exp_avg_sq``) plus
``residual_norm`` (``[*B]``, the post-limiter :math:`\|S_t\|_F` of each independent problem; the
code's ``scaling_grad``).

Exact reductions (tested in float64): identity projector and α = 1 ⇒ AdamW (the residual vanishes);
a residual that is identically zero (gradients inside the subspace; paper form, any α) ⇒
``galore_adamw``; ``scaling="none"``, ``limiter_gamma=None`` ⇒ GaLore plus the raw residual.
"""

from __future__ import annotations

from typing import Any

import torch

from ._galore import (
    SubspaceAdamWBase,
    bias_factor,
    subspace_direction,
    update_moments,
)
from .distributed import settle
from .projection import project_back
from ._registry import register
from .grouping import Routing
from .validation import check_choice, check_nonnegative, check_real
from .weight_decay import decay_after, decay_before

__all__ = [
    "FiraAdamW",
    "SCALINGS",
    "RESIDUAL_FORMS",
    "fira_residual",
    "norm_scaling_factors",
    "limit_norm_growth",
    "fira_update",
]

SCALINGS = ("column", "matrix", "none")
RESIDUAL_FORMS = ("paper", "official")


def fira_residual(G: torch.Tensor, lifted_R: torch.Tensor, alpha: float, form: str) -> torch.Tensor:
    r"""The residual :math:`S = G - P R` (paper) or :math:`G - \alpha P R` (official); ``lifted_R = P R``."""
    if form == "official":
        return G - alpha * lifted_R
    return G - lifted_R


def norm_scaling_factors(N: torch.Tensor, R: torch.Tensor, side: str, scaling: str, eps: float) -> torch.Tensor | float:
    r"""Fira's norm-based scaling :math:`\phi = \|N\| / (\|R\| + \epsilon)`, broadcastable to the residual.

    ``column``: one factor per index of the unprojected dimension (``[..., 1, n]`` for a left basis,
    ``[..., m, 1]`` for a right one); ``matrix``: one per problem (``[..., 1, 1]``); ``none``: 1.
    """
    if scaling == "none":
        return 1.0
    if scaling == "matrix":
        dims = (-2, -1)
    else:
        dims = (-2,) if side == "left" else (-1,)
    return torch.linalg.vector_norm(N, dim=dims, keepdim=True) / (torch.linalg.vector_norm(R, dim=dims, keepdim=True) + eps)


def limit_norm_growth(
    S: torch.Tensor, previous_norm: torch.Tensor | None, gamma: float | None, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Norm-growth limiter: ``(S_limited, ‖S_limited‖)`` per problem (norms over the last two dims).

    :math:`S \leftarrow S\,\gamma / \max\{\|S\|/(\|S_{prev}\| + \epsilon), \gamma\}`. With no previous
    norm (first step) or ``gamma=None`` the residual passes unchanged and its norm is returned.
    """
    norm = settle(torch.linalg.vector_norm(S, dim=(-2, -1)))  # on FSDP2 shards: all-reduced, replicated
    if previous_norm is None or gamma is None:
        return S, norm
    shrink = (norm / (previous_norm + eps)).clamp_min(gamma) / gamma
    return S / shrink[..., None, None], norm / shrink


def fira_update(
    param: torch.Tensor,
    G: torch.Tensor,
    R: torch.Tensor,
    basis: torch.Tensor,
    state: dict[str, Any],
    step: int,
    group: dict[str, Any],
    side: str,
) -> None:
    """One Fira step in place, given this step's basis and ``R = project(G)``; updates
    ``state["exp_avg"]``, ``state["exp_avg_sq"]`` and ``state["residual_norm"]`` (batched)."""
    lr, wd, timing = float(group["lr"]), group["weight_decay"], group["weight_decay_timing"]
    alpha, form, eps_s = group["scale"], group["residual_form"], group["scaling_eps"]
    beta1, beta2 = group["betas"]
    decay_before(param, lr, wd, timing)
    update_moments(R, state["exp_avg"], state["exp_avg_sq"], beta1, beta2)
    N = subspace_direction(state["exp_avg"], state["exp_avg_sq"], step, group)
    # official: factors and limiter see the uncorrected ratio N / b_t; the step is then scaled by b_t
    b = bias_factor(step, group) if form == "official" else 1.0
    S = fira_residual(G, project_back(R, basis, side), alpha, form)
    S = S * norm_scaling_factors(N / b, R, side, group["scaling"], eps_s)
    S, state["residual_norm"] = limit_norm_growth(S, state.get("residual_norm"), group["limiter_gamma"], eps_s)
    lifted = project_back(N, basis, side)
    if form == "official":
        update = lifted.mul_(alpha).add_(S, alpha=b)
    else:
        update = lifted.add_(S).mul_(alpha)
    param.add_(update, alpha=-lr)
    decay_after(param, lr, wd, timing)


@register("fira_adamw")
class FiraAdamW(SubspaceAdamWBase):
    __doc__ = __doc__
    paper = "Chen et al., NeurIPS 2025, arXiv 2410.01623 (Algorithm 1)"
    paper_routing = Routing("attn_mlp", dense={"lowrank": False}, rank_option="rank",
                            source="Fira follows GaLore's split (its code is GaLore's torchrun_main.py)")

    def __init__(
        self,
        params,
        lr: float | None = None,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float | None = None,
        weight_decay: float = 0.0,
        *,
        rank: int = 128,
        update_proj_gap: int | None = None,
        scale: float | None = None,
        limiter_gamma: float | None = 1.01,
        scaling: str = "column",
        scaling_eps: float = 1e-8,
        residual_form: str | None = None,
        proj_side: str = "std",
        square_side: str | None = None,
        moment_transfer: str = "keep",
        eps_placement: str | None = None,
        weight_decay_timing: str | None = None,
        bias_correction: bool = True,
        variant: str = "paper",
        seed: int = 0,
        nonfinite: str = "raise",
        batch_dims: int = 0,
        fast: bool | str = False,
    ) -> None:
        extra = dict(
            limiter_gamma=limiter_gamma,
            scaling=scaling,
            scaling_eps=scaling_eps,
            residual_form=variant if residual_form is None else residual_form,
        )
        super().__init__(
            params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, rank=rank,
            update_proj_gap=update_proj_gap, scale=scale, proj_side=proj_side, square_side=square_side,
            moment_transfer=moment_transfer, eps_placement=eps_placement,
            weight_decay_timing=weight_decay_timing, bias_correction=bias_correction, variant=variant,
            extra=extra, seed=seed, nonfinite=nonfinite, batch_dims=batch_dims, fast=fast,
        )

    def _validate_extra(self, group: dict[str, Any]) -> None:
        gamma = group["limiter_gamma"]
        if gamma is not None and check_real("limiter_gamma", gamma) < 1:
            raise ValueError(f"limiter_gamma must be >= 1 (or None for no limiter), got {gamma}")
        check_choice("scaling", group["scaling"], SCALINGS)
        check_nonnegative("scaling_eps", group["scaling_eps"])
        check_choice("residual_form", group["residual_form"], RESIDUAL_FORMS)

    def _projected_step(self, p, grad, R, state, group, side: str) -> None:
        fira_update(p, grad, R, state["basis"], state, int(state["step"]), group, side)
