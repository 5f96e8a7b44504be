r"""LDAdam (Robert, Safaryan, Modoranu, Alistarh, "LDAdam: Adaptive Optimization from Low-Dimensional
Gradient Statistics", ICLR 2025, arXiv 2410.16103), with the authors' code as ``variant="official"``.

.. math::

   \begin{aligned}
   &\textbf{input: } \eta,\ (\beta_1, \beta_2),\ \epsilon,\ \lambda,\ \text{rank } r,\ \rho,
     \ W \in \mathbb{R}^{m \times n} \ (\text{left side shown: } P_t \in \mathbb{R}^{m \times r}) \\
   &\textbf{init: } e_1 = 0,\ M_0 = V_0 = 0 \in \mathbb{R}^{r \times n} \\
   &\textbf{for } t = 1, 2, \dots \\
   &\quad a_t \leftarrow g_t + e_t \hfill \text{(accumulate the error feedback)} \\
   &\quad t = 1:\ P_1 \leftarrow \text{top-}r \text{ left singular vectors of } a_1 \\
   &\quad t > 1:\ b_t \leftarrow \rho\, \frac{P_{t-1} M_{t-1}}{1-\beta_1^{t-1}} + (1-\rho)\, a_t,
          \quad P_t \leftarrow \operatorname{qr}\!\big(b_t\, b_t^\top P_{t-1}\big)
          \hfill \text{(one warm-started block power step)} \\
   &\quad \hat g_t \leftarrow P_t^\top a_t, \qquad C_t \leftarrow P_t^\top P_{t-1} \ (C_1 = 0),
          \qquad \tilde M \leftarrow C_t M_{t-1} \\
   &\quad e_{t+1} \leftarrow a_t - P_t \hat g_t
          + \tfrac{\beta_1}{1-\beta_1}\big(P_{t-1} M_{t-1} - P_t \tilde M\big)
          \hfill \text{(generalized error feedback)} \\
   &\quad t > 1:\ \tilde V \leftarrow c_2 \Big| (C_t \circ C_t)
          \Big(\frac{V_{t-1}}{c_2} - \frac{M_{t-1}^2}{c_1^2}\Big) + \frac{\tilde M^2}{c_1^2} \Big|,
          \quad c_1 = 1-\beta_1^{t-1},\ c_2 = 1-\beta_2^{t-1}
          \quad (t = 1:\ \tilde V = V_0 = 0) \\
   &\quad M_t \leftarrow \beta_1 \tilde M + (1-\beta_1)\hat g_t, \qquad
          V_t \leftarrow \beta_2 \tilde V + (1-\beta_2)\hat g_t^{2} \\
   &\quad D_t \leftarrow \frac{M_t/(1-\beta_1^t)}{\sqrt{V_t/(1-\beta_2^t)} + \epsilon} \\
   &\quad W_t \leftarrow (1-\eta_t\lambda)\, W_{t-1} - \eta_t\, P_t D_t
   \end{aligned}

Squares and :math:`|\cdot|` are elementwise. The second-moment transfer moves the bias-corrected
variance :math:`\hat v - \hat m^2` as if the coordinates were independent (squared change of basis)
and adds the moved squared mean back; :math:`|\cdot|` guards round-off negatives.

Provenance
----------
**The paper's algorithm box is NOT VERIFIED** (unverified): no line of the paper's Algorithm, its
assumptions or its theorems has been checked against the paper's text. The box above is the rule of
the authors' code ``IST-DASLab/LDAdam`` @ f3c5daf (``ldadamw_torch/ldadamw.py``), re-derived from it
(docs/methods.md §3.1, checked to 2e-16 against the official optimizer). The abstract confirms
only the ingredients: a "projection-aware update rule" for the states and a "generalized error
feedback" mechanism; secondary sources describe "block power iteration with warm initialization …
at each step" and a Gram–Schmidt step (the code's ``Gram_Schmidt`` is Householder QR). Every choice
that the paper might make differently is therefore an explicit constructor argument
(``rho``, ``proj_method``, ``error_feedback``, ``proj_side``, ``square_side``, ``eps_placement``,
``weight_decay_timing``), with the authors' code as the default; none of them is asserted to be the
paper's. Paper numbering: the algorithm box's number is unverified; the reviews name exactly two
convergence results, Theorem 1 and Theorem 2, and an Assumption 2 that bounds the gradient norm
(secondary sources; statements and rates unverified).

Cross-check: ``variant="official"`` agrees with ``ldadamw_torch.LDAdamW`` (the authors' code) to
≤ 1e-12 in float64 and ≤ 1e-5 in float32 over 50 random-gradient steps, tall/wide/square,
``std``/``reverse_std``, EF on/off, power iteration and SVD (measured ≈ 1e-16 in float64;
``tests/algorithms/test_ldadam.py -m crosscheck``, which skips when the package is absent).

Defaults
--------
====================  ===================  ===============================================================
argument              default              source
====================  ===================  ===============================================================
lr                    1e-3                 authors' code (constructor; also the C4 script)
betas                 (0.908, 0.99)        authors' code (constructor; also the C4 script)
eps                   1e-8                 authors' code
weight_decay          0                    authors' code
rank                  16                   authors' code (constructor; the C4/GLUE scripts use 8)
rho (ρ)               0.908                authors' code
proj_side             "std"                authors' code (``proj_type``): projects the smaller dimension
square_side           "left"               authors' code (``m <= n`` → left)
proj_method           "power_iteration"    authors' code
error_feedback        True                 authors' code
eps_placement         "torch"              authors' code (ε added after bias correction)
weight_decay_timing   "before"             authors' code (``p.mul_(1 - lr·wd)`` before the update)
variant               "paper"              ours (decompositions in the parameter dtype)
====================  ===================  ===============================================================

The paper's own defaults are unverified; the table gives the code's.

Variants
--------
``variant="official"`` reproduces the code at f3c5daf: Householder QR always in float32 and the
SVD in float32 for every non-float32 dtype (both cast back, so no float32 tensor is stored), raw
``torch.linalg.svd`` signs, the SVD at step 1 then one power step every step, left projection for
square matrices under both ``std`` *and* ``reverse_std`` (a quirk of the code's side test), a
``ValueError`` for a rank above the projected dimension, torch-style ε, decay before the update.

``variant="paper"`` runs the same rule with every decomposition in the parameter's dtype (float64
stays float64) and pinned SVD signs (largest-magnitude entry of each singular vector positive);
``reverse_std`` is the exact opposite of ``std``. LDAdam is invariant to the signs of the basis
columns (:math:`C \circ C` is sign-free and :math:`M` rotates with the basis), so the two variants
differ only by the float32 round-off of the official decompositions (≈1e-7 in float64).

Differences from the authors' code (both variants; deliberate)
---------------------------------------------------------------
* **Error-feedback buffer in the optimizer state.** The code keeps :math:`e_{t+1}` in ``p.grad``
  and overrides ``zero_grad()`` to leave it there, so backward adds :math:`g_t` onto it; any
  ``model.zero_grad()`` / ``set_to_none``, gradient assignment, gradient clipping or all-reduce
  silently changes the algorithm (clipping acts on :math:`a_t`, not :math:`g_t`). Here the buffer
  is ``state["error_buffer"]`` and :math:`a_t = \texttt{p.grad} + e_t` is formed inside
  :meth:`step`: the gradient is never modified, may be freed or clipped, and the trajectory equals
  the code's when ``p.grad`` holds exactly :math:`g_t` at each step. Cost: one ``m × n`` state
  tensor per projected matrix, which the code instead borrows from the gradient buffer (which then
  can never be freed).
* **Step counter per parameter, in the state** (``state["step"]``). The code uses one
  optimizer-global attribute (not in ``state_dict``, so a resumed run restarts at step 1 with an
  SVD and reinterprets the old moments); it equals ours whenever every parameter gets a gradient at
  every step. Resuming here is bit-exact.
* Hyperparameters are read from the group at every step (the code freezes betas, eps, ρ and rank
  at construction), and states are created lazily at the first gradient (the code creates them in
  ``__init__`` and crashes on a parameter whose first gradient is ``None``).
* ``proj_method="svd_lowrank"`` uses this toolkit's Halko–Martinsson–Tropp sketch with the code's
  sizes (oversampling 2, one power iteration) and the optimizer's own seeded generator; the code
  calls ``torch.svd_lowrank`` on the global RNG, so the random draws differ.

Shapes
------
A parameter is projected when its group has ``lowrank=True`` (default) and its problem shape
(after ``batch_dims``) is a non-empty matrix; every other parameter (0-D, 1-D, 3-D/4-D, zero-size,
``lowrank=False`` groups) takes a dense AdamW step with torch-style ε and decay before the update,
the code's rule for ``enable_lowrank=False`` groups (its scripts make only attention/MLP
``nn.Linear`` weights low-rank; a 1-D tensor in a low-rank group crashes the code). The rank must
satisfy ``1 <= rank <= min(m, n)`` for every projected matrix (checked at construction: the code
raises for a rank above the projected dimension and crashes on shape mismatches in between).
Leading ``batch_dims`` are independent problems: the SVD, QR and every product are batched.

Exact reductions (tested in float64): a ``1 × n`` (or ``n × 1``) matrix at rank 1 is
``torch.optim.AdamW``, with error feedback on or off; at full rank the lifted first moment
:math:`P_t M_t` equals Adam's first moment (the parameters do *not* equal Adam's: the second moment
lives in the rotating basis :math:`P_t`); dense groups are ``torch.optim.AdamW``.

State of a projected parameter (``[*B]`` = the batch dims; d = m for a left basis, n for a right one):
``step`` (CPU int64 0-D), ``basis`` ``[*B, d, r]`` (orthonormal columns; the code stores a right basis
transposed, ``r × n``), ``exp_avg`` and ``exp_avg_sq`` ``[*B, r, n]`` (left) or ``[*B, m, r]``
(right), ``error_buffer`` ``[*B, m, n]`` (with ``error_feedback=True``), ``rng_state`` (only with
``proj_method="svd_lowrank"``).

Fast path (``fast=``, :mod:`algorithms._stacked`): the projected matrices of one shape are stepped as one
stack (one batched power iteration / SVD / QR and batched products per step); the dense parameters take
:func:`algorithms._lowrank.dense_adamw_update_foreach`. With ``proj_method="svd_lowrank"`` every step
draws a sketch from the parameter's own generator, so those matrices stay on the reference update, one
by one (a stack has no generator; the streams stay those of the reference path).
"""

from __future__ import annotations

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
    block_power_step,
    change_of_basis,
    project,
    project_back,
    projection_side,
    randomized_singular_pairs,
    rotate_coordinates,
    top_singular_basis,
)
from ._registry import register
from .grouping import Routing
from .validation import check_beta, check_bool, check_choice, check_int
from .adam import adam_direction, adam_update_foreach, validate_adam_hyper
from .weight_decay import decay_after, decay_before

__all__ = [
    "LDAdam",
    "PROJ_METHODS",
    "ldadam_update",
    "ldadam_side",
    "initial_basis",
    "next_basis",
    "momentum_blend",
    "transfer_second_moment",
    "error_feedback_residual",
]

VARIANTS = ("paper", "official")
PROJ_METHODS = ("power_iteration", "svd", "svd_lowrank")
#: the code's ``torch.svd_lowrank(q=rank + 2, niter=1)``
SVD_LOWRANK_OVERSAMPLING = 2
SVD_LOWRANK_POWER_ITERS = 1


# ----------------------------------------------------------------------------- layout
def decomposition_settings(variant: str) -> dict[str, Any]:
    """The dtype the decompositions run in and the SVD sign convention of a variant."""
    if variant == "official":
        return {"compute_dtype": torch.float32, "sign": "none"}
    return {"compute_dtype": None, "sign": "max_abs"}


def ldadam_side(m: int, n: int, proj_side: str, square_side: str, variant: str) -> str:
    """The projected side of an ``m × n`` matrix.

    The code's test sends a square matrix left under ``reverse_std`` as well as under ``std``
    (``m <= n`` / ``m >= n``); ``variant="official"`` keeps that, ``"paper"`` makes ``reverse_std``
    the exact opposite of ``std``.
    """
    if variant == "official" and m == n and proj_side in ("std", "reverse_std"):
        return "left"
    return projection_side(m, n, proj_side, square=square_side)


# ----------------------------------------------------------------------------- subspace
def initial_basis(
    a: torch.Tensor,
    rank: int,
    side: str,
    proj_method: str,
    *,
    compute_dtype: torch.dtype | None,
    sign: str,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """:math:`P_1`: the top-``rank`` singular basis of the first accumulated gradient (SVD; a sketch
    under ``proj_method="svd_lowrank"``)."""
    if proj_method == "svd_lowrank":
        basis, _ = randomized_singular_pairs(
            a, rank, side, oversampling=SVD_LOWRANK_OVERSAMPLING, power_iters=SVD_LOWRANK_POWER_ITERS,
            generator=generator, compute_dtype=compute_dtype, sign=sign,
        )
        return basis
    return top_singular_basis(a, rank, side, compute_dtype=compute_dtype, sign=sign)


def momentum_blend(
    a: torch.Tensor, basis_prev: torch.Tensor, exp_avg: torch.Tensor, step: int, *, rho: float, beta1: float, side: str
) -> torch.Tensor:
    r""":math:`b_t = \rho\, P_{t-1}M_{t-1}/(1-\beta_1^{t-1}) + (1-\rho)\, a_t` (``step`` = t ≥ 2)."""
    lifted = project_back(exp_avg, basis_prev, side)
    return lifted * (rho / (1.0 - beta1 ** (step - 1))) + (1.0 - rho) * a


def next_basis(
    b: torch.Tensor,
    basis_prev: torch.Tensor,
    rank: int,
    side: str,
    proj_method: str,
    *,
    compute_dtype: torch.dtype | None,
    sign: str,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """:math:`P_t` for t ≥ 2: one block power step on :math:`b_t` warm-started at :math:`P_{t-1}`, then QR
    (``power_iteration``), or the top-``rank`` singular basis of :math:`b_t` (``svd``, ``svd_lowrank``)."""
    if proj_method == "power_iteration":
        return block_power_step(b, basis_prev, side, compute_dtype=compute_dtype)
    return initial_basis(b, rank, side, proj_method, compute_dtype=compute_dtype, sign=sign, generator=generator)


# ----------------------------------------------------------------------------- states
def transfer_second_moment(
    exp_avg_sq: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_moved: torch.Tensor,
    C: torch.Tensor,
    completed: int,
    *,
    beta1: float,
    beta2: float,
    side: str,
) -> torch.Tensor:
    r"""The projection-aware second moment :math:`\tilde V` (see the class box); ``completed`` = t − 1 ≥ 1.

    :math:`c_2\,|(C\circ C)(V/c_2 - M^2/c_1^2) + \tilde M^2/c_1^2|` with the bias corrections of the
    completed step count.
    """
    c1 = 1.0 - beta1**completed
    c2 = 1.0 - beta2**completed
    variance = exp_avg_sq / c2 - exp_avg.square() / (c1 * c1)
    moved = rotate_coordinates(variance, C * C, side) + exp_avg_moved.square() / (c1 * c1)
    return moved.abs_().mul_(c2)


def error_feedback_residual(
    a: torch.Tensor,
    g_hat: torch.Tensor,
    basis: torch.Tensor,
    side: str,
    *,
    beta1: float,
    lost_momentum: torch.Tensor | None,
) -> torch.Tensor:
    r""":math:`e_{t+1} = a_t - P_t\hat g_t + \frac{\beta_1}{1-\beta_1}\,\text{lost}`, with
    :math:`\text{lost} = P_{t-1}M_{t-1} - P_t\tilde M` the momentum dropped by the change of subspace
    (``None`` at t = 1, where it is zero)."""
    e = a - project_back(g_hat, basis, side)
    if lost_momentum is not None and beta1 != 0:
        e = e + lost_momentum * (beta1 / (1.0 - beta1))
    return e


def ldadam_update(
    param: torch.Tensor,
    grad: torch.Tensor,
    basis_prev: torch.Tensor | None,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    error_buffer: torch.Tensor | None,
    step: int,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    rank: int,
    rho: float,
    side: str,
    proj_method: str,
    eps_placement: str,
    weight_decay_timing: str,
    compute_dtype: torch.dtype | None,
    sign: str,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One LDAdam step on one projected matrix (any leading batch dims); ``param`` is updated in place.

    ``step`` is this step's 1-based index t; ``basis_prev`` is :math:`P_{t-1}` (``None`` at t = 1);
    ``error_buffer`` is :math:`e_t`, or ``None`` when error feedback is off. Returns the new
    ``(basis, exp_avg, exp_avg_sq, error_buffer)``; the inputs are not modified.
    """
    a = grad if error_buffer is None else grad + error_buffer
    decomp = dict(compute_dtype=compute_dtype, sign=sign, generator=generator)
    if step == 1 or basis_prev is None:
        basis = initial_basis(a, rank, side, proj_method, **decomp)
        m_moved, v_moved, lost = exp_avg, exp_avg_sq, None  # M_0 = V_0 = 0: nothing to transfer
    else:
        b = momentum_blend(a, basis_prev, exp_avg, step, rho=rho, beta1=beta1, side=side)
        basis = next_basis(b, basis_prev, rank, side, proj_method, **decomp)
        C = change_of_basis(basis_prev, basis)
        m_moved = rotate_coordinates(exp_avg, C, side)
        v_moved = transfer_second_moment(exp_avg_sq, exp_avg, m_moved, C, step - 1, beta1=beta1, beta2=beta2, side=side)
        lost = project_back(exp_avg, basis_prev, side) - project_back(m_moved, basis, side) if error_buffer is not None else None
    g_hat = project(a, basis, side)
    new_error = None
    if error_buffer is not None:
        new_error = error_feedback_residual(a, g_hat, basis, side, beta1=beta1, lost_momentum=lost)
    new_m = m_moved.lerp(g_hat, 1 - beta1)
    new_v = v_moved.mul(beta2).addcmul_(g_hat, g_hat, value=1 - beta2)
    direction = adam_direction(new_m, new_v, step, beta1=beta1, beta2=beta2, eps=eps, eps_placement=eps_placement)
    decay_before(param, lr, weight_decay, weight_decay_timing)
    # sub_(x, alpha=c), not add_(x, alpha=-c): bit for bit the same eager arithmetic, but torch.compile's
    # inductor drops alpha in add(mm, alpha=) (pytorch/pytorch#167313) and keeps it in sub
    param.sub_(project_back(direction, basis, side), alpha=lr)
    decay_after(param, lr, weight_decay, weight_decay_timing)
    return basis, new_m, new_v, new_error


# ----------------------------------------------------------------------------- the optimizer
@register("ldadam")
class LDAdam(StackedFastPath, ReferenceOptimizer):
    __doc__ = __doc__
    paper = "Robert et al., ICLR 2025, arXiv 2410.16103 (algorithm box unverified; rule from the code @ f3c5daf)"
    paper_routing = Routing("attn_mlp", dense={"lowrank": False}, rank_option="rank",
                            source="the LDAdam scripts (GaLore's torchrun_main.py): attention/MLP matrices low-rank")
    variants: ClassVar[tuple[str, ...]] = VARIANTS

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.908, 0.99),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        rank: int = 16,
        rho: float = 0.908,
        proj_side: str = "std",
        square_side: str = "left",
        proj_method: str = "power_iteration",
        error_feedback: bool = True,
        eps_placement: str = "torch",
        weight_decay_timing: str = "before",
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
            rank=rank,
            rho=rho,
            proj_side=proj_side,
            square_side=square_side,
            proj_method=proj_method,
            error_feedback=error_feedback,
            eps_placement=eps_placement,
            weight_decay_timing=weight_decay_timing,
            variant=variant,
            lowrank=True,
        )
        super().__init__(params, defaults, seed=seed, nonfinite=nonfinite, batch_dims=batch_dims, fast=fast)

    # ------------------------------------------------------------------ validation
    def _validate_group(self, group: dict[str, Any]) -> None:
        validate_adam_hyper(group)
        check_int("rank", group["rank"], minimum=1)
        check_beta("rho", group["rho"])
        check_choice("proj_side", group["proj_side"], SIDE_RULES)
        check_choice("square_side", group["square_side"], SIDES)
        check_choice("proj_method", group["proj_method"], PROJ_METHODS)
        check_bool("error_feedback", group["error_feedback"])
        check_choice("variant", group["variant"], VARIANTS)
        validate_lowrank_flag(group)
        for p in group["params"]:  # the code raises at construction too
            if uses_projection(p, group):
                self._layout(p, group)

    def _layout(self, p: torch.Tensor, group: dict[str, Any]) -> tuple[str, int]:
        m, n = matrix_shape(p, group)
        side = ldadam_side(m, n, group["proj_side"], group["square_side"], group["variant"])
        rank = checked_rank(group["rank"], m, n)
        return side, rank

    # ------------------------------------------------------------------ state and step
    def _init_state(self, p: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        if not uses_projection(p, group):
            init_dense_state(p, state)
            return
        init_subspace_state(p, state, *self._layout(p, group))

    def _stackable(self, p, state, group) -> bool:
        return group["proj_method"] != "svd_lowrank"  # a sketch from p's own generator at every step

    def _fast_dense(self, p, group) -> bool:
        return not uses_projection(p, group)

    def _step_dense_foreach(self, params, grads, states, group) -> None:
        dense_adamw_update_foreach(params, grads, states, group, eps_placement=group["eps_placement"],
                                   update=self._kernel(adam_update_foreach),
                                   weight_decay_timing=group["weight_decay_timing"])

    def _update_param(self, p, grad, state, group) -> None:
        state["step"] += 1
        if not uses_projection(p, group):
            dense_adamw_update(p, grad, state, group, eps_placement=group["eps_placement"],
                               weight_decay_timing=group["weight_decay_timing"])
            return
        side, rank = self._layout(p, group)
        beta1, beta2 = group["betas"]
        error_buffer = None
        if group["error_feedback"]:
            error_buffer = state.get("error_buffer")
            if error_buffer is None:
                error_buffer = torch.zeros_like(p, memory_format=torch.contiguous_format)
        randomized = group["proj_method"] == "svd_lowrank"
        basis, m, v, e = ldadam_update(
            p,
            grad,
            state.get("basis"),
            state["exp_avg"],
            state["exp_avg_sq"],
            error_buffer,
            int(state["step"]),
            lr=float(group["lr"]),
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            weight_decay=group["weight_decay"],
            rank=rank,
            rho=group["rho"],
            side=side,
            proj_method=group["proj_method"],
            eps_placement=group["eps_placement"],
            weight_decay_timing=group["weight_decay_timing"],
            generator=self.generator(p) if randomized else None,
            **decomposition_settings(group["variant"]),
        )
        if randomized:
            self.save_generator(p)
        state["basis"], state["exp_avg"], state["exp_avg_sq"] = basis, m, v
        if e is not None:
            state["error_buffer"] = e
