r"""Paper versus the authors' code, run: both variants of an optimizer on identical gradients.

Every optimizer whose authors' code departs from its paper has ``variant="paper"`` and
``variant="official"``, and most departures are also an explicit constructor argument (the class
docstrings list them). This engine shows each documented difference by running the two sides on the
same gradient stream with everything else equal, and records **the step where they part and by how
much**; the paper claims (``paper_checks/``) read the saved file and judge it against the step the
documentation predicts.

Each :class:`Comparison` is one run through the oracle (:func:`verify.oracle.compare`): the
reference side is the registered optimizer with ``reference`` keyword arguments, the other side the
same class (or, for an exact identity, another registered class) with ``candidate`` arguments; both
run in float64 on the oracle's default parameters (a tall, wide and square matrix, a 4×3×5 tensor, a
vector, a scalar) and its low-rank gradient stream (moving subspaces, norms that rise and fall so
clipping and limiters bind on some steps), with weight decay 0.1 unless a comparison sets it. Two
sides *part* at the first step where the relative parameter difference ``max|a − b| / max|b|``
exceeds :data:`PART_TOLERANCE`. Every comparison also runs a **control** (the reference settings on
both sides), which must agree exactly: a nonzero control means the run is nondeterministic and no
difference can be read from it.

A ``"construction"`` comparison records instead which side refuses a setting (e.g. a rank above the
matrix side: the paper variant raises, the authors' code truncates silently).

Regenerate (a few seconds on one core)::

    python -m verify.variants --out results/variants     # or: verify report --refresh-variants
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

__all__ = ["PART_TOLERANCE", "Comparison", "COMPARISONS", "run_comparison", "run_all", "write_results", "main"]

#: two float64 runs "part" when their relative parameter difference exceeds this (the oracle's float64 rtol)
PART_TOLERANCE = 1e-10
#: steps per comparison: refreshes every GAP steps are seen twice after the first
STEPS = 20
GAP = 8
SCHEMA = 1


@dataclass(frozen=True)
class Comparison:
    key: str  #: "<algorithm>/<what differs>", unique
    algorithm: str  #: the reference's registry name
    item: str  #: what differs, in words (from the class docstring)
    reference: dict[str, Any]  #: keyword arguments of the reference side (the paper's choice)
    candidate: dict[str, Any]  #: keyword arguments of the other side
    common: dict[str, Any] = field(default_factory=dict)  #: keyword arguments of both sides
    candidate_algorithm: str | None = None  #: another registry name (exact identities)
    kind: str = "difference"  #: "difference", "identity" or "construction"
    steps: int = STEPS
    shapes: tuple[tuple[int, ...], ...] | None = None  #: None: the oracle's default parameters


def _gap(**kw: Any) -> dict[str, Any]:
    return {"update_proj_gap": GAP, **kw}


# The paper side first; the official value of one item (everything else pinned) on the other side.
# Items bound to the variant alone (SVD dtype and signs) compare the two variants with every explicit
# item pinned equal.
_GALORE_PINNED = {"lr": 1e-2, "eps": 1e-8, "scale": 0.25, "eps_placement": "torch", "weight_decay_timing": "before",
                  "square_side": "left"}
_FIRA_PINNED = {**_GALORE_PINNED, "residual_form": "paper"}
_SM_PINNED = {"refresh": "reset", "correct_sgd_part": False, "rank_overflow": "raise"}
_SNSM_PINNED = {**_SM_PINNED, "eps_placement": "torch"}
_MARS_PINNED = {"first_step": "paper", "clip": "global", "optimize_1d": True}
_SHAMPOO_PINNED = {"first_step": "paper", "clip": "none", "optimize_1d": True, "orthogonalizer": "svd",
                   "shape_factor": False, "ns_dtype": None}

COMPARISONS: tuple[Comparison, ...] = (
    # ---------------------------------------------------------------- GaLore (Algorithm 2 vs galore-torch 1.0)
    Comparison("galore_adamw/variants", "galore_adamw", "the variants as shipped (every default)",
               {"variant": "paper"}, {"variant": "official"}, _gap()),
    Comparison("galore_adamw/eps_placement", "galore_adamw", "ε on the bias-corrected √V̂ (paper) or added to the "
               "uncorrected √V (code, HF style)", {"variant": "paper", **_GALORE_PINNED},
               {"variant": "paper", **_GALORE_PINNED, "eps_placement": "hf"}, _gap()),
    Comparison("galore_adamw/weight_decay_timing", "galore_adamw", "decoupled decay before (ours; Algorithm 2 has "
               "none) or after the update (code, raw lr, no α)", {"variant": "paper", **_GALORE_PINNED},
               {"variant": "paper", **_GALORE_PINNED, "weight_decay_timing": "after"}, _gap()),
    Comparison("galore_adamw/square_side", "galore_adamw", "a square matrix projected on the left (Algorithm 2, "
               "m ≤ n) or the right (code, m ≥ n)", {"variant": "paper", **_GALORE_PINNED},
               {"variant": "paper", **_GALORE_PINNED, "square_side": "right"}, _gap()),
    Comparison("galore_adamw/svd", "galore_adamw", "SVD in the parameter's dtype with pinned signs (paper) or in "
               "float32 with raw LAPACK signs (code)", {"variant": "paper", **_GALORE_PINNED},
               {"variant": "official", **_GALORE_PINNED}, _gap()),
    Comparison("galore_adamw/rank_overflow", "galore_adamw", "a rank above the projected side: ValueError (paper) "
               "or silent truncation (code)", {"variant": "paper", "rank": 32}, {"variant": "official", "rank": 32},
               _gap(), kind="construction"),
    # ---------------------------------------------------------------- Fira (Algorithm 1 vs fira 1.0.2)
    Comparison("fira_adamw/variants", "fira_adamw", "the variants as shipped (every default)",
               {"variant": "paper"}, {"variant": "official"}, _gap()),
    Comparison("fira_adamw/residual_form", "fira_adamw", "residual (I − PPᵀ)G scaled by α (paper) or G − αPR "
               "without α (code), at the paper's α = 0.25", {"variant": "paper", **_FIRA_PINNED},
               {"variant": "paper", **_FIRA_PINNED, "residual_form": "official"}, _gap()),
    Comparison("fira_adamw/residual_form_alpha1", "fira_adamw", "the same two residuals at α = 1, without the "
               "limiter", {"variant": "paper", **_FIRA_PINNED, "scale": 1.0, "limiter_gamma": None},
               {"variant": "paper", **_FIRA_PINNED, "scale": 1.0, "limiter_gamma": None, "residual_form": "official"},
               _gap()),
    Comparison("fira_adamw/limiter_ratio_alpha1", "fira_adamw", "at α = 1 with the limiter: it sees the "
               "bias-corrected S_t (paper) or the uncorrected S_t/b_t (code)",
               {"variant": "paper", **_FIRA_PINNED, "scale": 1.0},
               {"variant": "paper", **_FIRA_PINNED, "scale": 1.0, "residual_form": "official"}, _gap()),
    Comparison("fira_adamw/eps_placement", "fira_adamw", "bias-corrected N_t (paper) or the HF step size with ε on "
               "the uncorrected √V, so the limiter sees S_t/b_t (code)", {"variant": "paper", **_FIRA_PINNED},
               {"variant": "paper", **_FIRA_PINNED, "eps_placement": "hf"}, _gap()),
    Comparison("fira_adamw/weight_decay_timing", "fira_adamw", "decoupled decay before (ours; Algorithm 1 has "
               "none) or after the update (code)", {"variant": "paper", **_FIRA_PINNED},
               {"variant": "paper", **_FIRA_PINNED, "weight_decay_timing": "after"}, _gap()),
    Comparison("fira_adamw/square_side", "fira_adamw", "a square matrix projected on the left (Algorithm 1) or the "
               "right (code)", {"variant": "paper", **_FIRA_PINNED},
               {"variant": "paper", **_FIRA_PINNED, "square_side": "right"}, _gap()),
    Comparison("fira_adamw/svd", "fira_adamw", "SVD in the parameter's dtype with pinned signs (paper) or in "
               "float32 with raw signs (code)", {"variant": "paper", **_FIRA_PINNED},
               {"variant": "official", **_FIRA_PINNED}, _gap()),
    Comparison("fira_adamw/rank_overflow", "fira_adamw", "a rank above the projected side: ValueError (paper) or "
               "silent truncation (code)", {"variant": "paper", "rank": 32}, {"variant": "official", "rank": 32},
               _gap(), kind="construction"),
    # ---------------------------------------------------------------- LDAdam (code at f3c5daf)
    Comparison("ldadam/variants", "ldadam", "decompositions in the parameter's dtype with pinned signs (paper) or "
               "float32 QR/SVD with raw signs (code)", {"variant": "paper"}, {"variant": "official"}),
    Comparison("ldadam/reverse_std_square", "ldadam", "proj_side='reverse_std' on a square matrix: right (paper, "
               "the opposite of 'std') or left (code's side test)", {"variant": "paper", "proj_side": "reverse_std"},
               {"variant": "official", "proj_side": "reverse_std"}),
    # ---------------------------------------------------------------- SN / SM (authors' GenericOptim)
    Comparison("adam_sn/eps_placement", "adam_sn", "ε after the bias-corrected √v̂ (textbook Adam, paper side "
               "unverified) or added to the uncorrected √v (code)", {"variant": "paper"}, {"variant": "official"},
               {"subset_size": "heuristics"}),
    Comparison("adam_sn/beta2_one", "adam_sn", "β₂ = 1 with bias correction: accumulation with c₂ = 1 (paper) or "
               "c₂ = 1 − 1ᵗ = 0, a zero step (code)", {"variant": "paper"}, {"variant": "official"},
               {"subset_size": "heuristics", "betas": (0.9, 1.0), "weight_decay": 0.0, "eps_placement": "torch"}),
    Comparison("rmsprop_sn/eps_placement", "rmsprop_sn", "ε after the bias-corrected √v̂ or added to the "
               "uncorrected √v (code)", {"variant": "paper"}, {"variant": "official"},
               {"subset_size": "heuristics", "bias_correction": True}),
    Comparison("adagrad_subset_norm/b0_eps", "adagrad_subset_norm", "b₀ = 1e-2 inside the root and ε = 0 (theory, "
               "unverified) or b₀ = 0 and ε = 1e-6 after the root (code)", {"variant": "paper"},
               {"variant": "official"}, {"subset_size": "heuristics"}),
    Comparison("adagrad_norm/b0_eps", "adagrad_norm", "AdaGrad-Norm with the SN conventions: b₀ inside the root "
               "and ε = 0 (theory, unverified) or b₀ = 0 and ε = 1e-6 after the root (code)", {"variant": "paper"},
               {"variant": "official"}),
    Comparison("adagrad_coordinate/b0_eps", "adagrad_coordinate", "AdaGrad-Coordinate with the same two conventions",
               {"variant": "paper"}, {"variant": "official"}),
    Comparison("subspace_momentum/refresh", "subspace_momentum", "momentum reset at a refresh (paper side, "
               "unverified) or the code's stale-basis refresh step (bug 1)", {"variant": "paper", **_SM_PINNED},
               {"variant": "paper", **_SM_PINNED, "refresh": "official"}, _gap()),
    Comparison("subspace_momentum/correct_sgd_part", "subspace_momentum", "bias correction on the momentum only "
               "(paper side, unverified) or on the orthogonal SGD part too (code)",
               {"variant": "paper", **_SM_PINNED}, {"variant": "paper", **_SM_PINNED, "correct_sgd_part": True},
               _gap(bias_correction=True)),
    Comparison("subspace_momentum/svd", "subspace_momentum", "SVD in the parameter's dtype with pinned signs or "
               "float32 with raw signs (code)", {"variant": "paper", **_SM_PINNED},
               {"variant": "official", **_SM_PINNED}, _gap()),
    Comparison("subspace_momentum/rank_overflow", "subspace_momentum", "a rank above the projected side: "
               "ValueError (paper) or silent truncation (code)", {"variant": "paper", "rank": 32},
               {"variant": "official", "rank": 32}, _gap(), kind="construction"),
    Comparison("adam_sn_sm/variants", "adam_sn_sm", "the variants as shipped (every default)",
               {"variant": "paper"}, {"variant": "official"}, _gap()),
    Comparison("adam_sn_sm/refresh", "adam_sn_sm", "momentum reset at a refresh or the code's stale-basis "
               "refresh step", {"variant": "paper", **_SNSM_PINNED},
               {"variant": "paper", **_SNSM_PINNED, "refresh": "official"}, _gap()),
    # ---------------------------------------------------------------- MARS (Algorithms 2-4 vs the official mars.py)
    Comparison("mars_adamw/variants", "mars_adamw", "the variants as shipped (every default)",
               {"variant": "paper"}, {"variant": "official"}),
    Comparison("mars_adamw/first_step", "mars_adamw", "c₁ = g₁ (paper: x₁ = x₀) or (1 + k)·g₁ (code: last_grad "
               "starts at 0), with clipping off", {"variant": "paper", **_MARS_PINNED, "clip": "none"},
               {"variant": "paper", **_MARS_PINNED, "clip": "none", "first_step": "official"}),
    Comparison("mars_adamw/first_step_clipped", "mars_adamw", "the same, with the paper's global clip (which "
               "binds at step 1 of this stream)", {"variant": "paper", **_MARS_PINNED},
               {"variant": "paper", **_MARS_PINNED, "first_step": "official"}),
    Comparison("mars_adamw/clip", "mars_adamw", "clip c_t at norm 1 over all parameters (paper) or per tensor "
               "(code)", {"variant": "paper", **_MARS_PINNED}, {"variant": "paper", **_MARS_PINNED, "clip": "tensor"}),
    Comparison("mars_adamw/optimize_1d", "mars_adamw", "every parameter on the MARS rule (paper) or parameters that "
               "are not exactly 2-D on the AdamW fallback (code)", {"variant": "paper", **_MARS_PINNED},
               {"variant": "paper", **_MARS_PINNED, "optimize_1d": False}),
    Comparison("mars_lion/first_step", "mars_lion", "c₁ = g₁ (paper) or (1 + k)·g₁ (code), with clipping off",
               {"variant": "paper", **_MARS_PINNED, "clip": "none"},
               {"variant": "paper", **_MARS_PINNED, "clip": "none", "first_step": "official"}),
    Comparison("mars_lion/variants", "mars_lion", "the variants as shipped (every default)",
               {"variant": "paper"}, {"variant": "official"}),
    Comparison("mars_shampoo/variants", "mars_shampoo", "the variants as shipped (every default)",
               {"variant": "paper"}, {"variant": "official"}),
    Comparison("mars_shampoo/ns_dtype", "mars_shampoo", "Newton–Schulz in the parameter's dtype or in bfloat16 "
               "(code)", {"variant": "paper", **_SHAMPOO_PINNED, "orthogonalizer": "newton_schulz"},
               {"variant": "paper", **_SHAMPOO_PINNED, "orthogonalizer": "newton_schulz", "ns_dtype": "bfloat16"}),
    Comparison("mars_shampoo/orthogonalizer", "mars_shampoo", "the exact SVD polar factor (Algorithm 4) or five "
               "Newton–Schulz steps (code; here in float64)", {"variant": "paper", **_SHAMPOO_PINNED},
               {"variant": "paper", **_SHAMPOO_PINNED, "orthogonalizer": "newton_schulz"}),
    Comparison("mars_shampoo/shape_factor", "mars_shampoo", "no shape factor (Algorithm 4) or √max(1, m/n) (code)",
               {"variant": "paper", **_SHAMPOO_PINNED}, {"variant": "paper", **_SHAMPOO_PINNED, "shape_factor": True}),
    Comparison("mars_shampoo/clip", "mars_shampoo", "no clipping (Algorithm 4) or a per-tensor clip (code)",
               {"variant": "paper", **_SHAMPOO_PINNED}, {"variant": "paper", **_SHAMPOO_PINNED, "clip": "tensor"}),
    # ---------------------------------------------------------------- exact identities stated by the papers
    Comparison("mars_lion/lion_identity", "lion", "Lion(β₁, β₂) ≡ MARS-approx-Lion with β = β₂, "
               "γ = (β₂ − β₁)/β₂, no clipping (MARS eqs. 3.18–3.19)", {"betas": (0.9, 0.99)},
               {"beta1": 0.99, "gamma": (0.99 - 0.9) / 0.99, "clip": "none", "first_step": "official",
                "optimize_1d": True}, {"lr": 1e-3}, candidate_algorithm="mars_lion", kind="identity"),
    Comparison("mars_adamw/gamma0_identity", "adam", "MARS-AdamW with γ = 0 and no clipping ≡ AdamW",
               {"betas": (0.95, 0.99), "eps": 1e-8}, {"gamma": 0.0, "clip": "none", "variant": "paper",
                                                     "betas": (0.95, 0.99), "eps": 1e-8},
               {"lr": 1e-3}, candidate_algorithm="mars_adamw", kind="identity"),
)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One intra-op thread: the runs are tiny, and several threads on a shared machine only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _first_above(errors: Sequence[float | None], steps: Sequence[int]) -> int | None:
    for step, err in zip(steps, errors):
        if err is None or not math.isfinite(err) or err > PART_TOLERANCE:
            return step
    return None


def _compare(c: Comparison, candidate_kwargs: dict[str, Any], candidate_algorithm: str | None):
    import algorithms
    from verify.oracle import compare

    return compare(c.algorithm, algorithms.REGISTRY[candidate_algorithm or c.algorithm], kwargs=dict(c.common),
                   reference_kwargs=dict(c.reference), candidate_kwargs=dict(candidate_kwargs), shapes=c.shapes,
                   steps=c.steps, dtype=torch.float64, strict=True, candidate_name=f"{c.key} (other side)")


def _construction(c: Comparison) -> dict[str, Any]:
    """Build each side on the default parameters and take one step; record what each raised."""
    import algorithms
    from verify.oracle.problem import DEFAULT_SHAPES, initial_values

    def attempt(kwargs: dict[str, Any]) -> str | None:
        params = [x.requires_grad_() for x in initial_values(c.shapes or DEFAULT_SHAPES, 0, torch.float64)]
        try:
            opt = algorithms.make(c.algorithm, params, **c.common, **kwargs)
            for p in params:
                p.grad = torch.ones_like(p)
            opt.step()
        except (ValueError, TypeError) as exc:
            return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        return None

    return {"reference_error": attempt(c.reference), "candidate_error": attempt(c.candidate)}


def run_comparison(c: Comparison) -> dict[str, Any]:
    """Run one comparison (and its control) and return its JSON row."""
    row: dict[str, Any] = {"key": c.key, "algorithm": c.algorithm, "candidate_algorithm": c.candidate_algorithm,
                           "item": c.item, "kind": c.kind, "reference": _jsonable(c.reference),
                           "candidate": _jsonable(c.candidate), "common": _jsonable(c.common)}
    with _one_thread(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # e.g. the ZeroStepWarning a reproduced bug raises: recorded, not printed
        if c.kind == "construction":
            row.update(_construction(c))
        else:
            report = _compare(c, c.candidate, c.candidate_algorithm)
            control = _compare(c, c.reference, None)
    row["warnings"] = sorted({w.category.__name__ for w in caught})
    if c.kind == "construction":
        return row
    steps = report.compared_steps
    per_param = report.series["params"]
    first_per = {name: _first_above(errs, steps) for name, errs in per_param.items()}
    per_step = report.param_err  # max over parameters (inf where a value is not a number)
    finite = [e for e in per_step if math.isfinite(e)]
    first = _first_above(per_step, steps)
    parting_param = None
    error_at_parting = None
    if first is not None:
        k = steps.index(first)
        parting_param, error_at_parting = max(((n, e[k]) for n, e in per_param.items() if e[k] is not None),
                                              key=lambda t: t[1], default=(None, None))
    worst = max(finite) if len(finite) == len(per_step) and finite else None
    control_errs = control.param_err
    row.update({
        "steps": len(steps), "shapes": [list(s) for s in report.shapes], "params": report.param_names,
        "part_tolerance": PART_TOLERANCE, "first_parting_step": first, "parting_param": parting_param,
        "error_at_parting": error_at_parting, "first_parting_step_per_param": first_per,
        "max_error": worst, "max_error_step": steps[per_step.index(worst)] if worst is not None else None,
        "max_error_per_step": [e if math.isfinite(e) else None for e in per_step],
        "max_error_per_param": {name: (max(errs) if errs and None not in errs else None)
                                for name, errs in per_param.items()},
        "control_max_error": max(control_errs) if control_errs and all(map(math.isfinite, control_errs)) else None,
        "settings": report.settings,
        "hyperparameters_differing": [d.key for d in report.hyperparameters.differences],
    })
    return row


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def run_all(keys: Sequence[str] | None = None) -> list[dict[str, Any]]:
    chosen = [c for c in COMPARISONS if keys is None or c.key in keys]
    unknown = sorted(set(keys or ()) - {c.key for c in COMPARISONS})
    if unknown:
        raise ValueError(f"unknown comparison(s) {unknown}; known: {[c.key for c in COMPARISONS]}")
    return [run_comparison(c) for c in chosen]


def write_results(out_dir: str | os.PathLike, rows: list[dict[str, Any]] | None = None) -> Path:
    """Run every comparison and write ``<out_dir>/variants.json`` (strict JSON)."""
    from verify.rates.store import provenance

    rows = run_all() if rows is None else rows
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = {"schema": SCHEMA, "description": __doc__.strip().splitlines()[0],
            "meta": {"command": "python -m verify.variants", "part_tolerance": PART_TOLERANCE,
                     "dtype": "float64", "gradients": "lowrank (verify.oracle.gradients)", **provenance()},
            "results": rows}
    path = out / "variants.json"
    path.write_text(json.dumps(data, indent=1, allow_nan=False, ensure_ascii=False) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verify.variants", description=__doc__.strip().splitlines()[0])
    parser.add_argument("--out", default="results/variants", help="folder for variants.json (default: results/variants)")
    parser.add_argument("--only", default=None, help="comma-separated comparison keys (printed, nothing written)")
    args = parser.parse_args(argv)
    if args.only:
        for row in run_all([k.strip() for k in args.only.split(",") if k.strip()]):
            print(json.dumps({k: v for k, v in row.items() if k != "max_error_per_step"}, ensure_ascii=False))
        return 0
    path = write_results(args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
