r"""AdaRankGrad (Refael, Svirsky, Shustin, Huleihel, Lindenbaum, "AdaRankGrad: Adaptive Gradient-Rank
and Moments for Memory-Efficient LLMs Training and Fine-Tuning", ICLR 2025, arXiv 2410.17881v2).

.. math::

   \begin{aligned}
   &\textbf{input: } \eta,\ (\beta_1, \beta_2),\ \epsilon,\ \lambda,\ \alpha,
     \ r_{\min} \le r_{\max},\ \text{kept-energy threshold } \tau,
     \ \text{tolerance } \varsigma_0,\ \text{factor } \gamma,\ \text{cap } K \\
   &\textbf{for } t = 1, 2, \dots \quad (W \in \mathbb{R}^{m \times n},\ \text{left side shown:}
     \ Q \in \mathbb{R}^{m \times r_t}) \\
   &\quad G_t \leftarrow \nabla f_t(W_{t-1}) \\
   &\quad \textbf{if } t = 1 \ \textbf{or}\ \|Q^\top G_t\|_F \le \varsigma_\ell
          \ \textbf{or}\ k \ge K: \hfill (\varsigma_\ell = \gamma^\ell \varsigma_0,
          \ \ell = \text{number of earlier refreshes}) \\
   &\qquad (U, \sigma) \leftarrow \operatorname{rSVD}(G_t;\ r_{\max} + p \text{ columns},\ q \text{ power iterations}) \\
   &\qquad r_t \leftarrow \min\{ r \in [r_{\min}, r_{\max}] :
          \textstyle\sum_{i \le r} \sigma_i^2 \ge \tau \|G_t\|_F^2 \} \ (\text{else } r_{\max}),
          \ \text{rounded up to } r_{\min} + j\,\Delta r \\
   &\qquad Q_{new} \leftarrow U_{[:, :r_t]}, \quad R \leftarrow Q_{new}^\top Q \ (r_t \times r_{t-1}) \\
   &\qquad M \leftarrow R M \ (\text{rotate}), \quad
          V \leftarrow (R \circ R) V \ (\text{squared}) \ |\ |R V| \ |\ \max(RV, 0) \ |\ 0 \\
   &\qquad Q \leftarrow Q_{new}, \quad k \leftarrow 0 \\
   &\quad \hat G \leftarrow Q^\top G_t, \quad k \leftarrow k + 1 \\
   &\quad M \leftarrow \beta_1 M + (1-\beta_1)\hat G, \qquad V \leftarrow \beta_2 V + (1-\beta_2)\hat G^2 \\
   &\quad N \leftarrow \frac{M/(1-\beta_1^s)}{\sqrt{V/(1-\beta_2^s)} + \epsilon}
          \quad (s = t \text{ global, or } s = k \text{ per subspace; HF placement optional}) \\
   &\quad W_t \leftarrow W_{t-1} - \eta\, \alpha\, Q N
          \quad (\text{decoupled decay } \eta\lambda W \text{ before or after this line})
   \end{aligned}

Right side: :math:`Q \in \mathbb{R}^{n \times r_t}` spans right singular vectors,
:math:`\hat G = G_t Q` (``m × r_t``), the update is :math:`N Q^\top` and the moments rotate as
:math:`M R^\top`, :math:`V (R\circ R)^\top`.

Provenance: everything is UNVERIFIED
------------------------------------
**No official code exists and the paper's algorithm boxes have not been read** (spec
docs/methods.md §6). Only the abstract is verified: rank reduction "during Adam steps" by an "efficient
online-updating low-rank projections rule", "a randomized SVD scheme for efficiently finding the
projection matrix", and moments that are adapted ("Adaptive Gradient-Rank *and Moments*").
Secondary sources name an "information threshold" rank rule (paper's "Algorithm 2"), a moment
subspace transformation, and a refresh by a convergence criterion in the current subspace, which the
same first author's SUMO paper writes as an absolute bound :math:`\|\hat G\| \le \varsigma_\ell`
with a per-subspace tolerance. The box above is the toolkit's reconstruction of that lineage.
Paper numbering (secondary, unverified): "Algorithm 2" is the information-based adaptive subspace
selection (the rank rule), the full training loop is probably Algorithm 3, and Lemma 1 is the
rank-decay lemma (docs/rank.md §2; it holds for rank → 1 only when the λ₁-eigenvector of
:math:`\frac1N\sum_i C_i \otimes B_i` is decomposable). The convergence theorem analyses SGD inner
steps, not Adam (per the SUMO paper); its statement is unverified.

**Every choice below is an explicit, unverified constructor argument**: its default is the
toolkit's choice, *not* the paper's value (the paper's values are unknown). Do not quote results of
this optimizer as the paper's method without stating the arguments used.

Defaults
--------
=========================  ================  =====================================================================
argument                   default           source (all unverified as the paper's)
=========================  ================  =====================================================================
lr, betas, eps             1e-3, (0.9,       ours (standard Adam; Kingma & Ba)
                           0.999), 1e-8
weight_decay               0                 ours
min_rank (r_min)           1                 ours
max_rank (r_max)           128               ours (GaLore's 60M rank); a third-party port has ``max_rank``
rank_rule                  "energy"          ours; "information threshold" is the secondary sources' name
rank_threshold             0.96              ours; equals the third-party port's relative residual ξ = 0.2
rank_step (Δr)             1                 ours; a third-party port grows the rank by ``rank_step``
subspace_tol (ς₀)          None (off)        an absolute tolerance has no scale-free default; set it
subspace_tol_factor (γ)    1.0               ours (how ς_ℓ changes between subspaces is unknown)
max_steps_per_subspace (K) 200               ours (GaLore's T; a third-party port uses 200)
svd                        "randomized"      the abstract: "a randomized SVD scheme"
oversampling (p)           10                ours (Halko–Martinsson–Tropp §4.2 suggest p = 5 or 10)
power_iters (q)            2                 ours (``torch.svd_lowrank``'s default ``niter``)
first_moment_transform     "rotate"          SUMO lineage (M ← Q_newᵀ Q_old M) [secondary]
second_moment_transform    "squared"         ours (non-negative by construction)
bias_correction            "global"          a third-party formula page (global t) [secondary]
eps_placement              "torch"           ours ("hf" = the GaLore/Fira code convention)
weight_decay_timing        None → by eps     ours ("torch" → before, "hf" → after, as ``algorithms.adam``)
scale (α)                  1.0               ours (α = 1: no scale)
proj_side, square_side     "std", "left"     ours (GaLore Alg. 2: left for m ≤ n); SUMO projects left with m ≥ n
sign                       "max_abs"         ours (pinned signs; needed for reproducibility)
=========================  ================  =====================================================================

Rank rules (all three select the *smallest* admissible rank; they re-parametrize one rule):
``"energy"`` keeps at least the fraction ``rank_threshold`` of :math:`\|G\|_F^2`;
``"relative_residual"`` requires :math:`\|G - G_r\|_F / \|G\|_F \le` ``rank_threshold`` (ξ);
``"residual_energy"`` requires :math:`\|G - G_r\|_F^2 / \|G\|_F^2 \le` ``rank_threshold`` (the
formula page's η_th, read as the minimal rank). The energy of :math:`G` is its full Frobenius norm,
so a truncated sketch that misses energy can only raise the rank (up to :math:`r_{\max}`).

Refresh: at step 1; when ``subspace_tol`` is set and :math:`\|Q^\top G_t\|_F \le \varsigma_\ell`
(the projected gradient of the *old* basis at the current step); when the subspace has served
``max_steps_per_subspace`` steps. With both triggers off the first subspace is kept for ever.
``"keep"`` for a moment transform leaves the moment untouched (GaLore's rule) and requires
``min_rank == max_rank``; ``"reset"`` zeroes it.

Variants: only ``variant="paper"`` (the reconstruction above); there is no authors' code to
reproduce. Decompositions run in the parameter's dtype (float64 stays float64).

Shapes
------
A parameter is projected when its group has ``lowrank=True`` (default) and it is a non-empty matrix;
every other parameter (0-D, 1-D, 3-D/4-D, zero-size, ``lowrank=False`` groups) takes a dense AdamW
step with the group's ε placement and decay timing (bias correction on unless ``"none"``): the
GaLore/Fira codes' rule, assumed here (unverified for AdaRankGrad). ``1 <= min_rank <= max_rank <=
min(m, n)`` is checked at construction for every projected matrix.

``supports_batch_dims = False``: the rank, and with it the *shape* of the basis and the moments, is
chosen per problem from its data, and the refresh test fires per problem, so independent problems
stacked along leading dimensions cannot share one state tensor (the synthetic runner loops over
seeds instead). Each refresh test costs one host synchronisation.

Fast path (``fast=``, :mod:`algorithms._stacked`): the refresh test and the refresh run per matrix (the
rank is chosen per matrix from its own spectrum); then the matrices that share a shape, a rank, a side
and their counters take the projected Adam step as one stack (batched projections); the dense
parameters take :func:`algorithms._lowrank.dense_adamw_update_foreach`. A randomized refresh draws from the
matrix's own generator, as on the reference path.

Rank trace
----------
``state["refresh_log"]`` (CPU int64 ``[k, 2]``) records ``(step, rank)`` at each refresh, so the trace
survives checkpoints. The diagnostics that read it live with the rank engine,
:mod:`verify.rank.diagnostics`: ``rank_trace(opt, p)`` expands it to :math:`r_t` per step, and
``rank_traces(opt)`` / ``rank_summary(opt)`` report every projected parameter (time-average and peak
rank: memory is :math:`r_t(\min(m,n) + 2\max(m,n))` at step t, plus the sketch workspace at a refresh).

Exact reductions (tested in float64): ``min_rank = max_rank = r``, the convergence trigger off,
``max_steps_per_subspace = T``, ``svd="exact"``, both transforms ``"keep"`` and GaLore's
conventions ⇒ ``galore_adamw`` (variant "paper"); the same with ``"rotate"``/``"squared"`` ⇒
``galore_adamw`` with ``moment_transfer="project"``.

State of a projected parameter: ``step`` (CPU int64 0-D), ``basis`` ``[d, r_t]``, ``exp_avg`` and
``exp_avg_sq`` ``[r_t, n]`` (left) or ``[m, r_t]`` (right), ``subspace_step`` (CPU int64 0-D),
``refresh_log`` (CPU int64 ``[k, 2]``), ``rng_state`` (with ``svd="randomized"``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ._base import ReferenceOptimizer
from ._stacked import StackedFastPath
from .distributed import full_for
from ._lowrank import (
    checked_rank,
    dense_adamw_update,
    dense_adamw_update_foreach,
    init_dense_state,
    matrix_shape,
    uses_projection,
    validate_lowrank_flag,
)
from .projection import (
    SIDE_RULES,
    SIDES,
    SIGN_CONVENTIONS,
    change_of_basis,
    energy_rank,
    project,
    project_back,
    projection_side,
    randomized_singular_pairs,
    rotate_coordinates,
    top_singular_pairs,
)
from ._registry import register
from .grouping import Routing
from .validation import check_choice, check_int, check_nonnegative, check_positive, check_unit_interval
from .adam import EPS_PLACEMENTS, adam_direction, adam_update_foreach, validate_adam_hyper
from .weight_decay import decay_after, decay_before

__all__ = [
    "AdaRankGrad",
    "RANK_RULES",
    "SVD_METHODS",
    "FIRST_MOMENT_TRANSFORMS",
    "SECOND_MOMENT_TRANSFORMS",
    "BIAS_CORRECTIONS",
    "kept_energy_fraction",
    "choose_subspace",
    "refresh_due",
    "transform_first_moment",
    "transform_second_moment",
    "adarankgrad_update",
]

RANK_RULES = ("energy", "relative_residual", "residual_energy")
SVD_METHODS = ("randomized", "exact")
FIRST_MOMENT_TRANSFORMS = ("rotate", "reset", "keep")
SECOND_MOMENT_TRANSFORMS = ("squared", "abs", "clamp", "reset", "keep")
BIAS_CORRECTIONS = ("global", "per_subspace", "none")


# ----------------------------------------------------------------------------- rank and subspace
def kept_energy_fraction(rank_rule: str, threshold: float) -> float:
    """The fraction of :math:`\\|G\\|_F^2` a rank must keep under ``rank_rule`` (see the class docstring)."""
    if rank_rule == "energy":
        return threshold
    if rank_rule == "relative_residual":
        return 1.0 - threshold * threshold
    return 1.0 - threshold


def _round_up_to_grid(rank: int, min_rank: int, max_rank: int, rank_step: int) -> int:
    """The smallest ``min_rank + j·rank_step >= rank``, capped at ``max_rank``."""
    steps = -(-(rank - min_rank) // rank_step)
    return min(min_rank + steps * rank_step, max_rank)


def _spectrum(G: torch.Tensor, width: int, side: str, *, svd: str, oversampling: int, power_iters: int,
              generator: torch.Generator | None, sign: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(basis [d, width], singular values [width])`` of ``G`` on ``side``, exact or sketched."""
    if svd == "exact":
        return top_singular_pairs(G, width, side, sign=sign)
    return randomized_singular_pairs(G, width, side, oversampling=oversampling, power_iters=power_iters,
                                     generator=generator, sign=sign)


def choose_subspace(
    G: torch.Tensor,
    side: str,
    *,
    min_rank: int,
    max_rank: int,
    rank_step: int,
    kept_energy: float,
    svd: str,
    oversampling: int,
    power_iters: int,
    generator: torch.Generator | None,
    sign: str,
) -> torch.Tensor:
    """The new basis ``[d, r]`` of a refresh: the top singular vectors of ``G`` (one matrix), with the
    rank chosen by the kept-energy rule within ``[min_rank, max_rank]``.

    A non-finite ``G`` gets a NaN spectrum (see :mod:`algorithms.projection`), hence rank ``max_rank``
    and a NaN basis, so NaN propagates into the parameter as in ``torch.optim`` under ``nonfinite="ignore"``.
    """
    basis, S = _spectrum(G, max_rank, side, svd=svd, oversampling=oversampling, power_iters=power_iters,
                         generator=generator, sign=sign)
    if G.device.type == "meta":  # shape-only step (memory planning): the largest rank the rule can pick
        return basis[:, :max_rank].contiguous()
    total = G.square().sum()
    rank = int(energy_rank(S, total, kept_energy, min_rank=min_rank, max_rank=max_rank))
    rank = _round_up_to_grid(rank, min_rank, max_rank, rank_step)
    return basis[:, :rank].contiguous()


def refresh_due(
    G: torch.Tensor, basis: torch.Tensor, side: str, *, tolerance: float | None, subspace_steps: int, cap: int | None
) -> bool:
    """Refresh when the projected gradient has converged (``‖project(G)‖_F <= tolerance``, an absolute
    test) or the subspace has served ``cap`` steps; ``None`` switches a trigger off."""
    if cap is not None and subspace_steps >= cap:
        return True
    if tolerance is None or G.device.type == "meta":  # a meta tensor holds no norm to test
        return False
    return bool(torch.linalg.matrix_norm(project(G, basis, side)) <= tolerance)


def transform_first_moment(exp_avg: torch.Tensor, R: torch.Tensor, side: str, rule: str) -> torch.Tensor:
    """First moment at a change of subspace, ``R = Q_newᵀ Q_old``: rotate (exact projection of the lifted
    momentum onto the new subspace), reset to zero, or keep (same rank only)."""
    if rule == "rotate":
        return rotate_coordinates(exp_avg, R, side)
    if rule == "reset":
        shape = (R.shape[-2], exp_avg.shape[-1]) if side == "left" else (exp_avg.shape[-2], R.shape[-2])
        return full_for(exp_avg, shape)
    return exp_avg


def transform_second_moment(exp_avg_sq: torch.Tensor, R: torch.Tensor, side: str, rule: str) -> torch.Tensor:
    """Second moment at a change of subspace; every rule keeps it non-negative.

    ``squared``: :math:`(R\\circ R)V` (variance of a linear map of independent coordinates);
    ``abs``: :math:`|RV|`; ``clamp``: :math:`\\max(RV, 0)`; ``reset``: zero; ``keep``: unchanged.
    """
    if rule == "squared":
        return rotate_coordinates(exp_avg_sq, R * R, side)
    if rule == "abs":
        return rotate_coordinates(exp_avg_sq, R, side).abs_()
    if rule == "clamp":
        return rotate_coordinates(exp_avg_sq, R, side).clamp_min_(0)
    if rule == "reset":
        shape = (R.shape[-2], exp_avg_sq.shape[-1]) if side == "left" else (exp_avg_sq.shape[-2], R.shape[-2])
        return full_for(exp_avg_sq, shape)
    return exp_avg_sq


def adarankgrad_update(
    param: torch.Tensor,
    G_hat: torch.Tensor,
    basis: torch.Tensor,
    exp_avg: torch.Tensor,
    exp_avg_sq: torch.Tensor,
    bias_step: int,
    side: str,
    *,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    eps_placement: str,
    bias_correction: bool,
    scale: float,
    weight_decay: float,
    weight_decay_timing: str,
) -> None:
    """Adam on the projected gradient ``G_hat`` (moments updated in place) and the lifted, scaled step
    on ``param``; ``bias_step`` is the counter the bias corrections use."""
    decay_before(param, lr, weight_decay, weight_decay_timing)
    exp_avg.lerp_(G_hat, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(G_hat, G_hat, value=1 - beta2)
    N = adam_direction(exp_avg, exp_avg_sq, bias_step, beta1=beta1, beta2=beta2, eps=eps,
                       eps_placement=eps_placement, bias_correction=bias_correction)
    # sub_(x, alpha=c), not add_(x, alpha=-c): bit for bit the same eager arithmetic, but torch.compile's
    # inductor drops alpha in add(mm, alpha=) (pytorch/pytorch#167313) and keeps it in sub
    param.sub_(project_back(N, basis, side), alpha=lr * scale)
    decay_after(param, lr, weight_decay, weight_decay_timing)


# ----------------------------------------------------------------------------- the optimizer
@register("adarankgrad")
class AdaRankGrad(StackedFastPath, ReferenceOptimizer):
    __doc__ = __doc__
    paper = "Refael et al., ICLR 2025, arXiv 2410.17881 (no official code; algorithm reconstructed, unverified)"
    paper_routing = Routing("attn_mlp", dense={"lowrank": False}, rank_option="max_rank",
                            source="assumed to follow GaLore (no official code; unverified)")
    variants: ClassVar[tuple[str, ...]] = ("paper",)
    supports_batch_dims: ClassVar[bool] = False
    host_state_keys: ClassVar[frozenset[str]] = ReferenceOptimizer.host_state_keys | {"subspace_step", "refresh_log"}
    stack_counters: ClassVar[frozenset[str]] = frozenset({"step", "subspace_step"})
    unstacked_keys: ClassVar[frozenset[str]] = StackedFastPath.unstacked_keys | {"refresh_log"}

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        min_rank: int = 1,
        max_rank: int = 128,
        rank_rule: str = "energy",
        rank_threshold: float = 0.96,
        rank_step: int = 1,
        subspace_tol: float | None = None,
        subspace_tol_factor: float = 1.0,
        max_steps_per_subspace: int | None = 200,
        svd: str = "randomized",
        oversampling: int = 10,
        power_iters: int = 2,
        first_moment_transform: str = "rotate",
        second_moment_transform: str = "squared",
        bias_correction: str = "global",
        eps_placement: str = "torch",
        weight_decay_timing: str | None = None,
        scale: float = 1.0,
        proj_side: str = "std",
        square_side: str = "left",
        sign: str = "max_abs",
        variant: str = "paper",
        seed: int = 0,
        nonfinite: str = "raise",
        batch_dims: int = 0,
        fast: bool | str = False,
    ) -> None:
        if weight_decay_timing is None:
            weight_decay_timing = "after" if eps_placement == "hf" else "before"
        defaults = dict(
            lr=lr,
            betas=tuple(betas) if isinstance(betas, (tuple, list)) else betas,
            eps=eps,
            weight_decay=weight_decay,
            min_rank=min_rank,
            max_rank=max_rank,
            rank_rule=rank_rule,
            rank_threshold=rank_threshold,
            rank_step=rank_step,
            subspace_tol=subspace_tol,
            subspace_tol_factor=subspace_tol_factor,
            max_steps_per_subspace=max_steps_per_subspace,
            svd=svd,
            oversampling=oversampling,
            power_iters=power_iters,
            first_moment_transform=first_moment_transform,
            second_moment_transform=second_moment_transform,
            bias_correction=bias_correction,
            eps_placement=eps_placement,
            weight_decay_timing=weight_decay_timing,
            scale=scale,
            proj_side=proj_side,
            square_side=square_side,
            sign=sign,
            variant=variant,
            lowrank=True,
        )
        super().__init__(params, defaults, seed=seed, nonfinite=nonfinite, batch_dims=batch_dims, fast=fast)

    # ------------------------------------------------------------------ validation
    def _validate_group(self, group: dict[str, Any]) -> None:
        # bias_correction is a mode here ("global" / "per_subspace" / "none"), not Adam's bool
        validate_adam_hyper({k: v for k, v in group.items() if k != "bias_correction"})
        check_choice("variant", group["variant"], self.variants)
        min_rank = check_int("min_rank", group["min_rank"], minimum=1)
        max_rank = check_int("max_rank", group["max_rank"], minimum=1)
        if max_rank < min_rank:
            raise ValueError(f"max_rank must be >= min_rank ({min_rank}), got {max_rank}")
        check_int("rank_step", group["rank_step"], minimum=1)
        check_choice("rank_rule", group["rank_rule"], RANK_RULES)
        check_unit_interval("rank_threshold", group["rank_threshold"])
        if group["subspace_tol"] is not None:
            check_nonnegative("subspace_tol", group["subspace_tol"])
        check_positive("subspace_tol_factor", group["subspace_tol_factor"])
        if group["max_steps_per_subspace"] is not None:
            check_int("max_steps_per_subspace", group["max_steps_per_subspace"], minimum=1)
        check_choice("svd", group["svd"], SVD_METHODS)
        check_int("oversampling", group["oversampling"], minimum=0)
        check_int("power_iters", group["power_iters"], minimum=0)
        for name, rules in (("first_moment_transform", FIRST_MOMENT_TRANSFORMS),
                            ("second_moment_transform", SECOND_MOMENT_TRANSFORMS)):
            check_choice(name, group[name], rules)
            if group[name] == "keep" and min_rank != max_rank:
                raise ValueError(f"{name}='keep' needs a fixed rank (min_rank == max_rank), got "
                                 f"min_rank={min_rank}, max_rank={max_rank}")
        check_choice("bias_correction", group["bias_correction"], BIAS_CORRECTIONS)
        check_choice("eps_placement", group["eps_placement"], EPS_PLACEMENTS)
        check_positive("scale", group["scale"])
        check_choice("proj_side", group["proj_side"], SIDE_RULES)
        check_choice("square_side", group["square_side"], SIDES)
        check_choice("sign", group["sign"], SIGN_CONVENTIONS)
        validate_lowrank_flag(group)
        for p in group["params"]:
            if uses_projection(p, group):
                self._side(p, group)

    def _side(self, p: torch.Tensor, group: dict[str, Any]) -> str:
        """The projected side, after checking both rank bounds against ``min(m, n)``."""
        m, n = matrix_shape(p, group)
        side = projection_side(m, n, group["proj_side"], square=group["square_side"])
        for name in ("min_rank", "max_rank"):
            checked_rank(group[name], m, n, name=name)
        return side

    # ------------------------------------------------------------------ state and step
    def _init_state(self, p: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        if not uses_projection(p, group):
            init_dense_state(p, state)
            return
        state["subspace_step"] = torch.zeros((), dtype=torch.int64)
        state["refresh_log"] = torch.zeros((0, 2), dtype=torch.int64)

    def _update_param(self, p, grad, state, group) -> None:
        if not uses_projection(p, group):
            state["step"] += 1
            dense_adamw_update(p, grad, state, group, eps_placement=group["eps_placement"],
                               weight_decay_timing=group["weight_decay_timing"],
                               bias_correction=group["bias_correction"] != "none")
            return
        self._before_stacking(p, grad, state, group)
        self._stacked_update(p, grad, state, group)

    def _before_stacking(self, p, grad, state, group) -> None:
        """The per-matrix part of a step: the counters, the refresh test and a refresh (the rank, hence the
        state's shape, is chosen per matrix)."""
        state["step"] += 1
        side = self._side(p, group)
        if "basis" not in state or refresh_due(grad, state["basis"], side, tolerance=self._tolerance(state, group),
                                               subspace_steps=int(state["subspace_step"]),
                                               cap=group["max_steps_per_subspace"]):
            self._refresh(p, grad, state, group, side, int(state["step"]))
        state["subspace_step"] += 1

    def _stacked_update(self, p, grad, state, group) -> None:
        """Adam in the current subspace and the lifted step (runs on a stack of same-shape, same-rank matrices
        on the fast path)."""
        side = self._side(p, group)
        beta1, beta2 = group["betas"]
        bias = group["bias_correction"]
        adarankgrad_update(
            p,
            project(grad, state["basis"], side),
            state["basis"],
            state["exp_avg"],
            state["exp_avg_sq"],
            int(state["subspace_step"]) if bias == "per_subspace" else int(state["step"]),
            side,
            lr=float(group["lr"]),
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            eps_placement=group["eps_placement"],
            bias_correction=bias != "none",
            scale=group["scale"],
            weight_decay=group["weight_decay"],
            weight_decay_timing=group["weight_decay_timing"],
        )

    def _fast_dense(self, p, group) -> bool:
        return not uses_projection(p, group)

    def _step_dense_foreach(self, params, grads, states, group) -> None:
        dense_adamw_update_foreach(params, grads, states, group, eps_placement=group["eps_placement"],
                                   update=self._kernel(adam_update_foreach),
                                   weight_decay_timing=group["weight_decay_timing"],
                                   bias_correction=group["bias_correction"] != "none")

    @staticmethod
    def _tolerance(state: dict[str, Any], group: dict[str, Any]) -> float | None:
        """:math:`\\varsigma_\\ell = \\gamma^\\ell \\varsigma_0`, ℓ = refreshes before the current subspace's."""
        tol = group["subspace_tol"]
        if tol is None:
            return None
        return tol * group["subspace_tol_factor"] ** (state["refresh_log"].shape[0] - 1)

    def _refresh(self, p, grad, state, group, side: str, step: int) -> None:
        randomized = group["svd"] == "randomized"
        new = choose_subspace(
            grad,
            side,
            min_rank=group["min_rank"],
            max_rank=group["max_rank"],
            rank_step=group["rank_step"],
            kept_energy=kept_energy_fraction(group["rank_rule"], group["rank_threshold"]),
            svd=group["svd"],
            oversampling=group["oversampling"],
            power_iters=group["power_iters"],
            generator=self.generator(p) if randomized else None,
            sign=group["sign"],
        )
        if randomized:
            self.save_generator(p)
        rank = new.shape[-1]
        if "basis" in state:
            R = change_of_basis(state["basis"], new)
            state["exp_avg"] = transform_first_moment(state["exp_avg"], R, side, group["first_moment_transform"])
            state["exp_avg_sq"] = transform_second_moment(state["exp_avg_sq"], R, side, group["second_moment_transform"])
        else:
            m, n = p.shape
            shape = (rank, n) if side == "left" else (m, rank)
            state["exp_avg"] = full_for(p, shape)
            state["exp_avg_sq"] = full_for(p, shape)
        state["basis"] = new
        state["subspace_step"] = torch.zeros((), dtype=torch.int64)
        entry = torch.tensor([[step, rank]], dtype=torch.int64)
        state["refresh_log"] = torch.cat([state["refresh_log"], entry])
