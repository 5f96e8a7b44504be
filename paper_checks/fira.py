"""Fira (Chen et al., "Fira: Can We Achieve Full-rank Training of LLMs Under Low-rank Constraint?",
NeurIPS 2025, arXiv 2410.01623): what the paper claims and what optverify measures.

Fira is GaLore plus the part of the gradient outside the subspace, rescaled column by column by the
norm ratio of the subspace Adam step and limited in growth (Algorithm 1, App. A.1). It has no
convergence theorem (Theorems 1–2 bound the scaling factor's approximation error and variance); its
headline numbers are the memory estimates of Table 3, the 61.1% state saving at 1B and the C4
perplexities. The camera-ready text was read ([P]; its formula images were not decoded); the
authors' code is fira 1.0.2 (repository commit 5dcc167).
"""

from __future__ import annotations

from verify.verdicts import Outcome

from ._results import (MemoryCell, RateClaim, ThirdPartyClaim, VariantClaim, custom, gpu_state_claim,
                       memory_cell_claims, model_label, model_total, not_checked, rate_claims, thirdparty_claims,
                       variant_claims)

PAPER = "Fira, arXiv 2410.01623"
PREFIX = "fira"

# ----------------------------------------------------------------------------- rates
THEOREMS = {
    "no_theorem_sqrt_analogy": ("none (Theorems 1–2 of App. E bound the scaling factor)",
                                "O(1/√T) by analogy with Adam, also with noise outside the subspace: the toolkit's "
                                "expectation, not the paper's claim."),
}
RATES = rate_claims(PAPER, PREFIX, THEOREMS, [
    RateClaim("fira_adamw/slope", "U", "no_theorem_sqrt_analogy", "matrix_iso"),
    RateClaim("fira_adamw/rows-slope", "U", "no_theorem_sqrt_analogy", "matrix_rows"),
])

# ----------------------------------------------------------------------------- memory
_T3 = "Table 3 (parameters + gradients + optimizer states, BF16)"
_DIFF = "Table 3 − GaLore Table 2 (the gradients Fira adds)"
MEMORY = memory_cell_claims(PAPER, PREFIX, [
    *(MemoryCell("Fira Table 3 (", model, entry, value, _T3, "P",
                 f"{_T3}: {entry} at {model_label(model)} needs {value} G.")
      for model, full, fira in (("llama-60m", 0.48, 0.36), ("llama-130m", 1.01, 0.77), ("llama-350m", 2.74, 1.9),
                                ("llama-1b", 10.4, 6.98))
      for entry, value in (("full rank", full), ("Fira (= GaLore)", fira))),
    *(MemoryCell("Fira Table 3 − GaLore Table 2", model, entry, value, _DIFF, "D",
                 f"Fira's Table 3 exceeds GaLore's Table 2 by the BF16 gradients (Fira: GaLore's table omitted "
                 f"them): {value} G at {model_label(model)} ({entry}).", from_printed=True)
      for model, value in (("llama-60m", 0.12), ("llama-130m", 0.25), ("llama-350m", 0.68), ("llama-1b", 2.6))
      for entry in ("full rank", "GaLore")),
])


def _saving_1b(quick: bool) -> Outcome:
    adam, fira = model_total("llama-1b", "adam"), model_total("llama-1b", "fira_adamw")
    accountings = {"with projectors": 1 - (fira["states"] + fira["projectors"]) / adam["states"],
                   "without projectors": 1 - fira["states"] / adam["states"]}
    numbers = {"claimed": 0.611, "measured": accountings}
    text = ", ".join(f"{k} {100 * v:.2f}%" for k, v in accountings.items())
    hits = [k for k, v in accountings.items() if round(100 * v, 1) == 61.1]
    if hits:
        return Outcome("PASS", f"reproduced {hits[0]} ({text}; rank 512, attention and MLP projected)", numbers)
    return Outcome("FAIL", f"no accounting prints 61.1%: {text}", numbers)


def _equal_to_galore(quick: bool) -> Outcome:
    """Table 8 measures 54.6 GB for both Fira and GaLore: their states differ by one scalar per matrix."""
    fira, galore = model_total("llama-1b", "fira_adamw"), model_total("llama-1b", "galore_adamw")
    extra = (fira["states"] + fira["projectors"]) - (galore["states"] + galore["projectors"])
    extra_gb = extra * 2 / 1e9
    numbers = {"claimed": "54.6 GB = 54.6 GB (difference below 0.05 GB)", "measured": {"extra_elements": extra,
               "extra_GB_bf16": extra_gb}}
    if 0 <= extra_gb < 0.05:
        return Outcome("PASS", f"Fira's state exceeds GaLore's by {extra:,} elements ({extra_gb:.2e} GB in BF16): "
                       "one stored residual norm per projected matrix, invisible at the table's 0.1 GB", numbers)
    return Outcome("FAIL", f"Fira's state differs from GaLore's by {extra:,} elements ({extra_gb:.3f} GB)", numbers)


EXTRA_MEMORY = [
    custom(f"{PREFIX}.memory.1b-state-saving", paper=PAPER, where="§5.1 (LLaMA-1B)", provenance="P", kind="memory",
           statement="Fira (like GaLore) saves 61.1% of the optimizer-state memory of full-rank Adam at 1B.",
           check=_saving_1b),
    custom(f"{PREFIX}.memory.table8-same-as-galore", paper=PAPER, where="Table 8 (LLaMA-1B pre-training, measured)",
           provenance="P", kind="memory", statement="Fira needs the same memory as GaLore (54.6 GB and 54.6 GB "
           "measured at 1B): the residual adds no state beyond one norm per matrix.", check=_equal_to_galore),
    gpu_state_claim(PAPER, PREFIX, ("fira_adamw",)),
]

# ----------------------------------------------------------------------------- paper vs code
_C = "fira 1.0.2 fira_adamw.py vs Algorithm 1 (algorithms/fira_adamw.py, Variants)"
CODE = variant_claims(PAPER, PREFIX, [
    VariantClaim("fira_adamw/variants", "Algorithm 1 and App. B.1 defaults vs fira 1.0.2 defaults", "C",
                 "The authors' code as shipped departs from Algorithm 1 with the paper's settings at the first "
                 "step, in every parameter.", parts_at=1,
                 params=("tall", "wide", "square", "tensor", "vector", "scalar")),
    VariantClaim("fira_adamw/residual_form", _C, "C",
                 "At the paper's α = 0.25 the code's residual G − αPR keeps (1 − α)PR inside the subspace and is "
                 "not multiplied by α; Algorithm 1 scales (I − PPᵀ)G by α. The two part at step 1, in the "
                 "projected matrices only.", parts_at=1, params=("tall", "wide", "square"), min_error=1e-3),
    VariantClaim("fira_adamw/residual_form_alpha1", _C, "C",
                 "At α = 1 (and without the limiter) the code's residual equals the paper's: the two never part "
                 "beyond round-off.", parts_at=None, max_error=1e-12),
    VariantClaim("fira_adamw/limiter_ratio_alpha1", _C, "C",
                 "The code's limiter sees S_t without the bias-correction factor (S_t/b_t): even at α = 1 it binds "
                 "differently in early steps. The first step only records ‖S₁‖, so the two part at step 2.",
                 parts_at=2, params=("tall", "wide", "square")),
    VariantClaim("fira_adamw/eps_placement", _C, "C",
                 "The code's HF-style ε (on the uncorrected √V) parts from Algorithm 1's bias-corrected N_t at "
                 "step 1, by ε-relative amounts.", parts_at=1, max_error=1e-5),
    VariantClaim("fira_adamw/weight_decay_timing", _C, "C",
                 "The code decays the already updated weight with the raw lr; decay before the step parts from "
                 "it at step 1.", parts_at=1, params=("tall", "wide", "square", "tensor", "vector", "scalar")),
    VariantClaim("fira_adamw/square_side", _C, "C",
                 "The code projects a square matrix on the right, Algorithm 1 (m ≤ n) on the left: only square "
                 "matrices differ, from step 1.", parts_at=1, params=("square",)),
    VariantClaim("fira_adamw/svd", _C, "C",
                 "The code's float32 SVD with raw signs: float32 round-off until the refresh at step 9, then an "
                 "O(1e-3) jump once a singular vector's sign flips under unrotated moments.", check_step=False,
                 params=("tall", "wide", "square"), windows=((1, 8, 1e-12, 1e-6), (9, 9, 1e-4, None))),
    VariantClaim("fira_adamw/rank_overflow", _C, "C",
                 "A rank above the projected side: the code truncates it silently, variant='paper' refuses it."),
])

# ----------------------------------------------------------------------------- the authors' package
_O = "fira 1.0.2 (PyPI), run against the reference (results/oracle/thirdparty.json)"
ORACLE = thirdparty_claims(PAPER, PREFIX, [
    ThirdPartyClaim("fira", "PASS", _O, "V", "fira 1.0.2's FiraAdamW at α = 1 equals variant='official' step for "
                    "step (limiter on the uncorrected ratio included)."),
    ThirdPartyClaim("fira-alpha", "PASS", _O, "V", "… and at α = 0.25, with the code's residual G − αPR."),
    ThirdPartyClaim("fira-alpha-paper-residual", "FAIL at step 1", _O, "V", "The authors' code departs from "
                    "Algorithm 1's residual at α = 0.25 from the first step.", kind="code-vs-paper"),
    ThirdPartyClaim("po-fira", "FAIL at step 200", "pytorch-optimizer 4.1.0 Fira (third party)", "T",
                    "pytorch-optimizer's Fira refreshes one step early, as its GaLore.", kind="code-vs-paper"),
])

# ----------------------------------------------------------------------------- not checked here
NOT_CHECKED = [
    not_checked(f"{PREFIX}.not-checked.table3-larger", paper=PAPER, where="Table 3 (130M–1B)", provenance="P",
                kind="gpu", statement="Fira beats GaLore and full-rank Adam on C4 from 130M to 1B (22.73, 16.85, "
                "14.31 against full-rank 25.08, 18.80, 15.56).",
                why="needs C4 and billion-token runs; the GPU validation compares Fira with GaLore at the 60M shape "
                "for 300 steps on a synthetic language (claim fira.table3-60m)"),
    not_checked(f"{PREFIX}.not-checked.table4-7b", paper=PAPER, where="Table 4 (LLaMA-7B, commonsense reasoning)",
                provenance="P", kind="gpu", statement="Fine-tuning LLaMA-7B at rank 32, Fira averages 76.9 on eight "
                "commonsense tasks (LoRA 74.7, GaLore 62.7).", why="a 7B fine-tuning run on external benchmarks"),
]
