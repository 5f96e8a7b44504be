"""Bookkeeping shared by the low-rank optimizers (GaLore, Fira, LDAdam, AdaRankGrad, Subspace-Momentum).

* **Routing.** A parameter is projected when its group has ``lowrank=True`` (the default) and its
  *problem* shape (after the ``batch_dims`` leading independent dimensions) is a non-empty matrix.
  Everything else — 0-D, 1-D, 3-D/4-D tensors, zero-size tensors, and groups with ``lowrank=False``
  — takes the method's dense AdamW step, the authors' rule in every one of these codes (they only
  project ``nn.Linear`` weights). Each method documents the ε/weight-decay conventions of its dense
  step. :func:`algorithms.grouping.paper_param_groups` builds the groups each paper used.
* **Dense step.** :func:`dense_adamw_update` runs :func:`algorithms.adam.adam_update` on the state
  keys ``exp_avg`` / ``exp_avg_sq``, so the dense path is written once; :func:`dense_adamw_update_foreach`
  is its multi-tensor form (the fast path, ``fast=``).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from .projection import validate_rank
from .distributed import full_for
from .validation import check_bool
from .adam import adam_update, adam_update_foreach
from ._foreach import advance_steps, buckets, pick

__all__ = [
    "matrix_shape",
    "uses_projection",
    "validate_lowrank_flag",
    "checked_rank",
    "subspace_shape",
    "init_dense_state",
    "init_subspace_state",
    "dense_adamw_update",
    "dense_adamw_update_foreach",
]


def matrix_shape(p: torch.Tensor, group: dict[str, Any]) -> tuple[int, int] | None:
    """``(m, n)`` when the problem shape of ``p`` is a non-empty matrix, else ``None``."""
    shape = p.shape[group.get("batch_dims", 0):]
    if len(shape) != 2 or shape[0] == 0 or shape[1] == 0:
        return None
    return int(shape[0]), int(shape[1])


def uses_projection(p: torch.Tensor, group: dict[str, Any]) -> bool:
    """True when ``p`` gets the low-rank update (see module docstring)."""
    return bool(group.get("lowrank", True)) and matrix_shape(p, group) is not None


def validate_lowrank_flag(group: dict[str, Any]) -> None:
    if "lowrank" in group:
        check_bool("lowrank", group["lowrank"])


def checked_rank(rank: Any, m: int, n: int, *, overflow: str = "raise", name: str = "rank") -> int:
    """``rank`` checked against ``min(m, n)``, the most singular vectors a basis of an ``m × n`` matrix
    can have on either side (raise, or truncate as the official GaLore/Fira codes do); the error names
    the argument and the parameter's shape."""
    try:
        return validate_rank(rank, min(m, n), overflow=overflow, name=name)
    except ValueError as exc:
        raise ValueError(f"{exc} (parameter shape {m}x{n}: a basis has at most min(m, n) = {min(m, n)} vectors)") from None


def subspace_shape(shape: torch.Size | tuple[int, ...], side: str, rank: int) -> tuple[int, ...]:
    """Shape of the subspace coordinates of a ``[*batch, m, n]`` parameter: ``[*batch, r, n]`` (left) or
    ``[*batch, m, r]`` (right)."""
    *batch, m, n = shape
    return (*batch, rank, n) if side == "left" else (*batch, m, rank)


def init_dense_state(p: torch.Tensor, state: dict[str, Any]) -> None:
    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)


def init_subspace_state(p: torch.Tensor, state: dict[str, Any], side: str, rank: int) -> None:
    """Adam moments of the projected gradient (``subspace_shape``), zero, in the parameter's dtype."""
    shape = subspace_shape(p.shape, side, rank)
    state["exp_avg"] = full_for(p, shape)
    state["exp_avg_sq"] = full_for(p, shape)


def dense_adamw_update(
    p: torch.Tensor,
    grad: torch.Tensor,
    state: dict[str, Any],
    group: dict[str, Any],
    *,
    eps_placement: str,
    weight_decay_timing: str,
    bias_correction: bool = True,
) -> None:
    """One decoupled-AdamW step on a dense parameter; ``state["step"]`` must already be incremented."""
    beta1, beta2 = group["betas"]
    adam_update(
        p,
        grad,
        state["exp_avg"],
        state["exp_avg_sq"],
        int(state["step"]),
        lr=float(group["lr"]),
        beta1=beta1,
        beta2=beta2,
        eps=group["eps"],
        weight_decay=group["weight_decay"],
        decoupled_weight_decay=True,
        eps_placement=eps_placement,
        weight_decay_timing=weight_decay_timing,
        bias_correction=bias_correction,
    )


def dense_adamw_update_foreach(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    states: list[dict[str, Any]],
    group: dict[str, Any],
    *,
    eps_placement: str,
    weight_decay_timing: str,
    bias_correction: bool = True,
    update: Callable[..., None] = adam_update_foreach,
) -> None:
    """:func:`dense_adamw_update` on lists of parameters (multi-tensor; one call per device, dtype and step).
    Unlike the single-tensor form it advances ``state["step"]`` itself; ``update`` is
    :func:`algorithms.adam.adam_update_foreach` or its compiled form (``fast="compile"``)."""
    steps = advance_steps(states)
    beta1, beta2 = group["betas"]
    for idx in buckets(params, steps):
        update(
            pick(params, idx), pick(grads, idx), [states[i]["exp_avg"] for i in idx],
            [states[i]["exp_avg_sq"] for i in idx], steps[idx[0]], lr=float(group["lr"]), beta1=beta1, beta2=beta2,
            eps=group["eps"], weight_decay=group["weight_decay"], decoupled_weight_decay=True,
            eps_placement=eps_placement, weight_decay_timing=weight_decay_timing, bias_correction=bias_correction,
        )
