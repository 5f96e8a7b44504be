r"""MARS-Shampoo (Yuan et al., ICML 2025, arXiv 2411.10438v4, Algorithm 4; one-step Shampoo, eq. 3.21),
exact and approximate, with the authors' code (AGI-Arena/MARS ``mars.py``, ``mars_type="mars-shampoo"``)
as ``variant="official"``.

.. math::

   \begin{aligned}
   &\textbf{input: } \eta_t,\ \beta_{1,t},\ \gamma_t,\ \lambda; \quad m_0 = 0,\ x_1 = x_0
     \quad (X \in \mathbb{R}^{m \times n}) \\
   &\textbf{for } t = 1, 2, \dots \\
   &\quad c_t = g_t + \gamma_t \tfrac{\beta_{1,t}}{1-\beta_{1,t}} (g_t - h_t)
     \qquad (\text{official: } \tilde c_t = c_t \min(1, \tau/\lVert c_t\rVert_2);
     \text{ Alg. 4: no clipping}) \\
   &\quad m_t = \beta_{1,t} m_{t-1} + (1-\beta_{1,t}) \tilde c_t \\
   &\quad \text{paper: } U \Sigma V^\top = \operatorname{SVD}(m_t), \quad O_t = U V^\top
     \;\bigl(= (m_t m_t^\top)^{-1/4} m_t (m_t^\top m_t)^{-1/4}\bigr) \\
   &\quad \text{official: } O_t = \operatorname{NS}_5\bigl(m_t/(1-\beta_{1,t})\bigr)
     \cdot \sqrt{\max(1, m/n)} \\
   &\quad x_{t+1} = x_t - \eta_t \bigl( O_t + \lambda x_t \bigr)
   \end{aligned}

**Exact SVD** (``orthogonalizer="svd"``): the polar factor :math:`U \,\mathrm{diag}(\mathbb 1[\sigma_i > \delta])\, V^\top`
with :math:`\delta = \max(m,n)\,\epsilon_{\rm mach}\,\sigma_{\max}` (the ``matrix_rank`` tolerance): for a
full-rank :math:`m_t` this is exactly :math:`UV^\top`; for a rank-deficient one the directions of
zero singular values (arbitrary in an SVD) are dropped, so the result is unique and a zero
momentum gives a zero step — the same fixed point Newton–Schulz has. A problem whose momentum
holds NaN/Inf gets a NaN direction (the others in the batch are unaffected).

**Newton–Schulz** (``orthogonalizer="newton_schulz"``, the code's ``NewtonSchulz``): with the matrix
transposed so that it is wide, :math:`X_0 = M/(\lVert M\rVert_F + \epsilon)` (ε = the optimizer's
``eps``), then ``ns_steps`` times :math:`X \leftarrow aX + b\,(XX^\top)X + c\,(XX^\top)^2 X`,
:math:`(a, b, c) = (3.4445, -4.7750, 2.0315)`. This maps each singular value σ of
:math:`X_0` to :math:`p^{\circ 5}(\sigma)` with :math:`p(s) = as + bs^3 + cs^5`, which lands in
roughly [0.7, 1.2], not exactly 1: it is *not* the polar factor. The code runs it in bfloat16
(``ns_dtype="bfloat16"``, the official default); ``ns_dtype=None`` runs it in the parameter's dtype
(use that for float64 oracle work). The result is cast back to the parameter's dtype, so no
reduced-precision tensor is stored. The rescale by :math:`1/(1-\beta_1)` is the code's; it only
changes the relative size of ε.

**Rounding** (``ns_rounding``). In a reduced ``ns_dtype`` the place of each rounding changes the result at
the dtype's precision, so the two variants put them differently:

* ``"authors"`` (``variant="official"``): the authors' ``NewtonSchulz`` casts :math:`M` to bfloat16 *before*
  dividing by :math:`\lVert M\rVert_F + \epsilon` (the norm of the uncast :math:`M`), and its
  ``c * A @ B`` evaluates as :math:`(cA)B`. Matched here, one NS step agrees with a transcription of that
  function bit for bit (tests/algorithms/test_mars.py); without it the official bf16 direction differed
  from theirs by about 5 % already at step 1.
* ``"accurate"`` (``variant="paper"``): normalise in the parameter's dtype, cast once, and evaluate
  :math:`c\,(A\,(AX))`, the order that keeps the most precision.

In the parameter's dtype (``ns_dtype=None``) the two differ only at that dtype's round-off. What remains
different from the authors' step lies outside NS and is at float32 round-off: they multiply
:math:`m_t` by :math:`1/(1-\beta_1)` where we divide, and fold the decay into the update
(:math:`x - \eta(O + \lambda x)` as one tensor) where we scale :math:`x` first.

Defaults
--------
=================  ======================  ===========================================================
argument           default                 source
=================  ======================  ===========================================================
lr                 3e-3                    code constructor (tuned for MARS-AdamW only; re-tune)
betas              (0.95, 0.99)            paper and code; β2 is used only by the MARS-AdamW rule
eps                1e-8                    code (also the NS normalisation's ε)
weight_decay       0                       code constructor
gamma              0.025                   paper and code
estimator          "approx"                paper and code
first_step         "paper" / "official"    Alg. 1 (c₁ = g₁) / code (c₁ = (1+k)g₁)
clip               "none" / "tensor"       Alg. 4 (no clipping) / code (per tensor)
clip_threshold     1.0                     code
orthogonalizer     "svd" / "newton_schulz" Alg. 4 ("any SVD solver") / code
ns_steps           5                       code
ns_coefficients    (3.4445, -4.775, 2.0315) code (Muon's quintic)
ns_dtype           None / "bfloat16"       ours (parameter dtype) / code
ns_rounding        "accurate" / "authors"  ours / code (where NS rounds to ``ns_dtype``; see "Rounding")
shape_factor       False / True            Alg. 4 / code (:math:`\sqrt{\max(1, m/n)}`)
optimize_1d        True / False            ours / code
routing            "official"              code (exactly 2-D); ``"ours"``: 2-D or more, reshaped
lr_1d, betas_1d,   3e-3, (0.9, 0.95), 0.1  code (AdamW fallback)
weight_decay_1d
bias_correction    True                    code (MARS-AdamW rule for non-matrix parameters)
replay_rng         True                    ours (exact estimator only)
=================  ======================  ===========================================================

(``a / b``: ``variant="paper"`` / ``variant="official"``.)

Variants
--------
``"paper"``: Algorithm 4 — no clipping, c₁ = g₁, exact SVD polar factor, no shape factor; every
non-matrix parameter on the MARS-AdamW rule (``optimize_1d=True``; Algorithm 4 covers matrices
only, so this part is ours). ``"official"``: per-tensor clipping, c₁ = (1+k)g₁, bf16 NS₅ on
:math:`m_t/(1-\beta_1)` times :math:`\sqrt{\max(1, m/n)}`, non-2-D parameters on the AdamW fallback
(with ``optimize_1d=True``: the MARS-AdamW rule, as in the code).

Shapes
------
A parameter is a matrix when its problem shape (after ``batch_dims``) is exactly 2-D
(``routing="official"``) or 2-D or more (``"ours"``, reshaped to :math:`d_0 \times \prod_{i>0} d_i`,
and :math:`m, n` of the shape factor are those of the reshaped matrix — pytorch-optimizer uses
:math:`d_0/d_1` of the unreshaped tensor). Matrices are orthogonalised per independent problem
(SVD and NS are batched). Non-matrices: MARS-AdamW rule or AdamW fallback, per ``optimize_1d``.
Zero-size matrices take a zero step.

Fast path (``fast=``): the MARS bookkeeping is multi-tensor (:func:`algorithms.mars.mars_step_foreach`), the
matrices of one shape are orthogonalised as one stack (:func:`shampoo_step_foreach`: one batched SVD or
Newton–Schulz call), the non-matrix parameters take the multi-tensor AdamW rules.

Memory: approx 2 per matrix element (m, prev_grad) plus the orthogonalisation's temporaries
(NS: about 3 × (min side)² per matrix; SVD: U, Σ, V); the code keeps 3.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .mars import MarsOptimizerBase, StepHyper, is_matrix, matrix_view_shape
from ._registry import register
from .validation import check_bool, check_choice, check_int, check_real
from ._foreach import pick
from ._stacked import STACK_ELEMENTS
from .mars_adamw import adamw_preconditioned_step, adamw_preconditioned_step_foreach
from .weight_decay import decay_before, decay_before_foreach

__all__ = [
    "MarsShampoo",
    "NS_COEFFICIENTS",
    "ORTHOGONALIZERS",
    "NS_DTYPES",
    "NS_ROUNDINGS",
    "polar_factor",
    "newton_schulz",
    "orthogonalize",
    "shape_factor",
    "shampoo_step",
    "shampoo_step_foreach",
]

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
ORTHOGONALIZERS = ("svd", "newton_schulz")
NS_ROUNDINGS = ("accurate", "authors")
NS_DTYPES = {"float64": torch.float64, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def polar_factor(M: torch.Tensor) -> torch.Tensor:
    """:math:`U\\,\\mathrm{diag}(\\mathbb 1[\\sigma > \\delta])\\,V^\\top` of each matrix ``[..., m, n]`` (see module docstring)."""
    if M.numel() == 0:
        return torch.zeros_like(M)
    # no half-precision SVD exists: float16/bfloat16 matrices are decomposed in float32 and cast back
    work = M.float() if M.dtype in (torch.float16, torch.bfloat16) else M
    finite = torch.isfinite(work).all(dim=-1, keepdim=True).all(dim=-2, keepdim=True)
    U, S, Vh = torch.linalg.svd(torch.where(finite, work, torch.zeros_like(work)), full_matrices=False)
    tolerance = S.amax(dim=-1, keepdim=True) * (max(M.shape[-2:]) * torch.finfo(S.dtype).eps)
    kept = (S > tolerance).to(work.dtype)
    O = (U * kept.unsqueeze(-2)) @ Vh
    return torch.where(finite, O, torch.full_like(O, math.nan)).to(M.dtype)


def _nonzero(denominator: torch.Tensor) -> torch.Tensor:
    """A zero matrix with ``eps = 0`` is divided by 1 (its step is zero), not by 0."""
    return torch.where(denominator > 0, denominator, torch.ones_like(denominator))


def newton_schulz(
    M: torch.Tensor,
    *,
    steps: int = 5,
    coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
    eps: float = 1e-8,
    compute_dtype: torch.dtype | None = None,
    rounding: str = "accurate",
) -> torch.Tensor:
    r"""``steps`` quintic Newton–Schulz iterations on each matrix ``[..., m, n]``, in ``compute_dtype``.

    ``rounding`` places the roundings to ``compute_dtype`` (module docstring, "Rounding"): ``"accurate"``
    normalises in ``M``'s dtype and evaluates :math:`c\,(A\,(AX))`; ``"authors"`` casts ``M`` first, divides by
    the norm of the uncast ``M``, and evaluates :math:`(cA)(AX)`, as the authors' code does.
    """
    check_choice("rounding", rounding, NS_ROUNDINGS)
    if M.numel() == 0:
        return torch.zeros_like(M)
    a, b, c = coefficients
    dtype = compute_dtype or M.dtype
    transpose = M.shape[-2] > M.shape[-1]
    if rounding == "authors":  # cast, then divide the rounded entries by the norm of M itself
        X = (M.to(dtype) / _nonzero(torch.linalg.vector_norm(M, dim=(-2, -1), keepdim=True) + eps)).to(dtype)
        X = X.mT if transpose else X
    else:  # normalise in M's dtype, then cast
        X = M.mT if transpose else M
        X = (X / _nonzero(torch.linalg.matrix_norm(X, keepdim=True) + eps)).to(dtype)
    for _ in range(steps):
        A = X @ X.mT
        AX = A @ X
        X = a * X + b * AX + ((c * A) @ AX if rounding == "authors" else c * (A @ AX))
    X = X.mT if transpose else X
    return X.to(M.dtype)


def orthogonalize(M: torch.Tensor, group: dict[str, Any]) -> torch.Tensor:
    """The group's orthogonaliser applied to each matrix of ``M``."""
    if group["orthogonalizer"] == "svd":
        return polar_factor(M)
    dtype = NS_DTYPES[group["ns_dtype"]] if group["ns_dtype"] is not None else None
    return newton_schulz(M, steps=group["ns_steps"], coefficients=tuple(group["ns_coefficients"]),
                         eps=group["eps"], compute_dtype=dtype, rounding=group["ns_rounding"])


def shape_factor(rows: int, cols: int) -> float:
    """The code's :math:`\\sqrt{\\max(1, m/n)}`."""
    return math.sqrt(max(1.0, rows / cols)) if cols else 1.0


def shampoo_step(
    param: torch.Tensor,
    exp_avg: torch.Tensor,
    view_shape: tuple[int, ...],
    group: dict[str, Any],
    *,
    lr: float,
    beta1: float,
) -> None:
    """Algorithm 4, lines 7–8 (paper) or the code's NS step, in place, given :math:`m_t`.

    ``view_shape`` = ``(*batch, m, n)``, the matrix view of ``param``.
    """
    O = orthogonalize((exp_avg / (1 - beta1)).reshape(view_shape), group)
    if group["shape_factor"]:
        O = O * shape_factor(view_shape[-2], view_shape[-1])
    decay_before(param, lr, group["weight_decay"])
    param.add_(O.reshape(param.shape), alpha=-lr)


def shampoo_step_foreach(
    params: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    view_shape: tuple[int, ...],
    group: dict[str, Any],
    *,
    lr: float,
    beta1: float,
) -> None:
    """:func:`shampoo_step` on matrices of one shape: the :math:`m_t` are stacked and orthogonalised by one batched
    SVD / Newton–Schulz call (each matrix separately, as the batched orthogonalisers are); then the decay and the
    step are multi-tensor."""
    per = max(1, STACK_ELEMENTS // max(1, params[0].numel()))
    for start in range(0, len(params), per):
        chunk, moments = params[start:start + per], exp_avgs[start:start + per]
        O = orthogonalize((torch.stack(moments) / (1 - beta1)).reshape(len(chunk), *view_shape), group)
        if group["shape_factor"]:
            O = O * shape_factor(view_shape[-2], view_shape[-1])
        decay_before_foreach(chunk, lr, group["weight_decay"])
        torch._foreach_add_(chunk, list(O.reshape(len(chunk), *chunk[0].shape).unbind(0)), alpha=-lr)


@register("mars_shampoo")
class MarsShampoo(MarsOptimizerBase):
    __doc__ = __doc__
    paper = "Yuan et al., ICML 2025, arXiv 2411.10438 (Algorithm 4)"
    has_fast_path = True
    VARIANT_DEFAULTS = {
        "paper": dict(first_step="paper", clip="none", optimize_1d=True, orthogonalizer="svd",
                      shape_factor=False, ns_dtype=None, ns_rounding="accurate"),
        "official": dict(first_step="official", clip="tensor", optimize_1d=False, orthogonalizer="newton_schulz",
                         shape_factor=True, ns_dtype="bfloat16", ns_rounding="authors"),
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
        orthogonalizer: str | None = None,
        ns_steps: int = 5,
        ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
        ns_dtype: str | None = "variant",
        ns_rounding: str | None = None,
        shape_factor: bool | None = None,
        optimize_1d: bool | None = None,
        routing: str = "official",
        lr_1d: float = 3e-3,
        betas_1d: tuple[float, float] = (0.9, 0.95),
        weight_decay_1d: float = 0.1,
        bias_correction: bool = True,
        replay_rng: bool = True,
        seed: int = 0,
        nonfinite: str = "raise",
        batch_dims: int = 0,
        fast: bool | str = False,
    ) -> None:
        resolved = self.resolve_variant(variant, first_step=first_step, clip=clip, optimize_1d=optimize_1d,
                                        orthogonalizer=orthogonalizer, shape_factor=shape_factor,
                                        ns_rounding=ns_rounding)
        if ns_dtype == "variant":  # None is a real choice here (the parameter's dtype)
            ns_dtype = self.VARIANT_DEFAULTS[variant]["ns_dtype"]
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, gamma=gamma, estimator=estimator,
            variant=variant, clip_threshold=clip_threshold, ns_steps=ns_steps,
            ns_coefficients=tuple(ns_coefficients) if isinstance(ns_coefficients, (tuple, list)) else ns_coefficients,
            ns_dtype=ns_dtype, routing=routing, lr_1d=lr_1d, betas_1d=betas_1d, weight_decay_1d=weight_decay_1d,
            bias_correction=bias_correction, replay_rng=replay_rng, **resolved,
        )
        super().__init__(params, defaults, seed=seed, nonfinite=nonfinite, batch_dims=batch_dims, fast=fast)

    def _validate_specific(self, group: dict[str, Any]) -> None:
        check_choice("orthogonalizer", group["orthogonalizer"], ORTHOGONALIZERS)
        check_int("ns_steps", group["ns_steps"], minimum=1)
        coefficients = group["ns_coefficients"]
        if not isinstance(coefficients, (tuple, list)) or len(coefficients) != 3:
            raise TypeError(f"ns_coefficients must be a triple (a, b, c), got {coefficients!r}")
        for i, value in enumerate(coefficients):
            check_real(f"ns_coefficients[{i}]", value)
        if group["ns_dtype"] is not None:
            check_choice("ns_dtype", group["ns_dtype"], tuple(NS_DTYPES))
        check_bool("shape_factor", group["shape_factor"])
        check_choice("ns_rounding", group["ns_rounding"], NS_ROUNDINGS)

    def _uses_bias_correction(self, group: dict[str, Any]) -> bool:
        return bool(group["optimize_1d"])  # non-matrix parameters may then take the MARS-AdamW rule

    def _mars_buffers(self, p, group) -> tuple[str, ...]:
        return ("exp_avg",) if is_matrix(p, group) else ("exp_avg", "exp_avg_sq")

    def _precondition_foreach(self, params, cs, states, group, hp: StepHyper) -> None:
        others = [i for i, p in enumerate(params) if not is_matrix(p, group)]
        if others:
            adamw_preconditioned_step_foreach(
                pick(params, others), pick(cs, others), [states[i]["exp_avg"] for i in others],
                [states[i]["exp_avg_sq"] for i in others], hp.step, lr=hp.lr, beta1=hp.beta1, beta2=hp.beta2,
                eps=group["eps"], weight_decay=group["weight_decay"], bias_correction=group["bias_correction"])
        shapes: dict[tuple[int, ...], list[int]] = {}
        for i, p in enumerate(params):
            if is_matrix(p, group):
                shapes.setdefault(tuple(p.shape), []).append(i)
        for idx in shapes.values():
            shampoo_step_foreach(pick(params, idx), [states[i]["exp_avg"] for i in idx],
                                 matrix_view_shape(params[idx[0]], group), group, lr=hp.lr, beta1=hp.beta1)

    def _precondition(self, p, c, state, group, hp: StepHyper) -> None:
        if is_matrix(p, group):
            shampoo_step(p, state["exp_avg"], matrix_view_shape(p, group), group, lr=hp.lr, beta1=hp.beta1)
            return
        adamw_preconditioned_step(p, c, state["exp_avg"], state["exp_avg_sq"], hp.step, lr=hp.lr, beta1=hp.beta1,
                                  beta2=hp.beta2, eps=group["eps"], weight_decay=group["weight_decay"],
                                  bias_correction=group["bias_correction"])
