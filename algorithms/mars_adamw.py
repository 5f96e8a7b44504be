r"""MARS-AdamW (Yuan et al., ICML 2025, arXiv 2411.10438v4, Algorithm 2; framework Algorithm 1), exact
and approximate, with the authors' code (AGI-Arena/MARS ``mars.py``, ``mars_type="mars-adamw"``) as
``variant="official"``.

.. math::

   \begin{aligned}
   &\textbf{input: } \eta_t,\ \beta_{1,t},\ \beta_{2,t},\ \gamma_t,\ \lambda,\ \epsilon;
     \quad m_0 = v_0 = 0,\ x_1 = x_0 \\
   &\textbf{for } t = 1, 2, \dots \\
   &\quad g_t = \nabla f(x_t, \xi_t), \qquad
     h_t = \begin{cases} \nabla f(x_{t-1}, \xi_t) & \text{exact (Alg. 1)} \\
                         \nabla f(x_{t-1}, \xi_{t-1}) & \text{approx (Remark 3.3)} \end{cases} \\
   &\quad c_t = g_t + \gamma_t \tfrac{\beta_{1,t}}{1-\beta_{1,t}} (g_t - h_t), \qquad
     \tilde c_t = c_t \min\bigl(1, \tau/\lVert c_t \rVert_2\bigr) \\
   &\quad m_t = \beta_{1,t} m_{t-1} + (1-\beta_{1,t}) \tilde c_t, \qquad
     v_t = \beta_{2,t} v_{t-1} + (1-\beta_{2,t}) \tilde c_t^{\,2} \\
   &\quad \hat m_t = m_t/(1-\beta_1^t), \qquad \hat v_t = v_t/(1-\beta_2^t) \\
   &\quad x_{t+1} = x_t - \eta_t \Bigl( \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon} + \lambda x_t \Bigr)
   \end{aligned}

:math:`v` is the EMA of :math:`\tilde c^2`, not of :math:`g^2` (Remark 3.2; the authors' README
formula squaring the raw gradient is wrong). Steps 3–6 are exactly an AdamW step on
:math:`\tilde c_t` (decoupled decay on the pre-update :math:`x_t`, torch ε placement), so they are
:func:`algorithms.adam.adam_update`. ``preconditioner="identity"`` is Algorithm 1 with
:math:`H_t = I`: :math:`x_{t+1} = x_t - \eta_t(m_t + \lambda x_t)` (:math:`\hat m_t` with
``bias_correction=True``), no :math:`v`. Estimators, the first step, clipping, schedules and the
routing of non-matrix parameters: :mod:`algorithms.mars`.

Exact reductions (tested in float64 to round-off): γ = 0 with clipping inactive ⇒
``torch.optim.AdamW`` (with clipping active ⇒ AdamW on the clipped gradients); approx without
clipping ⇒ :math:`m_t = \gamma g_t + (1-\gamma)\bar u_t`, :math:`\bar u` the EMA of g (docs/methods.md §2.5,
official first step); exact, γ = 1, ``preconditioner="identity"``, no clipping, no bias correction,
official first step ⇒ STORM with :math:`a = 1-\beta_1`.

Defaults
--------
=================  ======================  ===========================================================
argument           default                 source
=================  ======================  ===========================================================
lr                 3e-3                    code constructor; paper Table 11 uses 6e-3/3e-3/2e-3 (S/M/L)
betas              (0.95, 0.99)            paper Tables 11–12 and code
eps                1e-8                    code (the paper does not state it)
weight_decay       0                       code constructor (paper grid {1e-1, 1e-2, 1e-3}; GPT-2 configs 1e-2)
gamma              0.025                   paper (best of its grid) and code
estimator          "approx"                paper (main experiments) and code (``is_approx=True``)
first_step         "paper" / "official"    Alg. 1 (x₁ = x₀, c₁ = g₁) / code (last_grad = 0, c₁ = (1+k)g₁)
clip               "global" / "tensor"     Alg. 1–2 (norm of the whole vector) / code (per tensor)
clip_threshold     1.0                     paper and code
optimize_1d        True / False            ours (Alg. 2 acts on the whole vector) / code
routing            "official"              code (exactly 2-D); ``"ours"``: 2-D or more
lr_1d              3e-3                    code
betas_1d           (0.9, 0.95)             code
weight_decay_1d    0.1                     code (applies even in groups with weight_decay 0)
bias_correction    True                    paper Alg. 2 line 8 and code
preconditioner     "adam"                  Alg. 2; ``"identity"`` is Alg. 1 with H = I (ours)
replay_rng         True                    ours (exact estimator only)
=================  ======================  ===========================================================

(``a / b``: ``variant="paper"`` / ``variant="official"``; an explicit value overrides either.)

Variants
--------
``variant="paper"``: c₁ = g₁, the global-norm clip, every parameter on the MARS rule.
``variant="official"``: the code's c₁ = (1+k)·g₁, per-tensor clipping, and non-2-D parameters on
the AdamW fallback (betas_1d, lr_1d·lr_t/lr_0, weight_decay_1d). Both use the code's ε placement
(√v/√(1−β2ᵗ) + ε, identical to the paper's m̂/(√v̂ + ε)). Not implemented: the code's ``amsgrad``
(not in the paper), its fused/foreach kernels.

Third party: pytorch-optimizer 4.1.0's ``MARS`` (approx only) puts ε as (√(v + 1e-15) + ε)/√(1−β2ᵗ),
i.e. ε is divided by √(1−β2ᵗ) and 1e-15 sits inside the root; with both removed it agrees with
``variant="official"`` to round-off (tests/algorithms/test_mars.py, ``crosscheck``).

Shapes
------
Elementwise apart from the clipping norm, so every shape works on the MARS rule. Which parameters
take it: ``optimize_1d=True`` → all; otherwise ``routing`` decides (``"official"``: exactly 2-D
problem shapes, so 0-D/1-D *and 3-D/4-D conv kernels* take the AdamW fallback; ``"ours"``: 2-D or
more). Zero-size tensors step their counters and change nothing.

Memory (per parameter element, besides p and its gradient): approx 3 (m, v, prev_grad) = 1.5×
AdamW; exact 3 (m, v, x_prev); exact_lookahead 3 between steps (m, v, prev_grad), 4 between
:meth:`store_lookahead_grads` and ``step()``; the fallback 2 (m, v; +x_prev under exact). The
authors' exact mode keeps 4 (docs/methods.md §2.4). Transient: ``clip="global"`` (the paper's) needs every
parameter's :math:`c_t` before the first update, so one step briefly holds a full parameter-size copy
per group (measured on an H200: 105.6 MiB for a 25.6M-parameter model, as predicted); ``"tensor"`` and
``"none"`` finish each parameter before the next :math:`c_t` exists.
"""

from __future__ import annotations

from typing import Any

import torch

from .mars import MarsOptimizerBase, StepHyper
from ._registry import register
from .validation import check_choice
from .adam import adam_direction, adam_direction_foreach
from .weight_decay import decay_before, decay_before_foreach

__all__ = ["MarsAdamW", "adamw_preconditioned_step", "identity_preconditioned_step", "mars_adamw_precondition",
           "adamw_preconditioned_step_foreach", "identity_preconditioned_step_foreach", "mars_adamw_precondition_foreach",
           "PRECONDITIONERS"]

PRECONDITIONERS = ("adam", "identity")


def identity_preconditioned_step(param: torch.Tensor, exp_avg: torch.Tensor, step: int, *, lr: float, beta1: float,
                                 weight_decay: float, bias_correction: bool) -> None:
    r"""Algorithm 1, line 7, with :math:`H_t = I`: :math:`x \leftarrow x - \eta(m_t + \lambda x)` (:math:`\hat m_t`
    with ``bias_correction``), in place, given :math:`m_t`."""
    direction = exp_avg / (1 - beta1**step) if bias_correction else exp_avg
    decay_before(param, lr, weight_decay)
    param.add_(direction, alpha=-lr)


def adamw_preconditioned_step(param: torch.Tensor, c: torch.Tensor, exp_avg: torch.Tensor, exp_avg_sq: torch.Tensor,
                              step: int, *, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float,
                              bias_correction: bool) -> None:
    r"""Algorithm 2, lines 7–9, in place, given :math:`m_t` and the clipped :math:`\tilde c_t`: :math:`v_t` (the EMA
    of :math:`\tilde c_t^2`), then the AdamW step on the decayed :math:`x_t` (torch ε placement)."""
    decay_before(param, lr, weight_decay)
    exp_avg_sq.mul_(beta2).addcmul_(c, c, value=1 - beta2)
    direction = adam_direction(exp_avg, exp_avg_sq, step, beta1=beta1, beta2=beta2, eps=eps, eps_placement="torch",
                               bias_correction=bias_correction)
    param.add_(direction, alpha=-lr)


def mars_adamw_precondition(param: torch.Tensor, c: torch.Tensor, state: dict[str, Any], group: dict[str, Any],
                            hp: StepHyper) -> None:
    """Line 7 of Algorithm 1 for MARS-AdamW: the group's preconditioner (Adam's, or the identity)."""
    if group["preconditioner"] == "identity":
        identity_preconditioned_step(param, state["exp_avg"], hp.step, lr=hp.lr, beta1=hp.beta1,
                                     weight_decay=group["weight_decay"], bias_correction=group["bias_correction"])
        return
    adamw_preconditioned_step(param, c, state["exp_avg"], state["exp_avg_sq"], hp.step, lr=hp.lr, beta1=hp.beta1,
                              beta2=hp.beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                              bias_correction=group["bias_correction"])


def identity_preconditioned_step_foreach(params: list[torch.Tensor], exp_avgs: list[torch.Tensor], step: int, *,
                                         lr: float, beta1: float, weight_decay: float, bias_correction: bool) -> None:
    """:func:`identity_preconditioned_step` on lists of tensors that share ``step``."""
    directions = torch._foreach_div(exp_avgs, 1 - beta1**step) if bias_correction else exp_avgs
    decay_before_foreach(params, lr, weight_decay)
    torch._foreach_add_(params, directions, alpha=-lr)


def adamw_preconditioned_step_foreach(params: list[torch.Tensor], cs: list[torch.Tensor], exp_avgs: list[torch.Tensor],
                                      exp_avg_sqs: list[torch.Tensor], step: int, *, lr: float, beta1: float, beta2: float,
                                      eps: float, weight_decay: float, bias_correction: bool) -> None:
    """:func:`adamw_preconditioned_step` on lists of tensors that share ``step``."""
    decay_before_foreach(params, lr, weight_decay)
    torch._foreach_mul_(exp_avg_sqs, beta2)
    torch._foreach_addcmul_(exp_avg_sqs, cs, cs, value=1 - beta2)
    directions = adam_direction_foreach(exp_avgs, exp_avg_sqs, step, beta1=beta1, beta2=beta2, eps=eps,
                                        eps_placement="torch", bias_correction=bias_correction)
    torch._foreach_add_(params, directions, alpha=-lr)


def mars_adamw_precondition_foreach(params: list[torch.Tensor], cs: list[torch.Tensor], states: list[dict[str, Any]],
                                    group: dict[str, Any], hp: StepHyper) -> None:
    """:func:`mars_adamw_precondition` on a bucket of tensors that share a device, a dtype and a step."""
    exp_avgs = [state["exp_avg"] for state in states]
    if group["preconditioner"] == "identity":
        identity_preconditioned_step_foreach(params, exp_avgs, hp.step, lr=hp.lr, beta1=hp.beta1,
                                             weight_decay=group["weight_decay"], bias_correction=group["bias_correction"])
        return
    adamw_preconditioned_step_foreach(params, cs, exp_avgs, [state["exp_avg_sq"] for state in states], hp.step,
                                      lr=hp.lr, beta1=hp.beta1, beta2=hp.beta2, eps=group["eps"],
                                      weight_decay=group["weight_decay"], bias_correction=group["bias_correction"])


@register("mars_adamw")
class MarsAdamW(MarsOptimizerBase):
    __doc__ = __doc__
    paper = "Yuan et al., ICML 2025, arXiv 2411.10438 (Algorithm 2)"
    has_fast_path = True
    VARIANT_DEFAULTS = {
        "paper": dict(first_step="paper", clip="global", optimize_1d=True),
        "official": dict(first_step="official", clip="tensor", optimize_1d=False),
    }

    def __init__(
        self,
        params,
        lr: float = 3e-3,
        betas: tuple[Any, Any] = (0.95, 0.99),
        eps: float = 1e-8,
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
        bias_correction: bool = True,
        preconditioner: str = "adam",
        replay_rng: bool = True,
        seed: int = 0,
        nonfinite: str = "raise",
        batch_dims: int = 0,
        fast: bool | str = False,
    ) -> None:
        resolved = self.resolve_variant(variant, first_step=first_step, clip=clip, optimize_1d=optimize_1d)
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, gamma=gamma, estimator=estimator,
            variant=variant, clip_threshold=clip_threshold, routing=routing, lr_1d=lr_1d, betas_1d=betas_1d,
            weight_decay_1d=weight_decay_1d, bias_correction=bias_correction, preconditioner=preconditioner,
            replay_rng=replay_rng, **resolved,
        )
        super().__init__(params, defaults, seed=seed, nonfinite=nonfinite, batch_dims=batch_dims, fast=fast)

    def _validate_specific(self, group: dict[str, Any]) -> None:
        check_choice("preconditioner", group["preconditioner"], PRECONDITIONERS)

    def _uses_bias_correction(self, group: dict[str, Any]) -> bool:
        return True

    def _mars_buffers(self, p, group) -> tuple[str, ...]:
        return ("exp_avg",) if group["preconditioner"] == "identity" else ("exp_avg", "exp_avg_sq")

    def _precondition(self, p, c, state, group, hp: StepHyper) -> None:
        mars_adamw_precondition(p, c, state, group, hp)

    def _precondition_foreach(self, params, cs, states, group, hp: StepHyper) -> None:
        mars_adamw_precondition_foreach(params, cs, states, group, hp)
