"""Compare an optimizer's measured state (:mod:`.walker`) with its formula (:mod:`.formulas`), exactly.

For every parameter that has state: the set of state keys must be the formula's, and for every key
the element count, the dtype (the parameter's dtype for ``"param"`` terms), the tensor bytes and the
storage bytes must equal the formula's; host keys must live on the CPU; no two keys may share a
storage. Any difference is a :class:`Mismatch` — nothing is tolerated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .formulas import param_memory
from .walker import walk_state

__all__ = ["Mismatch", "StateComparison", "runtime_quantities", "compare_state"]


@dataclass(frozen=True)
class Mismatch:
    param: str
    key: str
    what: str
    measured: Any
    formula: Any

    def __str__(self) -> str:
        return f"{self.param}:{self.key}: {self.what} measured {self.measured!r} != formula {self.formula!r}"


@dataclass
class StateComparison:
    algorithm: str
    mismatches: list[Mismatch]
    measured_elements: int
    formula_elements: int
    measured_bytes: int
    formula_bytes: int
    storage_bytes: int
    params_checked: int

    @property
    def exact(self) -> bool:
        return not self.mismatches and self.measured_elements == self.formula_elements \
            and self.measured_bytes == self.formula_bytes == self.storage_bytes

    def summary(self) -> str:
        head = (f"{self.algorithm}: {self.params_checked} parameters, elements {self.measured_elements} "
                f"(formula {self.formula_elements}), bytes {self.measured_bytes} (formula {self.formula_bytes}, "
                f"storage {self.storage_bytes})")
        return head + "".join(f"\n  {m}" for m in self.mismatches)


def runtime_quantities(optimizer: torch.optim.Optimizer, param: torch.Tensor) -> dict[str, int]:
    """Trajectory-dependent inputs of a formula, read from the optimizer's state through
    :mod:`verify.rank.diagnostics` (AdaRankGrad: the current rank r_t and the number of refreshes ℓ);
    empty for static methods."""
    from verify.rank.diagnostics import rank_trace, refresh_steps

    trace = rank_trace(optimizer, param)
    if trace:
        return {"rank": int(trace[-1]), "refreshes": len(refresh_steps(optimizer, param))}
    return {}


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def compare_state(optimizer: torch.optim.Optimizer, algorithm: str | None = None) -> StateComparison:
    """Measured state of ``optimizer`` against :func:`param_memory` for each parameter (see module doc)."""
    algorithm = algorithm or getattr(optimizer, "registry_name", "") or type(optimizer).__name__
    report = walk_state(optimizer)
    measured = report.by_param()
    mismatches: list[Mismatch] = []
    formula_elements = formula_bytes = 0
    flat = [(g, p) for g in optimizer.param_groups for p in g["params"]]
    for index, (group, param) in enumerate(flat):
        if index not in measured:
            continue
        ps = measured[index]
        device = "cuda" if param.device.type == "cuda" else "cpu"
        fm = param_memory(algorithm, tuple(param.shape), group, runtime=runtime_quantities(optimizer, param), device=device)
        leaves = ps.by_path()
        terms = fm.by_key()
        for key in sorted(set(leaves) - set(terms)):
            mismatches.append(Mismatch(ps.name, key, "state key not in the formula", leaves[key].numel, None))
        for key in sorted(set(terms) - set(leaves)):
            mismatches.append(Mismatch(ps.name, key, "formula key missing from the state", None, fm.count(terms[key])))
        param_bytes = param.element_size()
        for key in sorted(set(terms) & set(leaves)):
            leaf, term = leaves[key], terms[key]
            want_elements = fm.count(term)
            want_dtype = _dtype_name(param.dtype) if term.dtype == "param" else term.dtype
            want_bytes = want_elements * term.element_size(param_bytes)
            if leaf.kind != "tensor":
                mismatches.append(Mismatch(ps.name, key, "kind", leaf.kind, "tensor"))
                continue
            if leaf.numel != want_elements:
                mismatches.append(Mismatch(ps.name, key, "elements", leaf.numel, want_elements))
            if leaf.dtype != want_dtype:
                mismatches.append(Mismatch(ps.name, key, "dtype", leaf.dtype, want_dtype))
            if leaf.nbytes != want_bytes:
                mismatches.append(Mismatch(ps.name, key, "bytes", leaf.nbytes, want_bytes))
            if leaf.storage_nbytes != leaf.nbytes:
                mismatches.append(Mismatch(ps.name, key, "storage bytes (a view keeps a larger buffer alive)",
                                           leaf.storage_nbytes, leaf.nbytes))
            want_device = "cpu" if term.host else str(param.device)
            if leaf.device != want_device:
                mismatches.append(Mismatch(ps.name, key, "device", leaf.device, want_device))
        formula_elements += fm.elements()
        formula_bytes += fm.nbytes(param_bytes)
    for a, b in report.aliases:
        mismatches.append(Mismatch(a, "", "shares its storage with", b, "no alias"))
    return StateComparison(algorithm, mismatches, report.elements, formula_elements, report.nbytes, formula_bytes,
                           report.unique_storage_bytes, len(measured))
