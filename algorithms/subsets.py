r"""Subset partitions for the Subset-Norm (SN) step size (arXiv 2411.07120; the authors' rules: docs/methods.md §1.2).

A partition :math:`[d] = \Psi_1 \cup \dots \cup \Psi_c` groups the coordinates of one parameter into
``c`` subsets of ``k`` coordinates; SN keeps one accumulator per subset, fed with the **sum** of squares
:math:`\|g_{\Psi_j}\|_2^2` (not the mean), and divides every coordinate of subset ``j`` by the same
:math:`\sqrt{\cdot}` of it. Everything here is a plain function of the parameter's *problem* shape
(the shape after the ``batch_dims`` leading independent-problem dimensions), so a partition never
crosses independent problems and is identical for all of them.

A partition is described by a :class:`SubsetLayout`: the gradient of problem shape ``s`` is viewed
(row-major, no copy for contiguous tensors) as ``view`` and summed over ``reduce_dims`` with
``keepdim``, which gives the accumulator shape ``state_shape``; the denominator broadcasts back over
the same view.

Subset rules (``subset_size=``)
-------------------------------
``"heuristics"``
    authors' code [C]: for a matrix ``m × n``, one subset per **row** if m ≥ n (state ``m × 1``),
    else one per **column** (state ``1 × n``): slices along the smaller dimension, so
    ``k = min(m, n)`` and there are ``max(m, n)`` accumulators. Shapes that are not 2-D (ours; the
    code only applies it to ``nn.Linear`` weights): 0-D and 1-D tensors are coordinate-wise
    (``k = 1``, as for an ``n × 1`` matrix, docs/methods.md §1.6); an N-D tensor (N ≥ 3) is viewed as the
    matrix ``shape[0] × prod(shape[1:])`` (the usual conv-kernel rule).
positive int ``s``
    authors' code [C]: flatten row-major, contiguous chunks of ``k`` = the largest divisor of
    ``numel`` that is ≤ ``s`` (``k = numel`` when ``s ≥ numel``: one subset; the code asserts
    ``s ≤ numel`` instead). State ``(numel/k) × 1``.
negative int ``−s``
    authors' code [C]: as above with the target ``⌊√numel / s⌋`` (the code's default is −2). A
    target below 1 (``numel < s²``) is clamped to 1 here; the code divides by zero (docs/methods.md §1.7,
    quirk 10).
``"coordinate"``
    ``k = 1`` with the accumulator in the parameter's own shape (AdaGrad-Coordinate).
``"norm"``
    one subset holding every coordinate (AdaGrad-Norm per tensor), state ``(1,)``.

Fallback policy (``subset_fallback=``)
--------------------------------------
For an integer rule the divisor search can silently degrade to ``k = 1`` (docs/methods.md §1.2: a "prime
numel": a prime ``numel`` has no divisor in ``[2, target]``, so SN becomes coordinate-wise with an
Adam-sized state), and a negative rule can ask for a target below 1. We call both a **fallback**
(the chosen ``k`` is 1 while the rule asked for more, or the target had to be clamped up to 1) and
never let it pass silently by default:

``"warn"`` (default)
    use ``k = 1`` and issue one :class:`SubsetFallbackWarning` per parameter, naming the parameter,
    its ``numel`` and the requested target;
``"raise"``
    raise ``ValueError`` naming the parameter when the optimizer is built (the optimizers apply the
    policy at construction, so no step is half done);
``"allow"``
    use ``k = 1`` silently (the authors' code, which only prints a line).

A rule whose target is exactly 1 (e.g. ``−2`` on a 7-element vector: ``⌊√7/2⌋ = 1``) and tensors
with ``numel ≤ 1`` are not fallbacks: the rule asked for single coordinates.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import torch

from .validation import check_choice
from .distributed import is_dtensor
from .grouping import Routing

__all__ = [
    "PAPER",
    "ROUTING_SOURCE",
    "SN_ROUTING",
    "SUBSET_RULES",
    "SUBSET_FALLBACKS",
    "SubsetLayout",
    "SubsetFallbackWarning",
    "check_subset_size",
    "largest_divisor_at_most",
    "subset_layout",
    "subset_sum_of_squares",
    "divide_by_subsets",
    "subset_sums_of_squares_foreach",
    "divide_by_subsets_foreach",
    "resolve_layout",
    "describe_param",
    "apply_fallback_policy",
    "param_layout",
]

#: the SN-SM paper (every Subset-Norm / Subspace-Momentum optimizer cites it)
PAPER = "Nguyen & Nguyen, arXiv 2411.07120 (ICML 2025, PMLR 267:46116)"
#: the LLaMA routing of the SN-SM experiments (the authors' ``get_optimizer.py``): every ``nn.Linear`` weight,
#: ``lm_head`` included, in the method's group; the embedding and the norms in the dense group
ROUTING_SOURCE = "SN-SM LLaMA experiments: every nn.Linear weight (lm_head included) SN(+SM); the rest dense"
#: Subset-Norm alone (AdamSN, RMSPropSN, AdaGrad-SN): heuristic subsets on the linear weights, coordinate-wise elsewhere
SN_ROUTING = Routing("all_linear", method={"subset_size": "heuristics"}, dense={"subset_size": "coordinate"},
                     source=ROUTING_SOURCE)

SUBSET_RULES = ("heuristics", "coordinate", "norm")
SUBSET_FALLBACKS = ("warn", "raise", "allow")


class SubsetFallbackWarning(UserWarning):
    """An integer subset rule fell back to single-coordinate subsets (see module docstring)."""


@dataclass(frozen=True)
class SubsetLayout:
    """How one problem shape is partitioned (see module docstring)."""

    view: tuple[int, ...]
    reduce_dims: tuple[int, ...]  # negative dims of ``view``
    state_shape: tuple[int, ...]
    subset_size: int  # k, coordinates per subset
    num_subsets: int  # c = numel / k
    target: int | None  # the k an integer rule asked for (None for named rules)
    fallback: bool  # k = 1 although the rule asked for more (or the target was clamped)


def check_subset_size(value) -> int | str:
    """Validate a ``subset_size`` hyperparameter: a non-zero int or one of :data:`SUBSET_RULES`."""
    if isinstance(value, str):
        return check_choice("subset_size", value, SUBSET_RULES)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"subset_size must be a non-zero int or one of {SUBSET_RULES}, got {type(value).__name__}")
    if value == 0:
        raise ValueError(f"subset_size must be a non-zero int (k > 0, or -s for ⌊√numel/s⌋) or one of {SUBSET_RULES}, got 0")
    return value


def largest_divisor_at_most(n: int, k: int) -> int:
    """The largest divisor of ``n`` that is ``<= k`` (``n >= 1``, ``k >= 1``)."""
    if n < 1 or k < 1:
        raise ValueError(f"need n >= 1 and k >= 1, got n={n}, k={k}")
    if k >= n:
        return n
    best = 1
    # divisors come in pairs (i, n // i) with i <= √n: scan up to √n once, O(√n)
    for i in range(1, math.isqrt(n) + 1):
        if n % i == 0:
            if i <= k:
                best = max(best, i)
            j = n // i
            if j <= k:
                best = max(best, j)
    return best


def _coordinate_layout(shape: tuple[int, ...]) -> SubsetLayout:
    numel = math.prod(shape)
    return SubsetLayout(shape, (), shape, 1, numel, None, False)


def _matrix_heuristic_layout(m: int, n: int) -> SubsetLayout:
    if m >= n:  # one accumulator per row: sum over the n columns
        return SubsetLayout((m, n), (-1,), (m, 1), n, m, None, False)
    return SubsetLayout((m, n), (-2,), (1, n), m, n, None, False)


def _chunk_layout(numel: int, k: int, target: int, fallback: bool) -> SubsetLayout:
    return SubsetLayout((numel // k, k), (-1,), (numel // k, 1), k, numel // k, target, fallback)


@lru_cache(maxsize=4096)
def subset_layout(shape: tuple[int, ...], subset_size: int | str) -> SubsetLayout:
    """The partition of a problem of shape ``shape`` under the rule ``subset_size`` (module docstring)."""
    shape = tuple(int(s) for s in shape)
    numel = math.prod(shape)
    if numel == 0 or subset_size == "coordinate":
        return _coordinate_layout(shape)
    if subset_size == "norm":
        return SubsetLayout((numel,), (-1,), (1,), numel, 1, None, False)
    if subset_size == "heuristics":
        if len(shape) <= 1:
            return _coordinate_layout(shape)
        return _matrix_heuristic_layout(shape[0], numel // shape[0])
    if subset_size > 0:
        target = subset_size
    else:
        target = math.floor(math.sqrt(numel) / (-subset_size))
    clamped = max(target, 1)
    k = largest_divisor_at_most(numel, clamped)
    fallback = numel > 1 and k == 1 and target != 1
    return _chunk_layout(numel, k, target, fallback)


def resolve_layout(problem_shape, subset_size, policy: str, label: str) -> SubsetLayout:
    """:func:`subset_layout` plus the fallback policy (``label`` names the parameter in messages)."""
    layout = subset_layout(tuple(problem_shape), subset_size)
    if layout.fallback and policy != "allow":
        numel = math.prod(layout.view)
        message = (
            f"subset_size={subset_size} asks for subsets of {layout.target} coordinates for {label}, but numel={numel} "
            f"has no divisor in [2, {max(layout.target, 1)}]"
            if layout.target >= 1
            else f"subset_size={subset_size} gives the target ⌊√{numel}/{-subset_size}⌋ = {layout.target} for {label}"
        )
        message += "; the subsets fall back to single coordinates (k = 1, an Adam-sized state)"
        if policy == "raise":
            raise ValueError(message + ". Pass subset_fallback='allow' to accept it, or pick another subset_size")
        warnings.warn(message, SubsetFallbackWarning, stacklevel=2)
    return layout


def subset_sum_of_squares(grad: torch.Tensor, layout: SubsetLayout, batch_ndim: int) -> torch.Tensor:
    r""":math:`\|g_{\Psi_j}\|_2^2` for every subset, shape ``[*batch, *layout.state_shape]``."""
    batch = grad.shape[:batch_ndim]
    if layout.num_subsets == 1 and is_dtensor(grad) and grad.dim() > batch_ndim:  # a shard stays a shard
        sq = (grad * grad).sum(dim=tuple(range(batch_ndim, grad.dim())), keepdim=True)
        return sq.reshape((*batch, *layout.state_shape))
    g = _subset_view(grad, (*batch, *layout.view))
    sq = g * g
    if not layout.reduce_dims:
        return sq
    return sq.sum(dim=layout.reduce_dims, keepdim=True)


def divide_by_subsets(numerator: torch.Tensor, denominator: torch.Tensor, layout: SubsetLayout, batch_ndim: int) -> torch.Tensor:
    """``numerator / denominator`` with the per-subset denominator broadcast over its subset.

    ``numerator`` has the parameter's shape; ``denominator`` has shape ``[*batch, *layout.state_shape]``.
    The result has the parameter's shape.
    """
    batch = numerator.shape[:batch_ndim]
    if layout.num_subsets == 1 and is_dtensor(numerator) and numerator.dim() > batch_ndim:
        return numerator / denominator.reshape((*batch, *(1,) * (numerator.dim() - batch_ndim)))
    out = _subset_view(numerator, (*batch, *layout.view)) / denominator
    if is_dtensor(out):
        return _subset_unview(out, numerator)
    return out.reshape(numerator.shape)


def subset_sums_of_squares_foreach(grads: list[torch.Tensor], layouts: list[SubsetLayout], batch_ndim: int) -> list[torch.Tensor]:
    """:func:`subset_sum_of_squares` of every tensor of a list (plain tensors; the squares in one multi-tensor op)."""
    views = [g.reshape((*g.shape[:batch_ndim], *layout.view)) for g, layout in zip(grads, layouts)]
    squares = torch._foreach_mul(views, views) if views else []
    return [sq.sum(dim=layout.reduce_dims, keepdim=True) if layout.reduce_dims else sq
            for sq, layout in zip(squares, layouts)]


def divide_by_subsets_foreach(numerators: list[torch.Tensor], denominators: list[torch.Tensor],
                              layouts: list[SubsetLayout], batch_ndim: int) -> list[torch.Tensor]:
    """:func:`divide_by_subsets` of every tensor of a list (plain tensors; the divisions in one multi-tensor op)."""
    views = [x.reshape((*x.shape[:batch_ndim], *layout.view)) for x, layout in zip(numerators, layouts)]
    quotients = torch._foreach_div(views, denominators) if views else []
    return [q.reshape(x.shape) for q, x in zip(quotients, numerators)]


def _row_chunks_stay_local(t: torch.Tensor, shape: tuple[int, ...]) -> bool:
    """Whether the ``[c, k]`` view (chunks of ``k`` consecutive entries, row-major) of a row-sharded DTensor keeps
    every chunk on one rank: the rows divide evenly over the ranks and each rank's entries split into whole
    chunks (so the view's even chunking over the ranks is the parameter's)."""
    from torch.distributed.tensor import Shard

    if t.device_mesh.ndim != 1 or tuple(t.placements) != (Shard(0),) or len(shape) != 2 or t.dim() < 1:
        return False
    rows, row_len = t.shape[0], math.prod(t.shape[1:])
    c, k = shape
    world = t.device_mesh.size()
    return k > 0 and c * k == rows * row_len and rows % world == 0 and (rows // world * row_len) % k == 0


def _subset_view(t: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """``t.reshape(shape)`` for DTensors too (FSDP2 shards): a view that keeps each rank's rows is taken locally;
    one that does not (chunks across rows, uneven shards) gathers ``t`` first (README "Distributed training")."""
    if is_dtensor(t) and tuple(t.shape) != tuple(shape):
        from torch.distributed.tensor import DTensor, Replicate, Shard

        if _row_chunks_stay_local(t, shape):
            local = t.to_local()
            view = local.reshape(-1, shape[1])
            return DTensor.from_local(view, t.device_mesh, [Shard(0)], run_check=False, shape=torch.Size(shape),
                                      stride=(shape[1], 1))
        kept = all(not isinstance(pl, Shard) or (pl.dim < len(shape) and shape[:pl.dim + 1] == tuple(t.shape[:pl.dim + 1]))
                   for pl in t.placements)
        if not kept:
            t = t.redistribute(placements=[Replicate()] * len(t.placements))
    return t.reshape(shape)


def _subset_unview(out: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`_subset_view`: ``out`` back in the shape and placement of the DTensor ``like``."""
    from torch.distributed.tensor import DTensor

    if tuple(out.shape) == tuple(like.shape):
        return out if out.placements == like.placements else out.redistribute(placements=like.placements)
    if _row_chunks_stay_local(like, tuple(out.shape)) and tuple(out.placements) == tuple(like.placements):
        local = out.to_local().reshape(-1, *like.shape[1:])
        return DTensor.from_local(local, like.device_mesh, like.placements, run_check=False, shape=like.shape,
                                  stride=like.stride())
    out = out.reshape(like.shape)
    return out if out.placements == like.placements else out.redistribute(placements=like.placements)


def describe_param(optimizer, group: dict, index: int) -> str:
    """A label for parameter ``index`` of ``group`` in error messages (its name when the group has ``param_names``)."""
    p = group["params"][index]
    for gi, g in enumerate(optimizer.param_groups):
        if g is group:
            return optimizer._param_label(gi, index)
    names = group.get("param_names")
    if names is not None and index < len(names):
        return f"'{names[index]}' (shape {tuple(p.shape)})"
    return f"parameter {index} of its group (shape {tuple(p.shape)})"


def param_layout(p: torch.Tensor, batch_ndim: int, rule: int | str) -> SubsetLayout:
    """The layout of parameter ``p`` (its problem shape is ``p.shape[batch_ndim:]``)."""
    if p.dim() < batch_ndim:
        raise ValueError(f"batch_dims={batch_ndim} but a parameter has only {p.dim()} dimensions")
    return subset_layout(tuple(p.shape[batch_ndim:]), rule)


def apply_fallback_policy(optimizer, group: dict, rule: int | str, policy: str, only=None) -> None:
    """Apply ``subset_fallback=policy`` to the parameters of ``group`` (called at construction);
    ``only(p) -> bool`` restricts it to the parameters that use ``rule``."""
    for index, p in enumerate(group["params"]):
        if only is not None and not only(p):
            continue
        if p.dim() < group["batch_dims"]:
            raise ValueError(f"batch_dims={group['batch_dims']} but {describe_param(optimizer, group, index)} has only {p.dim()} dimensions")
        resolve_layout(tuple(p.shape[group["batch_dims"]:]), rule, policy, describe_param(optimizer, group, index))
