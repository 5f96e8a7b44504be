r"""Sharded and replicated parameters: what each optimizer accepts under DDP, FSDP2 and FSDP1.

**DDP** hands every rank the whole parameter and the same (all-reduced) gradient; every optimizer
here is deterministic (randomness from per-parameter generators seeded by the group's ``seed``), so
the ranks stay bit-identical without any communication of their own.

**FSDP1** (``torch.distributed.fsdp.FullyShardedDataParallel``) hands the optimizer 1-D pieces of
flattened parameters: a ``FlatParameter`` (``use_orig_params=False``) or views of the original
parameters that are 1-D slices of this rank's shard, often empty (``use_orig_params=True``). Only an
optimizer whose step is elementwise (each entry's update depends on that entry's gradient and state
alone: ``elementwise = True`` in its class: sgd, adam, lion, adagrad_coordinate) computes the paper's
step on such pieces. Every other optimizer needs each parameter's own shape (a projection of each
weight matrix, subsets along its axes, MARS's 2-D routing) or norms over whole tensors, and would
silently run another algorithm (e.g. GaLore as plain AdamW); it refuses flattened parameters with a
``TypeError`` at construction (:func:`refuse_flattened_shards`). Use FSDP2 instead.

**FSDP2** (``torch.distributed.fsdp.fully_shard``) keeps each parameter's shape: parameters and
gradients are ``DTensor``\ s sharded on their first dimension. Elementwise steps run on the local
shards as they are; reductions over whole tensors (norms, subset sums along dim 0) are DTensor
reductions, which communicate; the projected methods compute their subspaces with the collectives of
:mod:`algorithms._sharded` (README "Distributed training" lists the traffic per method).
"""

from __future__ import annotations

import functools
from typing import Any

import torch

__all__ = ["is_flattened_shard", "refuse_flattened_shards", "is_dtensor", "dtensors_finite", "all_reduce_over_mesh", "full_for", "replicate_like", "settle"]


def is_flattened_shard(p: torch.Tensor) -> bool:
    """True for FSDP1's ``FlatParameter`` and for the 1-D views it hands out with ``use_orig_params=True``
    (torch marks both with ``_fsdp_flattened``; a ``FlatParameter`` also has ``_is_flat_param``)."""
    return bool(getattr(p, "_fsdp_flattened", False) or getattr(p, "_is_flat_param", False))


@functools.cache
def _dtensor_class() -> type | None:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # a torch build without torch.distributed
        return None
    return DTensor


def is_dtensor(t: Any) -> bool:
    cls = _dtensor_class()
    return cls is not None and isinstance(t, cls)


def refuse_flattened_shards(optimizer: Any, group_index: int) -> None:
    """``TypeError`` when a parameter of group ``group_index`` is an FSDP1 flattened shard and the optimizer's
    step is not elementwise (see the module docstring)."""
    if getattr(type(optimizer), "elementwise", False):
        return
    cls = type(optimizer).__name__
    for pi, p in enumerate(optimizer.param_groups[group_index]["params"]):
        if is_flattened_shard(p):
            raise TypeError(
                f"{cls}: {optimizer._param_label(group_index, pi)} is a flattened FSDP1 shard "
                "(FullyShardedDataParallel hands the optimizer 1-D pieces of its parameters); "
                f"{cls}'s step depends on each parameter's shape or on norms over whole tensors, so on these pieces "
                "it would silently run another algorithm. Shard with FSDP2 (torch.distributed.fsdp.fully_shard, whose "
                "DTensor parameters keep their shapes) or use DDP; only elementwise optimizers (sgd, adam, lion, "
                "adagrad_coordinate) accept FSDP1 shards"
            )


def all_reduce_over_mesh(t: torch.Tensor, mesh: Any, op: Any = None) -> torch.Tensor:
    """All-reduce the plain tensor ``t`` in place over every dimension of ``mesh`` (default: sum)."""
    import torch.distributed as dist

    op = dist.ReduceOp.SUM if op is None else op
    for dim in range(mesh.ndim):
        dist.all_reduce(t, op=op, group=mesh.get_group(dim))
    return t


def dtensors_finite(tensors: list[torch.Tensor]) -> list[bool]:
    """For DTensors: whether each is finite *everywhere* (on every rank's shard), one all-reduce per mesh, so
    every rank takes the same decision (a rank that raised alone would leave the others waiting)."""
    import torch.distributed as dist

    flags = [True] * len(tensors)
    by_mesh: dict[Any, list[int]] = {}
    for i, t in enumerate(tensors):
        by_mesh.setdefault(t.device_mesh, []).append(i)
    for mesh, indices in by_mesh.items():
        local = torch.stack([torch.isfinite(tensors[i].to_local()).all() for i in indices]).to(torch.int32)
        verdicts = all_reduce_over_mesh(local, mesh, dist.ReduceOp.MIN).tolist()
        for i, ok in zip(indices, verdicts):
            flags[i] = bool(ok)
    return flags


def _placements_for(p: torch.Tensor, shape: tuple[int, ...]) -> list[Any]:
    """A state of ``shape`` next to the DTensor ``p``: sharded where it shares ``p``'s sharded dimension (same
    index, same size), replicated otherwise. (Only the memory and traffic depend on this choice: DTensor
    operations give the same values for any placement.)"""
    from torch.distributed.tensor import Replicate, Shard

    out = []
    for placement in p.placements:
        if isinstance(placement, Shard) and placement.dim < len(shape) and shape[placement.dim] == p.shape[placement.dim]:
            out.append(Shard(placement.dim))
        elif (isinstance(placement, Shard) and placement.dim == 0 and len(shape) == 2 and shape[1] == 1
              and p.dim() >= 1 and p.shape[0] % p.device_mesh.size() == 0 and shape[0] % p.device_mesh.size() == 0):
            out.append(Shard(0))  # a per-chunk state (subset norms) of evenly sharded rows: each rank's chunks
        else:
            out.append(Replicate())
    return out


def full_for(p: torch.Tensor, shape, fill: float = 0.0, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``torch.full(shape, fill)`` on ``p``'s device in ``dtype`` (default ``p.dtype``); a DTensor on ``p``'s
    mesh when ``p`` is one (see :func:`_placements_for`)."""
    shape = tuple(int(d) for d in shape)
    dtype = p.dtype if dtype is None else dtype
    if not is_dtensor(p):
        return torch.full(shape, fill, dtype=dtype, device=p.device)
    from torch.distributed.tensor import full

    return full(shape, fill, dtype=dtype, device_mesh=p.device_mesh, placements=_placements_for(p, shape))


def replicate_like(ref: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``t`` (computed identically on every rank, e.g. drawn from a generator in the same state) as a replicated
    DTensor on ``ref``'s mesh when ``ref`` is a DTensor; ``t`` itself otherwise. No communication."""
    if not is_dtensor(ref) or is_dtensor(t):
        return t
    from torch.distributed.tensor import DTensor, Replicate

    return DTensor.from_local(t, ref.device_mesh, [Replicate()] * ref.device_mesh.ndim, run_check=False)


def settle(t: torch.Tensor) -> torch.Tensor:
    """A DTensor holding partial sums (a product that contracts the sharded dimension, e.g. ``Uᵀ G``) with the sums
    done (all-reduced, replicated), so that it can be stored and updated in place; anything else unchanged."""
    if not is_dtensor(t):
        return t
    from torch.distributed.tensor import Partial, Replicate

    if not any(isinstance(p, Partial) for p in t.placements):
        return t
    return t.redistribute(placements=[Replicate() if isinstance(p, Partial) else p for p in t.placements])
