r"""Subspace-Momentum (SM): EMA momentum inside a low-dimensional subspace, plain SGD in its
orthogonal complement (Nguyen & Nguyen, arXiv 2411.07120, ICML 2025; docs/methods.md §1.4).

.. math::

   \begin{aligned}
   &\textbf{input: } \eta \text{ (lr)},\ \beta_1 \text{ (momentum)},\ r \text{ (rank)},\ T \text{ (update\_proj\_gap)},
     \ \text{proj\_type} \in \{\text{svd}, \text{uniform}, \text{topk}\},\ \lambda \\
   &\textbf{for } t = 1, 2, \dots \\
   &\quad \textbf{if } t = 1 \text{ or } t \equiv 0 \pmod T:\ \ P_t \leftarrow \text{basis}(g_t)
        \text{ and move the momentum by the refresh rule (below)}; \text{ else } P_t = P_{t-1} \\
   &\quad m_t \leftarrow \beta_1 m_{t-1} + (1-\beta_1)\, P_t g_t \qquad (m_t \in \mathbb{R}^{r \times \cdot}) \\
   &\quad x_t \leftarrow x_{t-1} - \eta \big[\, P_t^\top m_t / c_1 + (I - P_t^\top P_t)\, g_t\, / c_1' \,\big]
        \qquad c_1 = 1 - \beta_1^t \text{ with bias correction, else } 1 \\
   &\quad x_t \leftarrow x_t - \eta\lambda\, x_t \qquad \text{(decoupled, after the update)}
   \end{aligned}

Here :math:`P_t g` means :math:`U^\top G` (basis on the left, ``r × n`` momentum) or :math:`G U`
(basis on the right, ``m × r`` momentum) for a matrix gradient :math:`G \in \mathbb{R}^{m \times n}`
(:mod:`algorithms.projection`), and :math:`P_t^\top P_t` is the orthogonal projector onto the
subspace. One step size η serves both parts (docs/methods.md §1.4).

Projections (``proj_type``), as the authors' ``projectors/`` [C]:

* ``"svd"``: the top-``r`` singular vectors of the current stochastic gradient, on the **smaller**
  dimension (m ≥ n: right singular vectors, momentum ``m × r``; m < n: left, ``r × n``; square: right),
  i.e. side rule ``std`` with ``square="right"``;
* ``"uniform"``: ``r`` rows (m ≥ n) or columns (m < n) drawn uniformly without replacement, i.e. a
  selection along the **larger** dimension (rule ``reverse_std``, momentum ``r × min(m, n)``), drawn
  from the optimizer's own generator (the code uses the global ``torch.randperm`` RNG); the
  generator lives on the parameter's device, so CPU and CUDA runs draw different (each
  reproducible) selections;
* ``"topk"``: the ``r`` rows/columns (same side as uniform) with the largest Euclidean norm.

``proj_side`` overrides the side rule for every type. The authors' srht / approx-SVD projectors
(which need ``fast_hadamard_transform`` and numpy's global RNG) are not implemented.

Refresh rules (``refresh``) at a refresh step ``t > 1`` (the basis is rebuilt from ``g_t`` first):

============== ==========================================================================
``"reset"``    :math:`m \leftarrow 0` before the step's update (a clean restart of the momentum)
``"carry"``    :math:`m \leftarrow P_{new} P_{old}^\top m` (the old momentum, lifted to the full space,
               expressed in the new basis; at full rank this loses nothing)
``"overlap"``  keep the coordinates of :math:`m` unchanged in the new basis (the code's
               ``overlap_state`` group key)
``"official"`` the authors' code [C][V]: the refresh step uses the **stale** coordinates
               (:math:`\beta_1 m_{old} + (1-\beta_1) P_{new} g_t`, lifted through the **new** basis),
               and only *after* that step is the momentum zeroed (docs/methods.md §1.7, item 1)
============== ==========================================================================

Variants (``variant="paper"|"official"``; each item is also an explicit argument, ``None`` = the
variant's choice):

* ``refresh``: official ``"official"`` (stale basis); paper ``"reset"``, the code's evident intent
  (what the paper does at a refresh is **unverified** [U]).
* ``correct_sgd_part``: official True, :math:`c_1' = c_1` (the bias correction scales the
  orthogonal SGD part too, docs/methods.md §1.7, item 5); paper False, :math:`c_1' = 1` (only the momentum
  is bias corrected; **unverified** [U]).
* ``rank_overflow``: official ``"truncate"`` (rank > projected dimension silently becomes the
  projected dimension); paper ``"raise"`` (``ValueError`` at construction naming the parameter).
* SVD: official float32 ``torch.linalg.svd``, cast back to the parameter dtype, signs as LAPACK
  returns them; paper in the parameter's dtype (float64 stays float64; bfloat16/float16, which
  have no SVD kernel, decompose in float32 and cast back) with pinned signs (the largest-magnitude
  entry positive), so runs agree across devices.

The float32 SVD is the only downcast; the stored basis is cast back, so every state tensor keeps
the parameter's dtype. ``bias_correction`` defaults to False (the authors' "sgd" preset,
``correct_bias=False``). The paper's intended algorithm (momentum in span P, SGD in the complement,
one η; docs/methods.md §1.4) is itself an **unverified** reconstruction [U].

Paper numbering: the algorithm and equation numbers of arXiv 2411.07120 are **not verified** (the
paper body was not read); the update is the authors' code [C].

Exact reductions (tested in float64 to round-off): ``rank=0`` ≡ SGD (without bias correction, or
with ``correct_sgd_part=False``); full rank with no refresh
(``update_proj_gap`` > number of steps) ≡ ``sgd(momentum_type="ema")``; full rank with
``refresh="carry"`` ≡ EMA-momentum SGD across refreshes too; ``momentum=0`` ≡ SGD.

Shapes: a parameter is projected when its group has ``lowrank=True`` (the default) and its problem
shape (after ``batch_dims``) is a non-empty matrix. Everything else (0-D, 1-D, 3-D/4-D, zero-size
tensors, ``lowrank=False`` groups) takes full EMA-momentum SGD, as the authors' code does for
parameters outside the SM group. With ``batch_dims`` every SVD / selection is per problem.

Non-finite gradients: under ``nonfinite="ignore"`` (not the default) a NaN/Inf gradient at a refresh
step gives a NaN basis (``torch.linalg.svd`` refuses non-finite input on the CPU; the failure is
turned into NaN, which then propagates as in any arithmetic); ``nonfinite="raise"`` (the default) rejects it first.

Defaults
--------
================ ============ ============================================================
argument         default      source
================ ============ ============================================================
lr               1e-3         authors' code (``GenericOptim``)
momentum         0.9          authors' code (CLI ``--beta1``)
rank             128          authors' code (CLI)
proj_type        "svd"        authors' code
update_proj_gap  200          authors' code (CLI; examples.sh effectively uses 100)
refresh          by variant   official: the code; paper: "reset" [U]
bias_correction  False        authors' code ("sgd" preset)
correct_sgd_part by variant   official: True (the code); paper: False [U]
rank_overflow    by variant   official: "truncate" (the code); paper: "raise" (ours)
proj_side        None         the code's rule per proj_type (see above)
weight_decay     0            authors' code (decoupled, after the update)
================ ============ ============================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ._base import ReferenceOptimizer, batch_shape
from ._stacked import StackedFastPath
from ._lowrank import matrix_shape, uses_projection, validate_lowrank_flag
from .projection import (
    SIDE_RULES,
    project,
    project_back,
    project_back_indices,
    project_indices,
    projected_dim,
    projection_side,
    top_singular_basis,
    topk_indices,
    uniform_indices,
    validate_rank,
)
from ._registry import register
from .subsets import PAPER, ROUTING_SOURCE, describe_param
from .validation import check_beta, check_bool, check_choice, check_int, check_nonnegative
from .grouping import Routing
from .sgd import sgd_update
from .weight_decay import decay_after

__all__ = [
    "SubspaceMomentum",
    "SubspaceMomentumMixin",
    "SubspaceConfig",
    "PROJ_TYPES",
    "REFRESH_RULES",
    "SM_VARIANT_DEFAULTS",
    "build_basis",
    "to_subspace",
    "from_subspace",
    "transfer_momentum",
    "subspace_momentum_update",
    "combine_numerator",
]

PROJ_TYPES = ("svd", "uniform", "topk")
REFRESH_RULES = ("reset", "carry", "overlap", "official")
RANK_OVERFLOW = ("raise", "truncate")
#: the side rule of each projection type in the authors' code (square matrices: "right" for svd, rows for index types)
CODE_SIDE_RULES = {"svd": "std", "uniform": "reverse_std", "topk": "reverse_std"}

SM_VARIANT_DEFAULTS = {
    "paper": {"refresh": "reset", "correct_sgd_part": False, "rank_overflow": "raise", "svd_dtype": None, "sign": "max_abs"},
    "official": {"refresh": "official", "correct_sgd_part": True, "rank_overflow": "truncate", "svd_dtype": torch.float32, "sign": "none"},
}


# ----------------------------------------------------------------------------- pure functions
@dataclass(frozen=True)
class SubspaceConfig:
    """Everything fixed about one projected parameter: side, effective rank and how the basis is built."""

    side: str
    rank: int
    proj_type: str
    svd_dtype: torch.dtype | None
    sign: str


def to_subspace(G: torch.Tensor, basis: torch.Tensor, side: str) -> torch.Tensor:
    """Subspace coordinates of ``G``: a dense basis ``[..., d, r]`` or an index vector ``[..., r]`` (int64)."""
    if basis.is_floating_point():
        return project(G, basis, side)
    return project_indices(G, basis, side)


def from_subspace(R: torch.Tensor, basis: torch.Tensor, side: str, shape: torch.Size | torch.Tensor) -> torch.Tensor:
    """Lift subspace coordinates back to the full ``shape`` (:math:`P^\\top R`); ``shape`` may be the gradient
    itself, whose placement an index lift then takes on FSDP2 shards."""
    like = shape if isinstance(shape, torch.Tensor) else None
    if basis.is_floating_point():
        return project_back(R, basis, side)
    return project_back_indices(R, basis, side, like.shape if like is not None else shape, like=like)


def build_basis(G: torch.Tensor, config: SubspaceConfig, generator: torch.Generator | None) -> torch.Tensor:
    """The basis of ``config.proj_type`` for the gradient ``G`` (``[*batch, m, n]``)."""
    if config.proj_type == "svd":
        # half precision and non-finite gradients are handled by the toolbox (float32 SVD; NaN basis)
        return top_singular_basis(G, config.rank, config.side, compute_dtype=config.svd_dtype, sign=config.sign)
    if config.proj_type == "topk":
        return topk_indices(G, config.rank, config.side)
    d = projected_dim(G.shape[-2], G.shape[-1], config.side)
    return uniform_indices(d, config.rank, generator, G.shape[:-2], G.device)


def transfer_momentum(
    exp_avg: torch.Tensor, old_basis: torch.Tensor, new_basis: torch.Tensor, side: str, shape: torch.Size | torch.Tensor,
    rule: str,
) -> torch.Tensor:
    """The momentum to use at a refresh step, *before* the step's EMA update (see the refresh table).

    ``old_basis`` and ``new_basis`` have the same shape (same side and rank).
    """
    if rule == "reset":
        return torch.zeros_like(exp_avg)
    if rule == "carry":
        return to_subspace(from_subspace(exp_avg, old_basis, side, shape), new_basis, side)
    return exp_avg  # "overlap" and "official": stale coordinates in the new basis


def subspace_momentum_update(
    grad: torch.Tensor, exp_avg: torch.Tensor, basis: torch.Tensor, side: str, *, beta1: float
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""EMA update of the subspace momentum, in place; returns :math:`(P^\top m_t,\ (I - P^\top P) g_t)`."""
    low = to_subspace(grad, basis, side)
    exp_avg.mul_(beta1).add_(low, alpha=1 - beta1)
    lifted = from_subspace(exp_avg, basis, side, grad)
    orthogonal = grad - from_subspace(low, basis, side, grad)
    return lifted, orthogonal


def combine_numerator(
    lifted: torch.Tensor | None, orthogonal: torch.Tensor, c1: float, correct_sgd_part: bool
) -> tuple[torch.Tensor, float]:
    r"""``(numerator, c)`` with the update direction ``numerator / c``.

    ``correct_sgd_part=True`` (official): :math:`(P^\top m + r, c_1)`; False (paper):
    :math:`(P^\top m / c_1 + r, 1)`. ``lifted=None`` (rank 0, or no momentum) is a zero momentum part:
    ``(r, c_1)`` or ``(r, 1)`` (the authors' code scales the whole numerator at rank 0 too).
    """
    if lifted is None:
        return orthogonal, (c1 if correct_sgd_part else 1.0)
    if correct_sgd_part:
        return lifted + orthogonal, c1
    return lifted / c1 + orthogonal, 1.0


# ----------------------------------------------------------------------------- glue shared with adam_sn_sm


class SubspaceMomentumMixin(StackedFastPath):
    """Group validation and basis/momentum bookkeeping shared by ``subspace_momentum`` and ``adam_sn_sm``.

    State of a projected parameter: ``exp_avg`` (subspace coordinates), ``basis`` (dense, ``[..., d, r]``)
    or ``indices`` (int64, ``[..., r]``), ``rng_state`` (uniform only).

    Fast path (``fast=``, :mod:`algorithms._stacked`): the parameters of one shape (projected or not) are
    stepped as one stack: one batched SVD per shape at a refresh, batched projections every step. A step
    that draws uniform indices (``proj_type="uniform"``, at a refresh) draws them from the parameter's own
    generator and runs on the reference update, one parameter at a time; its other steps are stacked.
    """

    def _stackable(self, p, state, group) -> bool:
        if group["proj_type"] != "uniform" or not uses_projection(p, group):
            return True
        return "indices" in state and (int(state["step"]) + 1) % group["update_proj_gap"] != 0

    def _validate_sm_group(self, group: dict[str, Any], beta1_name: str, beta1: float) -> None:
        check_beta(beta1_name, beta1)
        check_int("rank", group["rank"], minimum=0)
        check_choice("proj_type", group["proj_type"], PROJ_TYPES)
        check_int("update_proj_gap", group["update_proj_gap"], minimum=1)
        if group["refresh"] is not None:
            check_choice("refresh", group["refresh"], REFRESH_RULES)
        if group["correct_sgd_part"] is not None:
            check_bool("correct_sgd_part", group["correct_sgd_part"])
        if group["rank_overflow"] is not None:
            check_choice("rank_overflow", group["rank_overflow"], RANK_OVERFLOW)
        if group["proj_side"] is not None:
            check_choice("proj_side", group["proj_side"], SIDE_RULES)
        validate_lowrank_flag(group)
        for index, p in enumerate(group["params"]):
            batch_shape(p, group)
            if uses_projection(p, group):
                try:
                    self._sm_config(p, group)
                except ValueError as exc:
                    raise ValueError(f"{exc} ({describe_param(self, group, index)}; pass rank_overflow='truncate' "
                                     "to cap it as the authors' code does)") from None

    def _sm_config(self, p: torch.Tensor, group: dict[str, Any]) -> SubspaceConfig:
        m, n = matrix_shape(p, group)
        rule = group["proj_side"] or CODE_SIDE_RULES[group["proj_type"]]
        side = projection_side(m, n, rule, square="right")
        rank = group["rank"]
        if rank > 0:
            rank = validate_rank(rank, projected_dim(m, n, side), overflow=self.resolved(group, "rank_overflow"))
        return SubspaceConfig(side, rank, group["proj_type"], self.resolved(group, "svd_dtype"),
                              self.resolved(group, "sign"))

    def _subspace_parts(
        self, p: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any], beta1: float
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        r""":math:`(P^\top m_t, (I - P^\top P) g_t)` of this step, refreshing the basis when due.

        ``(None, g)`` when there is no momentum (β₁ = 0, as the authors' code: no basis is built) or rank 0.
        """
        config = self._sm_config(p, group)
        if beta1 == 0 or config.rank == 0:
            return None, grad
        key = "basis" if config.proj_type == "svd" else "indices"
        step = int(state["step"])
        old_basis = state.get(key)
        if old_basis is None or step % group["update_proj_gap"] == 0:
            generator = self.generator(p) if config.proj_type == "uniform" else None
            new_basis = build_basis(grad, config, generator)
            if generator is not None:
                self.save_generator(p)
            state.pop("basis" if key == "indices" else "indices", None)
            state[key] = new_basis
            state["exp_avg"] = self._momentum_at_refresh(state.get("exp_avg"), old_basis, new_basis, config, grad, group)
        rule = self.resolved(group, "refresh")
        refreshed_now = old_basis is not None and step % group["update_proj_gap"] == 0
        lifted, orthogonal = subspace_momentum_update(grad, state["exp_avg"], state[key], config.side, beta1=beta1)
        if refreshed_now and rule == "official":
            state["exp_avg"].zero_()  # the code zeroes the state only after the refresh step's update
        return lifted, orthogonal

    def _momentum_at_refresh(self, exp_avg, old_basis, new_basis, config: SubspaceConfig, grad, group) -> torch.Tensor:
        fresh = torch.zeros_like(to_subspace(grad, new_basis, config.side))
        if exp_avg is None or old_basis is None or old_basis.shape != new_basis.shape:
            return fresh  # first basis (or the rank changed through the group): start from zero
        moved = transfer_momentum(exp_avg, old_basis, new_basis, config.side, grad, self.resolved(group, "refresh"))
        return moved.clone() if moved is exp_avg else moved


# ----------------------------------------------------------------------------- the optimizer
@register("subspace_momentum")
class SubspaceMomentum(SubspaceMomentumMixin, ReferenceOptimizer):
    __doc__ = __doc__
    paper = PAPER
    paper_routing = Routing("all_linear", dense={"lowrank": False}, rank_option="rank", source=ROUTING_SOURCE)
    variants = ("paper", "official")
    VARIANT_DEFAULTS = SM_VARIANT_DEFAULTS

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0.9,
        *,
        rank: int = 128,
        proj_type: str = "svd",
        update_proj_gap: int = 200,
        refresh: str | None = None,
        bias_correction: bool = False,
        correct_sgd_part: bool | None = None,
        rank_overflow: str | None = None,
        proj_side: str | None = None,
        weight_decay: float = 0.0,
        variant: str = "paper",
        seed: int = 0,
        nonfinite: str = "raise",
        batch_dims: int = 0,
        fast: bool | str = False,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            rank=rank,
            proj_type=proj_type,
            update_proj_gap=update_proj_gap,
            refresh=refresh,
            bias_correction=bias_correction,
            correct_sgd_part=correct_sgd_part,
            rank_overflow=rank_overflow,
            proj_side=proj_side,
            weight_decay=weight_decay,
            variant=variant,
        )
        super().__init__(params, defaults, seed=seed, nonfinite=nonfinite, batch_dims=batch_dims, fast=fast)

    def _validate_group(self, group: dict[str, Any]) -> None:
        check_nonnegative("lr", group["lr"])
        check_choice("variant", group["variant"], self.variants)
        check_bool("bias_correction", group["bias_correction"])
        check_nonnegative("weight_decay", group["weight_decay"])
        self._validate_sm_group(group, "momentum", group["momentum"])

    def _init_state(self, p, group, state) -> None:
        """Projected parameters create their state at the first refresh; dense ones get an EMA buffer lazily."""

    def _update_param(self, p, grad, state, group) -> None:
        state["step"] += 1
        step = int(state["step"])
        beta1 = group["momentum"]
        lr = float(group["lr"])
        if uses_projection(p, group):
            lifted, orthogonal = self._subspace_parts(p, grad, state, group, beta1)
            c1 = 1.0 - beta1**step if group["bias_correction"] else 1.0
            numerator, c = combine_numerator(lifted, orthogonal, c1, self.resolved(group, "correct_sgd_part"))
            p.add_(numerator, alpha=-lr / c)
        else:
            if beta1 != 0 and "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            sgd_update(p, grad, state.get("momentum_buffer"), step, lr=lr, momentum=beta1, momentum_type="ema",
                       dampening=0.0, weight_decay=0.0, bias_correction=group["bias_correction"])
        decay_after(p, lr, group["weight_decay"])
