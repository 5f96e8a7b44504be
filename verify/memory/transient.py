"""Measure the transient memory of an optimizer step on any device, CPU included, from tensor allocations.

:class:`AllocationTracker` is a ``TorchDispatchMode``: every ATen op's outputs are inspected, and a
tensor whose storage is new (not an input of the op, not already tracked) adds its storage bytes to a
running total until the last tensor sharing that storage is garbage collected (``weakref.finalize``).
Tensors that existed before (the optimizer state, passed as ``preexisting``) subtract their bytes when
they are freed inside the step (a state tensor *replaced* by a new one, as LDAdam and AdaRankGrad do).
The running total is therefore the **net** change of live tensor bytes since the step began, and its
maximum is what ``torch.cuda.max_memory_allocated() − memory_allocated()`` measures on a GPU, minus
what the tracker cannot see: the caching allocator's 512-byte rounding and memory that kernels allocate
internally (LAPACK/cuSOLVER/cuBLAS workspaces).

:func:`measure_step` runs ``optimizer.step()`` under the tracker and returns ``(peak_bytes, end_bytes)``.
"""

from __future__ import annotations

import weakref
from typing import Any, Iterable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

__all__ = ["AllocationTracker", "measure_step", "state_tensors", "transient_report", "REPORT_SHAPES"]


class AllocationTracker(TorchDispatchMode):
    """Net live tensor bytes allocated since entry (``current``) and their maximum (``peak``)."""

    def __init__(self, preexisting: Iterable[torch.Tensor] = ()) -> None:
        super().__init__()
        self.current = 0
        self.peak = 0
        self._refs: dict[int, list[int]] = {}  # data_ptr -> [tensors alive, storage bytes]
        self._known = set()
        for t in preexisting:
            st = t.untyped_storage()
            if st.nbytes() == 0 or st.data_ptr() in self._known:
                continue
            self._known.add(st.data_ptr())
            weakref.finalize(t, self._free_preexisting, st.nbytes())

    def _free_preexisting(self, nbytes: int) -> None:
        self.current -= nbytes

    def _release(self, key: int) -> None:
        entry = self._refs.get(key)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] == 0:
            self.current -= entry[1]
            del self._refs[key]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor)}
        out = func(*args, **kwargs)
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            st = t.untyped_storage()
            key, nbytes = st.data_ptr(), st.nbytes()
            if nbytes == 0:
                continue
            if key in self._refs:
                self._refs[key][0] += 1
            elif key in inputs or key in self._known:
                continue  # an in-place result or a view of a tensor that existed before the op
            else:
                self._refs[key] = [1, nbytes]
                self.current += nbytes
                self.peak = max(self.peak, self.current)
            weakref.finalize(t, self._release, key)
        return out


def state_tensors(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    """Every tensor in ``optimizer.state`` (nested dicts and lists included)."""
    out: list[torch.Tensor] = []

    def visit(value: Any) -> None:
        if isinstance(value, torch.Tensor):
            out.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                visit(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                visit(v)

    visit(dict(optimizer.state))
    return out


def measure_step(optimizer: torch.optim.Optimizer, closure=None) -> tuple[int, int]:
    """``(peak, end)`` net tensor bytes allocated by one ``optimizer.step()`` (see the module docstring)."""
    tracker = AllocationTracker(state_tensors(optimizer))
    with tracker:
        optimizer.step(closure) if closure is not None else optimizer.step()
    return tracker.peak, tracker.current


# ----------------------------------------------------------------------------- the CPU report
REPORT_SHAPES = ((176, 64), (64, 176), (64, 64), (64,))


def _small_kwargs(cls, rank: int) -> dict[str, Any]:
    import inspect

    accepted = inspect.signature(cls.__init__).parameters
    kwargs: dict[str, Any] = {"lr": 1e-4}
    for key, value in (("rank", rank), ("max_rank", rank), ("momentum", 0.9), ("update_proj_gap", 3),
                       ("max_steps_per_subspace", 3)):
        if key in accepted:
            kwargs[key] = value
    return kwargs


def transient_report(names: Iterable[str] | None = None, *, shapes=REPORT_SHAPES, rank: int = 16, steps: int = 7,
                     dtype: torch.dtype = torch.float32, seed: int = 0) -> dict[str, Any]:
    """Measured (this module) vs predicted (:mod:`verify.memory.formulas`) step transients, per algorithm and
    parameter shape, one parameter per optimizer, refreshes every 3 steps; the first step (state creation)
    is excluded. Ratios are reported, not asserted."""
    import warnings

    import algorithms

    from .formulas import param_memory

    rows = []
    for name in sorted(algorithms.REGISTRY) if names is None else names:
        cls = algorithms.REGISTRY[name]
        kwargs = _small_kwargs(cls, rank)
        for shape in shapes:
            gen = torch.Generator().manual_seed(seed)
            p = torch.randn(shape, generator=gen, dtype=dtype).requires_grad_()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                opt = algorithms.make(name, [p], **kwargs)
            peaks = []
            for _ in range(steps):
                p.grad = torch.randn(shape, generator=gen, dtype=dtype)
                peaks.append(measure_step(opt)[0])
            fm = param_memory(name, shape, opt.param_groups[0])
            predicted = fm.transient_bytes(p.element_size())
            measured = max(peaks[1:])
            rows.append({"algorithm": name, "shape": list(shape), "route": fm.route, "measured_peak_bytes": measured,
                         "measured_by_step": peaks, "predicted_bytes": predicted,
                         "ratio": measured / predicted if predicted else (None if measured else 1.0)})
    return {"description": "Step transients on CPU: the net peak of tensor allocations during optimizer.step() "
                           "(verify/memory/transient.py) against the documented temporaries of verify/memory/formulas.py; "
                           "LAPACK-internal workspace is invisible to both.",
            "settings": {"rank": rank, "steps": steps, "dtype": str(dtype), "refresh_every": 3},
            "torch": torch.__version__, "rows": rows}
