r"""GaLore-AdamW (Zhao et al., "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank
Projection", ICML 2024, arXiv 2403.03507v2, Algorithm 2), with the authors' code as ``variant="official"``.

.. math::

   \begin{aligned}
   &\textbf{input: } \eta,\ (\beta_1, \beta_2),\ \epsilon,\ \lambda,\ \text{rank } r,
     \ \text{gap } T,\ \text{scale } \alpha \\
   &\textbf{for } t = 1, 2, \dots \quad (W \in \mathbb{R}^{m \times n},\ \text{left side shown}) \\
   &\quad G_t \leftarrow \nabla f_t(W_{t-1}) \\
   &\quad \textbf{if } (t-1) \bmod T = 0:\ U \Sigma V^\top = \operatorname{SVD}(G_t),\
          P_t \leftarrow U_{[:, :r]} \quad \text{else } P_t \leftarrow P_{t-1}
          \quad (M, V \text{ kept, not rotated}) \\
   &\quad R_t \leftarrow P_t^\top G_t \hfill (r \times n) \\
   &\quad M_t \leftarrow \beta_1 M_{t-1} + (1-\beta_1) R_t, \qquad
          V_t \leftarrow \beta_2 V_{t-1} + (1-\beta_2) R_t^{2} \\
   &\quad \text{paper: } N_t = \frac{M_t/(1-\beta_1^t)}{\sqrt{V_t/(1-\beta_2^t)} + \epsilon}
     \qquad \text{official: } N_t = \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,\frac{M_t}{\sqrt{V_t} + \epsilon} \\
   &\quad W_t \leftarrow W_{t-1} - \eta\, \alpha\, P_t N_t
     \qquad (\text{decoupled decay } \eta\lambda W \text{ before (paper) / after (official) this line}) \\
   \end{aligned}

Right side (``m > n``, and ``m = n`` under ``variant="official"``): :math:`P_t` = the first ``r``
right singular vectors (``[n, r]``), :math:`R_t = G_t P_t` (``m × r``) and the update is
:math:`P_t N_t` lifted as :math:`N_t P_t^\top`.

Paper equation numbers: Algorithm 2 (the box above, with the paper's :math:`G_t = -\nabla` sign
convention flipped to a descent step), Definition 3.6 (the general two-sided form; one side only in
practice, §4.2), Table 1 (memory :math:`mr + 2nr`).

Defaults
--------
====================  =====================  ============================================================
argument              default                source
====================  =====================  ============================================================
lr                    1e-2 / 1e-3            paper §5 pretraining (effective 1e-2·0.25) / code constructor
betas                 (0.9, 0.999)           paper §5 and code
eps                   1e-8 / 1e-6            paper §5 (Adam) / code (``transformers.AdamW`` default)
weight_decay          0                      paper (none) and code
rank                  128                    paper Table 2 (60M); the code has no default (KeyError)
update_proj_gap       200                    paper §5 and ``GaLoreProjector``; the CLI default is 50
scale (α)             0.25 / 1.0             paper §5 / ``GaLoreProjector`` and CLI default
proj_side             "std"                  code (``proj_type``); projects the smaller dimension
square_side           "left" / "right"       Algorithm 2 (left for m ≤ n) / code (right for m ≥ n)
moment_transfer       "keep"                 paper and code (moments never rotated); "project" is ours
eps_placement         "torch" / "hf"         Algorithm 2 (bias-corrected V̂) / code
weight_decay_timing   "before" / "after"     ours (Algorithm 2 has none; torch.optim.AdamW) / code
bias_correction       True                   paper and code (``correct_bias``)
====================  =====================  ============================================================

(``a / b``: ``variant="paper"`` / ``variant="official"``; pass an explicit value to override.)

Variants
--------
``variant="paper"`` is Algorithm 2 read literally: bias-corrected moments with ε = 1e-8, an SVD in
the parameter's dtype with signs pinned (largest-magnitude entry of each singular vector positive),
``ValueError`` for a rank above the projected dimension, left projection for square matrices.

``variant="official"`` reproduces ``galore_torch.GaLoreAdamW`` (galore-torch 1.0; repo 2cc66f8):
HF-style ε = 1e-6 added to the uncorrected :math:`\sqrt{V}`, decay ``W ← W − lr·λ·W`` *after* the
update (raw lr, no α), α only on the projected update, float32 SVD for every dtype (cast back to the
parameter dtype, so no float32 tensor is stored), raw ``torch.linalg.svd`` signs, silent rank
truncation, right projection for square matrices, moments never rotated. Cross-checked against
galore-torch 1.0 and pytorch-optimizer 4.1.0 (tests/crosscheck/test_galore_fira_thirdparty.py).

Third-party disagreements (tests/crosscheck): pytorch-optimizer 4.1.0's ``GaLore`` increments its
per-group counter before projecting, so it refreshes at 1-based steps 1, T, 2T, … (one step early
against the authors' code and Algorithm 2's ``t mod T = 0`` from t = 0; this module follows the
latter); with that index shifted back, it agrees to round-off. galore-torch 1.0's ``reverse_std``
picks the back-projection side from the shape of the low-rank step, so a square one (``rank = m`` on
a wide matrix) is lifted on the wrong side (a shape error); here the step is lifted on the side it
was projected.

Not implemented: the code's ``proj_type="full"`` (two-sided) and its Tucker projector for >2-D
tensors (``GaLoreProjectorTensor``, not in the 1.0 release); 8-bit and Adafactor inner optimizers.

Shapes
------
A parameter is projected when its group has ``lowrank=True`` (default) and its problem shape
(after ``batch_dims``) is a non-empty matrix; 1×n matrices are projected at rank 1. Every other
parameter (0-D, 1-D, 3-D/4-D, zero-size, or ``lowrank=False`` groups) takes a dense AdamW step with
the variant's ε and decay conventions — the authors' rule for parameters outside ``rank`` groups
(their code crashes on non-matrices inside one). ``paper_param_groups("galore_adamw", model, rank=128)``
(:mod:`algorithms.grouping`) gives the paper's split.

Exact reductions (tested in float64): identity projector (``r = m``, :math:`P = I`) and α = 1 ⇒
``torch.optim.AdamW`` (paper) / HF AdamW (official); a fixed basis (T ≥ steps) ⇒ Adam on
:math:`P^\top G_t`, mapped back; a 1×n matrix at rank 1 under ``variant="paper"`` ⇒ Adam for any T
(pinned sign: P = 1). Full rank is **not** Adam (Adam in a rotated basis).
"""

from __future__ import annotations

from typing import Any

import torch

from ._galore import (
    SubspaceAdamWBase,
    subspace_direction,
    update_moments,
)
from .projection import project_back
from ._registry import register
from .grouping import Routing
from .weight_decay import decay_after, decay_before

__all__ = ["GaLoreAdamW", "galore_update"]


def galore_update(
    param: torch.Tensor,
    R: torch.Tensor,
    basis: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    step: int,
    group: dict[str, Any],
    side: str,
) -> None:
    """One GaLore step in place, given this step's basis and projected gradient ``R`` (batched).

    ``group`` supplies ``lr``, ``betas``, ``eps``, ``eps_placement``, ``bias_correction``, ``scale``,
    ``weight_decay`` and ``weight_decay_timing``; ``step`` is the post-increment counter.
    """
    lr, wd, timing = float(group["lr"]), group["weight_decay"], group["weight_decay_timing"]
    beta1, beta2 = group["betas"]
    decay_before(param, lr, wd, timing)
    update_moments(R, exp_avg, exp_avg_sq, beta1, beta2)
    N = subspace_direction(exp_avg, exp_avg_sq, step, group)
    # sub_(x, alpha=c), not add_(x, alpha=-c): bit for bit the same eager arithmetic, but torch.compile's
    # inductor drops alpha in add(mm, alpha=) (pytorch/pytorch#167313) and keeps it in sub
    param.sub_(project_back(N, basis, side), alpha=lr * group["scale"])
    decay_after(param, lr, wd, timing)


@register("galore_adamw")
class GaLoreAdamW(SubspaceAdamWBase):
    __doc__ = __doc__
    paper = "Zhao et al., ICML 2024, arXiv 2403.03507 (Algorithm 2)"
    paper_routing = Routing("attn_mlp", dense={"lowrank": False}, rank_option="rank",
                            source="GaLore §5: the attention and MLP matrices of the LLaMA blocks low-rank; embedding, lm_head, norms AdamW")

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
        super().__init__(
            params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, rank=rank,
            update_proj_gap=update_proj_gap, scale=scale, proj_side=proj_side, square_side=square_side,
            moment_transfer=moment_transfer, eps_placement=eps_placement,
            weight_decay_timing=weight_decay_timing, bias_correction=bias_correction, variant=variant,
            extra={}, seed=seed, nonfinite=nonfinite, batch_dims=batch_dims, fast=fast,
        )

    def _projected_step(self, p, grad, R, state, group, side: str) -> None:
        galore_update(p, R, state["basis"], state["exp_avg"], state["exp_avg_sq"], int(state["step"]), group, side)
