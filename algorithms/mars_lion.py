r"""MARS-Lion (Yuan et al., ICML 2025, arXiv 2411.10438v4, Algorithm 3), exact and approximate, with the
authors' code (AGI-Arena/MARS ``mars.py``, ``mars_type="mars-lion"``) as ``variant="official"``.

.. math::

   \begin{aligned}
   &\textbf{input: } \eta_t,\ \beta_{1,t},\ \gamma_t,\ \lambda; \quad m_0 = 0,\ x_1 = x_0 \\
   &\textbf{for } t = 1, 2, \dots \\
   &\quad c_t = g_t + \gamma_t \tfrac{\beta_{1,t}}{1-\beta_{1,t}} (g_t - h_t), \qquad
     \tilde c_t = c_t \min\bigl(1, \tau/\lVert c_t \rVert_2\bigr) \\
   &\quad m_t = \beta_{1,t} m_{t-1} + (1-\beta_{1,t}) \tilde c_t \\
   &\quad x_{t+1} = x_t - \eta_t \bigl( \operatorname{sign}(m_t) + \lambda x_t \bigr)
   \end{aligned}

with :math:`h_t` per the estimator (:mod:`algorithms.mars`): :math:`\nabla f(x_{t-1}, \xi_t)`
(exact) or :math:`g_{t-1}` (approx). There is a single β and no second moment (the code still
allocates an unused ``exp_avg_sq``; we do not). :math:`\operatorname{sign}(0) = 0`. The sign step
is :func:`algorithms.lion.sign_descent_step`, shared with the Lion reference.

Exact reductions (tested in float64): approx, no clipping, official first step, β = β2 and
γ = (β2−β1)/β2 ⇒ ``lion`` with (β1, β2) (eqs. 3.18–3.19; Lion's (0.9, 0.99) gives γ ≈ 0.0909).
γ = 0 is Signum on clipped gradients (Lion with β1 = β2), not Lion.

Defaults
--------
=================  ======================  ===========================================================
argument           default                 source
=================  ======================  ===========================================================
lr                 3e-3                    code constructor (shared by every ``mars_type``; tuned for
                                           MARS-AdamW only — re-tune for Lion, docs/methods.md §2.7)
beta1              0.95                    paper Tables 11–12 and code ``betas[0]`` (``betas[1]`` unused)
weight_decay       0                       code constructor
gamma              0.025                   paper and code
estimator          "approx"                paper and code
first_step         "paper" / "official"    Alg. 1 (c₁ = g₁) / code (c₁ = (1+k)g₁)
clip               "global" / "tensor"     Alg. 3 (norm of the whole vector) / code (per tensor)
clip_threshold     1.0                     paper and code
optimize_1d        True / False            ours (Alg. 3 acts on the whole vector) / code
routing            "official"              code; ``"ours"``: 2-D or more
lr_1d, betas_1d,   3e-3, (0.9, 0.95), 0.1  code (AdamW fallback for non-MARS parameters)
weight_decay_1d
eps                1e-8                    code (only the AdamW fallback uses it)
replay_rng         True                    ours (exact estimator only)
=================  ======================  ===========================================================

(``a / b``: ``variant="paper"`` / ``variant="official"``.)

Variants
--------
``"paper"``: c₁ = g₁, global-norm clip, all parameters on the sign rule. ``"official"``: c₁ = (1+k)g₁,
per-tensor clip, non-2-D parameters on the AdamW fallback (with ``optimize_1d=True`` they take the
sign rule, as in the code).

Shapes
------
Elementwise except the clipping norm; routing as in :mod:`algorithms.mars` (``"official"``:
exactly 2-D problem shapes use MARS-Lion, everything else the AdamW fallback unless
``optimize_1d``).

Memory: approx 2 (m, prev_grad); exact 2 (m, x_prev); the code keeps 3.
"""

from __future__ import annotations

from typing import Any

import torch

from .mars import MarsOptimizerBase, StepHyper
from ._registry import register
from .lion import sign_descent_step, sign_descent_step_foreach

__all__ = ["MarsLion", "mars_lion_precondition", "mars_lion_precondition_foreach"]


def mars_lion_precondition(param: torch.Tensor, c: torch.Tensor, state: dict[str, Any], group: dict[str, Any],
                           hp: StepHyper) -> None:
    r"""Algorithm 3, line 7, in place: :math:`x \leftarrow x - \eta(\operatorname{sign}(m_t) + \lambda x)`."""
    sign_descent_step(param, state["exp_avg"], lr=hp.lr, weight_decay=group["weight_decay"])


def mars_lion_precondition_foreach(params: list[torch.Tensor], cs: list[torch.Tensor], states: list[dict[str, Any]],
                                   group: dict[str, Any], hp: StepHyper) -> None:
    """:func:`mars_lion_precondition` on a bucket of tensors that share a device, a dtype and a step."""
    sign_descent_step_foreach(params, [state["exp_avg"] for state in states], lr=hp.lr,
                              weight_decay=group["weight_decay"])


@register("mars_lion")
class MarsLion(MarsOptimizerBase):
    __doc__ = __doc__
    paper = "Yuan et al., ICML 2025, arXiv 2411.10438 (Algorithm 3)"
    has_fast_path = True
    beta_fields = (("beta1", "beta1", None),)
    VARIANT_DEFAULTS = {
        "paper": dict(first_step="paper", clip="global", optimize_1d=True),
        "official": dict(first_step="official", clip="tensor", optimize_1d=False),
    }

    def __init__(
        self,
        params,
        lr: float = 3e-3,
        beta1: Any = 0.95,
        weight_decay: float = 0.0,
        *,
        gamma: Any = 0.025,
        estimator: str = "approx",
        variant: str = "paper",
        first_step: str | None = None,
        clip: str | None = None,
        clip_threshold: float = 1.0,
        optimize_1d: bool | None = None,
        routing: str = "official",
        lr_1d: float = 3e-3,
        betas_1d: tuple[float, float] = (0.9, 0.95),
        weight_decay_1d: float = 0.1,
        eps: float = 1e-8,
        replay_rng: bool = True,
        seed: int = 0,
        nonfinite: str = "raise",
        batch_dims: int = 0,
        fast: bool | str = False,
    ) -> None:
        resolved = self.resolve_variant(variant, first_step=first_step, clip=clip, optimize_1d=optimize_1d)
        defaults = dict(
            lr=lr, beta1=beta1, eps=eps, weight_decay=weight_decay, gamma=gamma, estimator=estimator,
            variant=variant, clip_threshold=clip_threshold, routing=routing, lr_1d=lr_1d, betas_1d=betas_1d,
            weight_decay_1d=weight_decay_1d, bias_correction=False, replay_rng=replay_rng, **resolved,
        )
        super().__init__(params, defaults, seed=seed, nonfinite=nonfinite, batch_dims=batch_dims, fast=fast)

    def _mars_buffers(self, p, group) -> tuple[str, ...]:
        return ("exp_avg",)

    def _precondition(self, p, c, state, group, hp: StepHyper) -> None:
        mars_lion_precondition(p, c, state, group, hp)

    def _precondition_foreach(self, params, cs, states, group, hp: StepHyper) -> None:
        mars_lion_precondition_foreach(params, cs, states, group, hp)
