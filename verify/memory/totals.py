"""Model-level optimizer-state totals for the LLaMA configurations (memory.md §2–3), per algorithm.

Totals are sums of :func:`verify.memory.formulas.param_memory` over the shape list of
:mod:`verify.memory.models`, routed as each paper did (``PAPER_ROUTING``), at the GaLore Table 2
ranks unless given. Counts are in elements, split into

* ``states``: the papers' "optimizer states" (moments, subset accumulators, Fira's scalar);
* ``projectors``: dense bases and index vectors (papers differ on whether they count them);
* ``error_feedback``: LDAdam's EF buffer (the toolkit's state; the official code borrows ``p.grad``);
* ``bookkeeping``: step counters, generator states, logs (never in a paper's number).

Bytes use the state dtype (``bytes_per_element``: 2 for the papers' BF16 tables) for floating-point
terms, 8 for int64 counters/indices and 1 for generator states. ``GB`` = 10⁹ bytes, ``GiB`` = 2³⁰.

AdaRankGrad has no fixed footprint: the static total is its **peak** (every matrix at ``max_rank``);
the time average needs an r_t trace (memory.md §4).

The registered MARS optimizers are counted from their formulas (the toolkit keeps ``prev_grad`` as a
copy, and ``x_prev`` for the exact estimator); :data:`MARS_PER_ELEMENT` adds the per-element counts of
mars.md §3 for the **official code** and a minimal faithful implementation (:func:`mars_totals`),
routed ``all_2d`` with an AdamW fallback (2 per element) for the other tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .formulas import BOOKKEEPING_KINDS, PAPER_KINDS, PROJECTOR_KINDS, group_transient, param_memory
from .models import GALORE_RANKS, LLAMA_CONFIGS, LlamaShape, group_options, llama_param_specs, parameter_count, route

__all__ = ["GB", "GIB", "ModelTotals", "model_totals", "MARS_PER_ELEMENT", "mars_totals", "resolve_model"]

GB = 10**9
GIB = 2**30

#: mars.md §3: state elements per parameter element (excluding the parameter and the current gradient)
MARS_PER_ELEMENT: dict[str, dict[str, int]] = {
    "mars_adamw_approx": {"official": 3, "minimal": 3},  # m, v, last_grad (official: an alias that keeps the previous grad alive)
    "mars_adamw_exact": {"official": 4, "minimal": 3},  # + previous_grad (official) / one of x_prev or g(x_t, ξ_{t+1})
    "mars_lion_approx": {"official": 3, "minimal": 2},  # official allocates the unused v
    "mars_shampoo_approx": {"official": 3, "minimal": 2},
}


@dataclass
class ModelTotals:
    algorithm: str
    model: str
    rank: int | None
    parameters: int
    states: int = 0
    projectors: int = 0
    error_feedback: int = 0
    bookkeeping_elements: int = 0
    bookkeeping_bytes: int = 0
    transient_peak_elements: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    def elements(self, *, projectors: bool = True, error_feedback: bool = True) -> int:
        return self.states + (self.projectors if projectors else 0) + (self.error_feedback if error_feedback else 0)

    def state_bytes(self, bytes_per_element: int, *, projectors: bool = True, error_feedback: bool = True,
                    bookkeeping: bool = False) -> int:
        total = self.elements(projectors=projectors, error_feedback=error_feedback) * bytes_per_element
        return total + (self.bookkeeping_bytes if bookkeeping else 0)

    def as_dict(self, bytes_per_element: int = 2) -> dict[str, Any]:
        return {
            "algorithm": self.algorithm, "model": self.model, "rank": self.rank, "parameters": self.parameters,
            "states": self.states, "projectors": self.projectors, "error_feedback": self.error_feedback,
            "bookkeeping_elements": self.bookkeeping_elements, "bookkeeping_bytes": self.bookkeeping_bytes,
            "transient_peak_elements": self.transient_peak_elements, "bytes_per_element": bytes_per_element,
            "state_GiB_with_projectors": self.state_bytes(bytes_per_element) / GIB,
            "state_GiB_without_projectors": self.state_bytes(bytes_per_element, projectors=False) / GIB,
            "options": self.options,
        }


def resolve_model(model: str | LlamaShape) -> LlamaShape:
    if isinstance(model, LlamaShape):
        return model
    key = model.lower()
    if not key.startswith("llama-"):
        key = "llama-" + key
    if key not in LLAMA_CONFIGS:
        raise ValueError(f"model must be one of {sorted(LLAMA_CONFIGS)}, got {model!r}")
    return LLAMA_CONFIGS[key]


def model_totals(
    algorithm: str,
    model: str | LlamaShape,
    *,
    rank: int | None = None,
    method_options: dict[str, Any] | None = None,
    dense_options: dict[str, Any] | None = None,
    device: str = "cuda",
) -> ModelTotals:
    """State totals of ``algorithm`` on ``model`` with the paper's routing (options override the defaults)."""
    cfg = resolve_model(model)
    rank = GALORE_RANKS.get(cfg.name) if rank is None else rank
    rule, method, dense = group_options(algorithm, rank)
    method.update(method_options or {})
    dense.update(dense_options or {})
    totals = ModelTotals(algorithm, cfg.name, rank, parameter_count(cfg), options={"rule": rule, "method": method,
                                                                                     "dense": dense})
    cache: dict[tuple[tuple[int, ...], bool], tuple] = {}
    group_memories: dict[bool, list] = {True: [], False: []}  # the method group and the dense group
    for spec in llama_param_specs(cfg):
        in_method = route(spec, rule)
        key = (spec.shape, in_method)
        if key not in cache:
            fm = param_memory(algorithm, spec.shape, method if in_method else dense, device=device)
            cache[key] = (fm.elements(PAPER_KINDS), fm.elements(PROJECTOR_KINDS),
                          fm.elements(frozenset({"error_feedback"})), fm.elements(BOOKKEEPING_KINDS),
                          fm.nbytes(0, BOOKKEEPING_KINDS),  # no param-dtype bookkeeping terms
                          fm)
        states, projectors, ef, book, book_bytes, fm = cache[key]
        totals.states += states
        totals.projectors += projectors
        totals.error_feedback += ef
        totals.bookkeeping_elements += book
        totals.bookkeeping_bytes += book_bytes
        group_memories[in_method].append((fm, None))
    totals.transient_peak_elements = max(group_transient(group_memories[g]) for g in (True, False))
    return totals


def mars_totals(variant: str, model: str | LlamaShape, implementation: str = "official") -> ModelTotals:
    """MARS state totals from :data:`MARS_PER_ELEMENT` (all 2-D tensors MARS, norms AdamW: 2 per element)."""
    if variant not in MARS_PER_ELEMENT:
        raise ValueError(f"variant must be one of {sorted(MARS_PER_ELEMENT)}, got {variant!r}")
    if implementation not in ("official", "minimal"):
        raise ValueError(f"implementation must be 'official' or 'minimal', got {implementation!r}")
    cfg = resolve_model(model)
    per = MARS_PER_ELEMENT[variant][implementation]
    totals = ModelTotals(variant, cfg.name, None, parameter_count(cfg), options={"implementation": implementation})
    for spec in llama_param_specs(cfg):
        numel = 1
        for d in spec.shape:
            numel *= d
        totals.states += (per if route(spec, "all_2d") else 2) * numel
        totals.bookkeeping_elements += 1
        totals.bookkeeping_bytes += 8
    return totals
