"""Model-level optimizer-state totals for the LLaMA configurations (docs/memory.md §2–3), per algorithm.

Totals are sums of :func:`verify.memory.formulas.param_memory` over the parameters of the LLaMA
configuration built on the ``meta`` device (:func:`verify.memory.models.meta_model`), in the parameter
groups each paper's routing gives it (:func:`verify.memory.models.table_groups`, through
:func:`algorithms.grouping.paper_param_groups`), at the GaLore Table 2 ranks unless given. Counts are in elements, split into

* ``states``: the papers' "optimizer states" (moments, subset accumulators, Fira's scalar);
* ``projectors``: dense bases and index vectors (papers differ on whether they count them);
* ``error_feedback``: LDAdam's EF buffer (the toolkit's state; the official code borrows ``p.grad``);
* ``bookkeeping``: step counters, generator states, logs (never in a paper's number).

Bytes use the state dtype (``bytes_per_element``: 2 for the papers' BF16 tables) for floating-point
terms, 8 for int64 counters/indices and 1 for generator states. ``GB`` = 10⁹ bytes, ``GiB`` = 2³⁰.

AdaRankGrad has no fixed footprint: the static total is its **peak** (every matrix at ``max_rank``);
the time average needs an r_t trace (docs/memory.md §5).

The registered MARS optimizers are counted from their formulas (the toolkit keeps ``prev_grad`` as a
copy, and ``x_prev`` for the exact estimator); :data:`MARS_PER_ELEMENT` adds the per-element counts of
docs/methods.md §2.4 for the **official code** and a minimal faithful implementation (:func:`mars_totals`),
routed ``all_2d`` with an AdamW fallback (2 per element) for the other tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from algorithms.grouping import routing_of
from synthetic.llama import LlamaConfig

from .formulas import BOOKKEEPING_KINDS, PAPER_KINDS, PROJECTOR_KINDS, group_transient, param_memory
from .models import GALORE_RANKS, meta_model, model_name, parameter_count, resolve_model, table_groups

__all__ = ["GB", "GIB", "ModelTotals", "model_totals", "MARS_PER_ELEMENT", "mars_totals", "mars_routed_shapes"]

GB = 10**9
GIB = 2**30

#: docs/methods.md §2.4: state elements per parameter element (excluding the parameter and the current gradient)
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


def _group_options(group: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in group.items() if k not in ("params", "param_names")}


def model_totals(
    algorithm: str,
    model: str | LlamaConfig,
    *,
    rank: int | None = None,
    method_options: dict[str, Any] | None = None,
    dense_options: dict[str, Any] | None = None,
    device: str = "cuda",
) -> ModelTotals:
    """State totals of ``algorithm`` on ``model`` with the paper's routing (options override the defaults)."""
    cfg = resolve_model(model)
    name = model_name(cfg)
    rank = GALORE_RANKS.get(name) if rank is None else rank
    groups = table_groups(algorithm, meta_model(cfg), rank, method_options=method_options, dense_options=dense_options)
    options = [_group_options(g) for g in groups]
    rule = routing_of(algorithm).rule
    totals = ModelTotals(algorithm, name, rank, parameter_count(cfg),
                         options={"rule": rule, "method": options[0], "dense": options[1] if len(options) > 1 else {}})
    transient = 0
    for group, group_options in zip(groups, options):
        cache: dict[tuple[int, ...], tuple] = {}
        memories = []
        for p in group["params"]:
            shape = tuple(p.shape)
            if shape not in cache:
                fm = param_memory(algorithm, shape, group_options, device=device)
                cache[shape] = (fm.elements(PAPER_KINDS), fm.elements(PROJECTOR_KINDS),
                                fm.elements(frozenset({"error_feedback"})), fm.elements(BOOKKEEPING_KINDS),
                                fm.nbytes(0, BOOKKEEPING_KINDS),  # no param-dtype bookkeeping terms
                                fm)
            states, projectors, ef, book, book_bytes, fm = cache[shape]
            totals.states += states
            totals.projectors += projectors
            totals.error_feedback += ef
            totals.bookkeeping_elements += book
            totals.bookkeeping_bytes += book_bytes
            memories.append((fm, None))
        transient = max(transient, group_transient(memories))  # the groups step one after another
    totals.transient_peak_elements = transient
    return totals


def mars_totals(variant: str, model: str | LlamaConfig, implementation: str = "official") -> ModelTotals:
    """MARS state totals from :data:`MARS_PER_ELEMENT`: the official routing (every 2-D tensor MARS, the rest
    AdamW: 2 per element), read from the routed groups of the registered MARS-AdamW."""
    if variant not in MARS_PER_ELEMENT:
        raise ValueError(f"variant must be one of {sorted(MARS_PER_ELEMENT)}, got {variant!r}")
    if implementation not in ("official", "minimal"):
        raise ValueError(f"implementation must be 'official' or 'minimal', got {implementation!r}")
    cfg = resolve_model(model)
    per = MARS_PER_ELEMENT[variant][implementation]
    totals = ModelTotals(variant, model_name(cfg), None, parameter_count(cfg), options={"implementation": implementation})
    for shape, routed_to_mars in mars_routed_shapes(meta_model(cfg)):
        totals.states += (per if routed_to_mars else 2) * math.prod(shape)
        totals.bookkeeping_elements += 1
        totals.bookkeeping_bytes += 8
    return totals


def mars_routed_shapes(model) -> list[tuple[tuple[int, ...], bool]]:
    """``(shape, takes the MARS rule)`` for every parameter of ``model`` under MARS's paper routing, as the
    registered MARS-AdamW itself decides it (built on the model's parameters, e.g. on the ``meta`` device)."""
    import algorithms
    from algorithms.mars import uses_mars_rule

    optimizer = algorithms.make("mars_adamw", table_groups("mars_adamw", model, None))
    return [(tuple(p.shape), uses_mars_rule(p, group)) for group in optimizer.param_groups for p in group["params"]]
