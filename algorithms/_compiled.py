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

The learning rate is passed to the compiled function as a 0-d float64 tensor on the parameters' device
(:func:`compiled` converts the ``lr`` keyword), and the updates scale by it with a multi-tensor multiply
(:func:`algorithms._foreach.add_scaled_`) instead of a Python ``alpha``, which dynamo would specialise:
so a learning-rate schedule runs on one compiled graph, with no recompilation per new value
(tests/test_compiled_fast_path.py counts the compiled frames under a schedule). Compilation costs
seconds per function at the first step. The project keeps inductor's dropped ``alpha`` in ``add(mm, alpha=...)`` (pytorch/pytorch#167313)
as a strict xfail; no compiled function here multiplies matrices.
"""

from __future__ import annotations

from typing import Callable, TypeVar

import torch

__all__ = ["compiled"]

F = TypeVar("F", bound=Callable)

_COMPILED: dict[Callable, Callable] = {}


def compiled(fn: F) -> F:
    """``torch.compile(fn, dynamic=True)`` (built once per function and process), called with its ``lr``
    keyword as a 0-d float64 tensor on the device of the first parameter (``args[0]``, a list of tensors)."""
    kernel = _COMPILED.get(fn)
    if kernel is None:
        kernel = _COMPILED[fn] = torch.compile(fn, dynamic=True)

    def call(*args, **kwargs):
        lr = kwargs.get("lr")
        if isinstance(lr, (int, float)) and not isinstance(lr, bool) and args and args[0]:
            kwargs["lr"] = torch.tensor(float(lr), dtype=torch.float64, device=args[0][0].device)
        return kernel(*args, **kwargs)

    return call  # type: ignore[return-value]
