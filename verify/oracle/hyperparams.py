"""Effective hyperparameters of both sides and where they differ (the "defaults diff").

A first-step failure is nearly always a convention, not a bug: a different default ε, learning
rate, weight decay or variant. The effective value of a hyperparameter, per parameter, is the
constructor's signature default, overridden by the keyword arguments actually passed, overridden by
the value in the parameter's group (groups are what ``step()`` reads). Our references leave some
values as ``None`` to be resolved from ``variant``; those are resolved from the class's variant
tables. Keys are matched by name, or through :data:`ALIASES` where the ecosystems name the same
quantity differently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from .settings import signature_defaults

__all__ = ["ALIASES", "IGNORED", "Difference", "HyperparameterDiff", "effective_hyperparameters", "diff_hyperparameters"]

#: bookkeeping keys that do not change the math
IGNORED = frozenset({
    "params", "param_names", "foreach", "fused", "capturable", "differentiable", "seed", "nonfinite",
    "batch_dims", "lr_initial", "initial_lr", "step", "no_deprecation_warning", "use_triton",
})
#: reference key -> candidate keys meaning the same quantity
ALIASES: dict[str, tuple[str, ...]] = {
    "scale": ("alpha",),  # GaLore/Fira α (fira names it alpha)
    "proj_side": ("proj_type", "projection_type"),  # galore-torch / pytorch-optimizer
    "bias_correction": ("correct_bias",),  # Hugging Face AdamW
    "beta2": ("alpha",),  # torch.optim.RMSprop's smoothing constant
    "decoupled_weight_decay": ("weight_decouple",),  # pytorch-optimizer
}


def _normalise(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else tuple(value.flatten().tolist())
    if isinstance(value, (list, tuple)):
        return tuple(_normalise(v) for v in value)
    return value


def _same(a: Any, b: Any) -> bool:
    a, b = _normalise(a), _normalise(b)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0) or (math.isnan(a) and math.isnan(b))
    return a == b


def _resolve_variant_defaults(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with the ``None`` arguments a reference optimizer resolves from its variant filled in
    (:meth:`algorithms.ReferenceOptimizer.variant_default`); other classes are returned as given."""
    variant = values.get("variant")
    default = getattr(cls, "variant_default", None)
    if variant is None or default is None:
        return values
    return {key: default(variant, key, value) for key, value in values.items()}


def effective_hyperparameters(
    opt: torch.optim.Optimizer, param: torch.Tensor, constructor: Any, passed: dict[str, Any]
) -> dict[str, Any]:
    """Signature defaults < passed kwargs < the values of ``param``'s group, bookkeeping removed."""
    values = {**signature_defaults(constructor), **passed}
    for group in opt.param_groups:
        if any(q is param for q in group["params"]):
            values.update(group)
            break
    values = {k: _normalise(v) for k, v in values.items() if k not in IGNORED}
    return _resolve_variant_defaults(type(opt), values)


@dataclass
class Difference:
    """One hyperparameter whose effective values differ, and the parameters it differs for."""

    key: str
    candidate_key: str
    reference: Any
    candidate: Any
    params: list[str]

    def describe(self, all_params: int) -> str:
        name = self.key if self.key == self.candidate_key else f"{self.key} (candidate: {self.candidate_key})"
        where = "" if len(self.params) == all_params else f"  [{', '.join(self.params)}]"
        return f"{name}: reference {self.reference!r}, candidate {self.candidate!r}{where}"


@dataclass
class HyperparameterDiff:
    differences: list[Difference] = field(default_factory=list)
    reference_only: dict[str, Any] = field(default_factory=dict)
    candidate_only: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "differences": [
                {"key": d.key, "candidate_key": d.candidate_key, "reference": _jsonable(d.reference),
                 "candidate": _jsonable(d.candidate), "params": d.params}
                for d in self.differences
            ],
            "reference_only": {k: _jsonable(v) for k, v in self.reference_only.items()},
            "candidate_only": {k: _jsonable(v) for k, v in self.candidate_only.items()},
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def diff_hyperparameters(
    reference: Sequence[dict[str, Any]], candidate: Sequence[dict[str, Any]], names: Sequence[str]
) -> HyperparameterDiff:
    """Compare per-parameter effective hyperparameters (lists aligned with ``names``)."""
    out = HyperparameterDiff()
    found: dict[tuple[str, str, str, str], Difference] = {}
    ref_matched: set[str] = set()
    cand_matched: set[str] = set()
    ref_seen: dict[str, Any] = {}
    cand_seen: dict[str, Any] = {}
    for ref, cand, name in zip(reference, candidate, names):
        for key, rv in ref.items():
            ref_seen.setdefault(key, rv)
            ckey = key if key in cand else next((a for a in ALIASES.get(key, ()) if a in cand), None)
            if ckey is None:
                continue
            ref_matched.add(key)
            cand_matched.add(ckey)
            cv = cand[ckey]
            if not _same(rv, cv):
                entry = found.setdefault((key, ckey, repr(rv), repr(cv)), Difference(key, ckey, rv, cv, []))
                entry.params.append(name)
        for key, cv in cand.items():
            cand_seen.setdefault(key, cv)
    out.differences = list(found.values())
    out.reference_only = {k: v for k, v in ref_seen.items() if k not in ref_matched}
    out.candidate_only = {k: v for k, v in cand_seen.items() if k not in cand_matched}
    return out
