"""``fast="compile"`` (:mod:`algorithms._base`, "Fast path"): the fast path with its multi-tensor elementwise
updates compiled by ``torch.compile``, so that inductor fuses each update into a few kernels (one pass
over the parameters, gradients and moments, instead of one pass per ``torch._foreach_*`` op).

What is compiled: the functional multi-tensor updates of the elementwise methods and of every dense
(non-projected) parameter — :func:`algorithms.adam.adam_update_foreach` (adam, and the dense parameters
of galore_adamw, fira_adamw, ldadam, adarankgrad, the MARS AdamW fallback),
:func:`algorithms.sgd.sgd_update_foreach`, :func:`algorithms.lion.lion_update_foreach`,
:func:`algorithms.adagrad_subset_norm.adagrad_subset_norm_update_foreach` (the AdaGrad family),
:func:`algorithms.adagrad_norm.adagrad_norm_group_update_foreach`, :func:`algorithms.adam_sn.adam_sn_update_foreach`
(adam_sn, rmsprop_sn). The bookkeeping around them (state, buckets, the step counters), the MARS
core and the projected methods' decompositions and stacks run eagerly, as under ``fast=True``.

Each function is compiled once per process (``dynamic=True``: the step count and the tensor shapes are
symbolic, so a new step or a new bucket does not compile again). Numbers: compiled and eager updates
agree to round-off, not bit for bit (inductor fuses and may contract ``a*b + c`` into one rounding);
tests/test_compiled_fast_path.py measures it in float64.

Limits: the learning rate enters the updates as the ``alpha`` of a multi-tensor add, which dynamo
specialises, so each *new* value of ``lr`` compiles again; a schedule that changes ``lr`` every step
recompiles until dynamo's recompile limit, after which that function runs eagerly (correct, not fused).
Use ``fast=True`` with a learning-rate schedule. Compilation costs seconds per function at the first
step. The project keeps inductor's dropped ``alpha`` in ``add(mm, alpha=...)`` (pytorch/pytorch#167313)
as a strict xfail; no compiled function here multiplies matrices.
"""

from __future__ import annotations

from typing import Callable, TypeVar

import torch

__all__ = ["compiled"]

F = TypeVar("F", bound=Callable)

_COMPILED: dict[Callable, Callable] = {}


def compiled(fn: F) -> F:
    """``torch.compile(fn, dynamic=True)``, built once per function and process."""
    kernel = _COMPILED.get(fn)
    if kernel is None:
        kernel = _COMPILED[fn] = torch.compile(fn, dynamic=True)
    return kernel  # type: ignore[return-value]
