"""Bookkeeping of the multi-tensor fast path (``fast=``; :mod:`algorithms._base`, "Fast path").

The fast path of a method runs its update on *lists* of tensors with ``torch._foreach_*`` ops, one
call per bucket of parameters that share a device, a dtype and a step count (so every scalar of the
update — bias corrections, scheduled β's — is one number per bucket, and on CUDA each call is one
multi-tensor kernel). Within a bucket the order of operations is the reference's, op for op, wherever
a foreach op exists for it; the few places that differ (reductions computed another way) are named in
each method's fast function.
"""

from __future__ import annotations

from typing import Any, Sequence, TypeVar

import torch

__all__ = ["add_scaled_", "advance_steps", "buckets", "pick"]

T = TypeVar("T")


def advance_steps(states: Sequence[dict[str, Any]]) -> list[int]:
    """``state["step"] += 1`` for every state (one multi-tensor add); returns the new counts as ints."""
    counters = [state["step"] for state in states]
    if not counters:
        return []
    torch._foreach_add_(counters, 1)
    return torch.stack(counters).tolist()


def buckets(tensors: Sequence[torch.Tensor], steps: Sequence[int] | None = None) -> list[list[int]]:
    """Indices of ``tensors`` grouped by (device, dtype[, step]), each bucket and the buckets in the order
    of first appearance."""
    out: dict[tuple, list[int]] = {}
    for i, t in enumerate(tensors):
        key = (t.device, t.dtype) if steps is None else (t.device, t.dtype, steps[i])
        out.setdefault(key, []).append(i)
    return list(out.values())


def pick(items: Sequence[T], indices: Sequence[int]) -> list[T]:
    """``[items[i] for i in indices]``."""
    return [items[i] for i in indices]


def add_scaled_(tensors: list[torch.Tensor], updates: list[torch.Tensor], scale: float | torch.Tensor) -> None:
    """``tensors += scale · updates`` in place, one multi-tensor op.

    ``scale`` a number: ``alpha=scale`` (the reference's single rounding, so the eager fast path stays
    bit-identical). ``scale`` a 0-d tensor: the compiled path (:mod:`algorithms._compiled`) passes the
    learning rate as a tensor so that a new value does not recompile; the product is then a separate op."""
    if isinstance(scale, torch.Tensor):
        torch._foreach_add_(tensors, torch._foreach_mul(updates, scale))
    else:
        torch._foreach_add_(tensors, updates, alpha=scale)
