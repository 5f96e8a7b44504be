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

from typing import Any

import torch

__all__ = ["is_flattened_shard", "refuse_flattened_shards", "is_dtensor"]


def is_flattened_shard(p: torch.Tensor) -> bool:
    """True for FSDP1's ``FlatParameter`` and for the 1-D views it hands out with ``use_orig_params=True``
    (torch marks both with ``_fsdp_flattened``; a ``FlatParameter`` also has ``_is_flat_param``)."""
    return bool(getattr(p, "_fsdp_flattened", False) or getattr(p, "_is_flat_param", False))


def is_dtensor(t: Any) -> bool:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # a torch build without torch.distributed
        return False
    return isinstance(t, DTensor)


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
