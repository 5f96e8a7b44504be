"""Checks in the default suite: optimizer-state memory (docs/memory.md).

* measured state == sympy formula, exactly (elements, bytes, storage), for every registered optimizer on
  the contract shapes;
* the LLaMA-1B SN-SM arithmetic of docs/memory.md §3 (P, Adam, AdamSN, AdamSNSM with and without projectors)
  from the formulas, exactly;
* the GaLore element counts of docs/memory.md §3 for the five LLaMA configs (to the printed 0.1M).

tests/verify/test_memory_checks.py plants a bug for each and shows the check fails.
"""

from __future__ import annotations

import warnings

import torch

from verify.suite import check
from verify.verdicts import judged

GROUP = "memory"
SHAPES = [(), (7,), (12, 5), (5, 12), (8, 8), (3, 6, 4), (4, 3, 3, 2), (0, 5)]


def _kwargs(cls) -> dict:
    import inspect

    accepted = inspect.signature(cls.__init__).parameters
    kwargs = {"lr": 1e-3}
    for key, value in (("rank", 2), ("max_rank", 3), ("momentum", 0.9)):
        if key in accepted:
            kwargs[key] = value
    return kwargs


@check("measured optimizer state == formula, exactly, every registered optimizer", GROUP)
def state_equals_formula(quick: bool):
    import algorithms
    from verify.memory.measure import compare_state

    failures = []
    for name in sorted(algorithms.REGISTRY):
        g = torch.Generator().manual_seed(0)
        params = [torch.randn(s, generator=g, dtype=torch.float64).requires_grad_() for s in SHAPES]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                opt = algorithms.make(name, params, **_kwargs(algorithms.REGISTRY[name]))
            for _ in range(3):
                opt.zero_grad()
                sum((q.sin() * q).sum() for q in params).backward()
                opt.step()
            cmp = compare_state(opt, name)
            if not cmp.exact:
                failures.append(cmp.summary().splitlines()[0] + f" ({len(cmp.mismatches)} mismatches)")
        except Exception as exc:
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
    n = len(algorithms.REGISTRY)
    return judged(not failures, (f"{n} optimizers exact" if not failures else "; ".join(failures)))


#: docs/memory.md §3, the LLaMA-1B SN-SM arithmetic [D] (elements)
SNSM_1B = {"P": 1_339_082_752, "adam": 2_678_165_504, "adam_sn": 1_405_340_904,
           "adam_sn_sm_without_projectors": 450_256_104, "projectors": 177_209_344}


@check("LLaMA-1B SN-SM state totals == the arithmetic of docs/memory.md §3 (exact elements)", GROUP)
def snsm_llama_1b(quick: bool):
    from verify.memory.models import LLAMA_CONFIGS, parameter_count
    from verify.memory.totals import model_totals

    cfg = LLAMA_CONFIGS["llama-1b"]
    snsm = model_totals("adam_sn_sm", cfg, rank=512)
    got = {"P": parameter_count(cfg), "adam": model_totals("adam", cfg).states,
           "adam_sn": model_totals("adam_sn", cfg).states, "adam_sn_sm_without_projectors": snsm.states,
           "projectors": snsm.projectors}
    bad = {k: (got[k], v) for k, v in SNSM_1B.items() if got[k] != v}
    return judged(not bad, ("all five counts exact" if not bad else f"differ (ours, spec): {bad}"))


#: docs/memory.md §3 table (millions of elements, as printed): GaLore with / without projectors, Adam 2P
GALORE_TABLE = {"llama-60m": (81.9, 78.2, 116.1), "llama-130m": (171.5, 155.0, 268.2), "llama-350m": (326.4, 282.4, 735.9),
                "llama-1b": (1042.5, 866.3, 2678.2), "llama-7b": (4702.3, 3762.8, 13476.8)}


@check("GaLore / Adam element counts of docs/memory.md §3 for LLaMA 60M-7B", GROUP)
def galore_llama_table(quick: bool):
    from verify.memory.totals import model_totals

    bad = {}
    for model, (with_p, without_p, adam) in GALORE_TABLE.items():
        g = model_totals("galore_adamw", model)
        got = (round(g.elements() / 1e6, 1), round(g.elements(projectors=False) / 1e6, 1),
               round(model_totals("adam", model).states / 1e6, 1))
        if got != (with_p, without_p, adam):
            bad[model] = got
    return judged(not bad, ("5 models match to the printed 0.1M" if not bad else f"differ: {bad}"))
