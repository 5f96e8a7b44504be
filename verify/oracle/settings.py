"""The oracle's default settings, and the hyperparameters it fills in so every code path runs.

==================  ==============================  ==========================================================
setting             default                         why
==================  ==============================  ==========================================================
shapes              24x16, 16x24, 20x20, 4x3x5,     a tall, wide and square matrix, a conv-like 3-D tensor, a
                    17, 0-D                         vector and a scalar (:mod:`verify.oracle.problem`)
gradients           ``"lowrank"``                   decaying spectra, moving subspaces, norms that rise and
                                                    fall (:mod:`verify.oracle.gradients`)
steps               50, or 2·T + 1 for a            two refreshes after the first, so a refresh that comes
                    reference with a refresh        early, late or never is seen (T = ``update_proj_gap`` or
                    period T                        ``max_steps_per_subspace``; 401 at the default T = 200)
weight_decay        0.1 on both sides               decay order and coupled-vs-decoupled decay change the step
                                                    (0 hides them); only when both constructors accept it and
                                                    neither side sets it
rank / max_rank     ⌊s/4⌋ / ⌊s/2⌋ for the           the reference's default (128) does not fit the matrices
                    reference (s = smallest         (s = 16 by default: rank 4, max_rank 8); the candidate gets
                    matrix side)                    it too when its constructor names it (else pass it, e.g. in
                                                    ``groups``); only when the default is larger
dtype / rtol        float32 / per dtype             float64 1e-10, float32 1e-5, float16 2e-3, bfloat16 2e-2
                                                    (bitsandbytes' tolerances for fp32/fp16/bf16)
strict              off                             ``strict=True``: float64 and rtol 1e-10, whatever the
                                                    candidate's usual dtype (finds deviations below float32
                                                    round-off, e.g. an ε moved by 1e-15)
==================  ==============================  ==========================================================

Every value the oracle fills in is listed in the report's ``settings``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch

from .problem import smallest_matrix_side

__all__ = [
    "DEFAULT_RTOL", "STRICT_RTOL", "DEFAULT_STEPS", "REFRESH_PERIODS", "EXERCISED", "FITTED_RANKS",
    "REFRESH_KEYS", "accepts", "names_parameter", "signature_defaults", "resolve_dtype_rtol",
    "resolve_kwargs", "auto_steps", "Resolved",
]

#: per candidate dtype: bitsandbytes uses 1e-5 (fp32), 1e-3 (fp16), 1e-2 (bf16) for 20 steps
DEFAULT_RTOL = {torch.float64: 1e-10, torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 2e-2}
STRICT_RTOL = 1e-10
DEFAULT_STEPS = 50
REFRESH_PERIODS = 2
#: hyperparameters set on both sides when neither sets them (and both constructors accept them)
EXERCISED: dict[str, Any] = {"weight_decay": 0.1}
#: rank-like hyperparameters fitted to the smallest matrix side: the side divided by this
FITTED_RANKS = {"rank": 4, "max_rank": 2}
#: group keys holding a refresh period (steps between subspace refreshes)
REFRESH_KEYS = ("update_proj_gap", "max_steps_per_subspace")


def _signature(obj: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        return None


def accepts(obj: Callable[..., Any], key: str) -> bool:
    """Whether ``obj(params, key=...)`` is accepted: a named parameter or ``**kwargs``."""
    sig = _signature(obj)
    if sig is None:
        return False
    return any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()) or names_parameter(obj, key)


def names_parameter(obj: Callable[..., Any], key: str) -> bool:
    """Whether ``obj``'s signature names ``key`` (``**kwargs`` does not count)."""
    sig = _signature(obj)
    if sig is None or key not in sig.parameters:
        return False
    return sig.parameters[key].kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def signature_defaults(obj: Callable[..., Any]) -> dict[str, Any]:
    """The keyword defaults of ``obj``'s signature (a class: its constructor), ``params`` excluded."""
    sig = _signature(obj)
    if sig is None:
        return {}
    return {
        name: p.default
        for name, p in sig.parameters.items()
        if p.default is not p.empty and name != "params"
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }


def resolve_dtype_rtol(dtype: torch.dtype | None, rtol: float | None, strict: bool) -> tuple[torch.dtype, float]:
    """The candidate dtype and tolerance (``strict``: float64 and 1e-10)."""
    from .errors import OracleInputError

    if strict:
        if dtype not in (None, torch.float64):
            raise OracleInputError(f"strict runs the candidate in float64; drop dtype={dtype} or strict")
        if rtol not in (None, STRICT_RTOL):
            raise OracleInputError(f"strict fixes rtol at {STRICT_RTOL:g}; drop rtol={rtol} or strict")
        return torch.float64, STRICT_RTOL
    dtype = torch.float32 if dtype is None else dtype
    if rtol is None:
        if dtype not in DEFAULT_RTOL:
            valid = ", ".join(str(d).replace("torch.", "") for d in DEFAULT_RTOL)
            raise OracleInputError(f"dtype: no default tolerance for {dtype} (valid: {valid}); pass rtol")
        rtol = DEFAULT_RTOL[dtype]
    if not rtol > 0:
        raise OracleInputError(f"rtol must be > 0, got {rtol}")
    return dtype, float(rtol)


@dataclass
class Resolved:
    """The keyword arguments each side is built with, and what the oracle filled in."""

    reference_kwargs: dict[str, Any]
    candidate_kwargs: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    #: per key the value the oracle set, and on which sides ("both", "reference")
    filled: dict[str, tuple[Any, str]] = field(default_factory=dict)


def _group_keys(groups: Iterable[dict[str, Any]] | None) -> set[str]:
    return {k for g in (groups or ()) for k in g if k != "params"}


def resolve_kwargs(
    reference_cls: type,
    candidate: Callable[..., Any],
    shapes: tuple[tuple[int, ...], ...],
    *,
    kwargs: dict[str, Any],
    reference_kwargs: dict[str, Any],
    candidate_kwargs: dict[str, Any],
    reference_groups: list[dict[str, Any]] | None,
    candidate_groups: list[dict[str, Any]] | None,
) -> Resolved:
    """Merge the common and per-side kwargs, then fill the exercised and fitted hyperparameters."""
    ref_kw = {**kwargs, **reference_kwargs}
    cand_kw = {**kwargs, **candidate_kwargs}
    ref_set = set(ref_kw) | _group_keys(reference_groups)
    cand_set = set(cand_kw) | _group_keys(candidate_groups)
    out = Resolved(ref_kw, cand_kw)
    for key, value in EXERCISED.items():
        if key in ref_set or key in cand_set:
            continue
        if accepts(reference_cls, key) and accepts(candidate, key):
            ref_kw[key] = cand_kw[key] = value
            out.filled[key] = (value, "both")
            out.notes.append(f"{key}={value} on both sides (oracle default, so decay conventions show; set {key} to change)")
    side = smallest_matrix_side(shapes)
    defaults = signature_defaults(reference_cls)
    for key, divisor in FITTED_RANKS.items():
        default = defaults.get(key)
        if side is None or key in ref_set or not isinstance(default, int) or isinstance(default, bool):
            continue
        fitted = max(1, side // divisor)
        if default <= fitted:
            continue
        ref_kw[key] = fitted
        where = "reference"
        if key not in cand_set and names_parameter(candidate, key):
            cand_kw[key] = fitted
            where = "both"
        out.filled[key] = (fitted, where)
        tail = "and the candidate" if where == "both" else f"the candidate must use {key}={fitted} too (e.g. in its groups)"
        out.notes.append(f"{key}={fitted} for the reference (its default {default} does not fit the smallest matrix "
                         f"side {side}; {key} = side/{divisor}); {tail}")
    return out


def auto_steps(reference_groups: list[dict[str, Any]]) -> tuple[int, str]:
    """The default number of steps for a reference and the reason: two refresh periods plus one."""
    periods = [g[k] for g in reference_groups for k in REFRESH_KEYS
               if isinstance(g.get(k), int) and not isinstance(g.get(k), bool)]
    if not periods:
        return DEFAULT_STEPS, f"steps={DEFAULT_STEPS} (default)"
    period = max(periods)
    key = next(k for g in reference_groups for k in REFRESH_KEYS if g.get(k) == period)
    steps = max(DEFAULT_STEPS, REFRESH_PERIODS * period + 1)
    return steps, f"steps={steps} ({REFRESH_PERIODS} refresh periods of {key}={period}, plus one)"
