"""GaLore (Zhao et al., "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank Projection", ICML 2024,
arXiv 2403.03507v2): what the paper claims and what optverify measures.

GaLore projects each weight gradient on the top singular vectors of the current gradient, runs Adam in
that subspace and refreshes the subspace every T steps. Its theory is a rank-decay lemma (Lemma 3.3,
Corollary 3.5) and a fixed-subspace convergence result (Theorem 3.8); its headline numbers are the
memory of Tables 2 and 6 and the C4 perplexities of Table 2. The full text of v2 was read ([P]); the
authors' code is galore-torch 1.0 (repository commit 2cc66f8).
"""

from __future__ import annotations

from verify.verdicts import Outcome

from ._results import (UNSTATED_ACCOUNTING, MemoryCell, RateClaim, ThirdPartyClaim, VariantClaim, custom, fmt, gpu_state_claim, load,
                       memory_cell_claims, model_label, model_total, not_checked, rate_claims, thirdparty_claims, variant_claims)

PAPER = "GaLore, arXiv 2403.03507"
PREFIX = "galore"

# ----------------------------------------------------------------------------- rates
THEOREMS = {
    "golore_floor": ("scope of Theorem 3.8; GoLore, arXiv 2410.11289",
                     "With noisy gradients, SVD subspaces make min_t ‖∇f‖² stall at a noise floor (no T^(−1/2) "
                     "slope)."),
    "no_theorem_sqrt_analogy": ("none (Theorem 3.8 covers SGD in a fixed subspace)",
                                "O(1/√T) by analogy with Adam: the toolkit's expectation, not the paper's claim."),
}
RATES = rate_claims(PAPER, PREFIX, THEOREMS, [
    RateClaim("galore_adamw/rows-floor", "S", "golore_floor", "matrix_rows"),
    RateClaim("galore_adamw/alpha-slope", "U", "no_theorem_sqrt_analogy", "code_paths"),
])


# ----------------------------------------------------------------------------- rank decay
def _lemma33(quick: bool) -> Outcome:
    data = load("rank/lemma33.json")
    theory = data.get("theory") or {}
    rho2 = theory.get("rho_squared")
    rate = data.get("observed_late_rate")
    tested = data.get("bound_tested_steps")
    numbers = {"claimed": {"rate_at_most": rho2}, "measured": {"fitted_rate": rate, "bound_holds": data.get("bound_holds"),
               "bound_tested_steps": tested, "closed_form_ok": data.get("closed_form_ok")}}
    if not isinstance(rho2, float) or not isinstance(rate, float) or not isinstance(tested, int):
        return Outcome("INCONCLUSIVE", f"results/rank/lemma33.json holds no fitted rate or ρ² ({rate!r}, {rho2!r})",
                       numbers)
    problems = []
    if not data.get("closed_form_ok"):
        problems.append("the measured stable rank does not follow the closed form (GD run or theory wrong)")
    if not data.get("bound_holds"):
        problems.append("the measured stable rank exceeds the Lemma 3.3 bound")
    if not rate <= rho2 * (1 + 1e-9):
        problems.append(f"sr − sr∞ decays at {fmt(rate, 6)} per step, slower than ρ² = {fmt(rho2, 6)}")
    if tested < 50:
        return Outcome("INCONCLUSIVE", f"the bound was tested above round-off on only {tested} steps (< 50)", numbers)
    if problems:
        return Outcome("FAIL", "; ".join(problems), numbers)
    return Outcome("PASS", f"bound holds on every step (tested above round-off on {tested}); sr − sr∞ decays at "
                   f"{fmt(rate, 6)} per step ≤ ρ² = {fmt(rho2, 6)} ({data.get('reason')})", numbers)


def _rank_one_decomposable(quick: bool) -> Outcome:
    case = (load("rank/rank_one_limit.json").get("cases") or {}).get("N=1")
    if not case:
        return Outcome("INCONCLUSIVE", "results/rank/rank_one_limit.json has no N = 1 case")
    last, first = case.get("last_measured_sr"), case.get("first_sr")
    numbers = {"claimed": 1.0, "measured": last, "first_sr": first,
               "v1_decomposable": case.get("v1_decomposable"), "closed_form_limit": case.get("sr_at_1e7_closed_form")}
    if not case.get("v1_decomposable") or not (case.get("theory") or {}).get("lambda1_multiplicity") == 1:
        return Outcome("INCONCLUSIVE", "the N = 1 instance does not meet the premise (simple λ₁, decomposable "
                       "eigenvector)", numbers)
    if not isinstance(last, float) or not isinstance(first, float):
        return Outcome("INCONCLUSIVE", "no measured stable rank", numbers)
    if case.get("closed_form_ok") and abs(case.get("sr_at_1e7_closed_form", 0) - 1) < 1e-8 and abs(last - 1) < 0.05 * (first - 1):
        return Outcome("PASS", f"stable rank {fmt(first)} → {fmt(last, 6)} (closed-form limit "
                       f"{fmt(case.get('sr_at_1e7_closed_form'), 8)})", numbers)
    return Outcome("FAIL", f"stable rank {fmt(first)} → {fmt(last, 6)}, limit "
                   f"{fmt(case.get('sr_at_1e7_closed_form'), 8)}: not tending to one", numbers)


RANK = [
    custom(f"{PREFIX}.rank.lemma-3.3", paper=PAPER, where="Lemma 3.3", provenance="P", kind="rank",
           statement="For gradients G_t = (1/N)Σ(A_i − B_iW_tC_i) with constant A, B, C and plain GD, the stable "
           "rank obeys sr(G_t) ≤ sr(G∥) + ((1−ηλ₂)/(1−ηλ₁))^(2t)·‖G₀ − G∥‖²/‖G∥‖₂²: it decays geometrically "
           "at rate ρ² per step.", check=_lemma33, figures=("rank/figures/rank_lemma33.png",)),
    custom(f"{PREFIX}.rank.corollary-3.5", paper=PAPER, where="Corollary 3.5", provenance="P", kind="rank",
           statement="If the λ₁-eigenspace of S = (1/N)ΣC_i⊗B_i is one-dimensional and its eigenvector is "
           "decomposable, the gradient tends to rank one.", check=_rank_one_decomposable,
           figures=("rank/figures/rank_limit.png",)),
]


# ----------------------------------------------------------------------------- memory
_T2 = "Table 2 (weights + optimizer states, BF16)"
_T6 = "Table 6b (optimizer states only, BF16)"
MEMORY = memory_cell_claims(PAPER, PREFIX, [
    MemoryCell(f"GaLore {where.split(' (')[0]}", model, entry, value, where, "P",
               f"{where}: {entry} at {model_label(model)} needs {value} G.")
    for where, cells in ((_T2, (("llama-60m", 0.36, 0.24), ("llama-130m", 0.76, 0.52), ("llama-350m", 2.06, 1.22),
                                ("llama-1b", 7.8, 4.38))),
                         (_T6, (("llama-60m", 0.23, 0.13), ("llama-130m", 0.51, 0.28), ("llama-350m", 1.37, 0.54),
                                ("llama-1b", 5.2, 1.78))))
    for model, full, galore in cells
    for entry, value in (("full rank", full), ("GaLore", galore))
])


def _state_saving_7b(quick: bool) -> Outcome:
    """§5.5: at 7B, (8-bit) GaLore shrinks the optimizer states by 65.5% against (8-bit) Adam."""
    adam, galore = model_total("llama-7b", "adam"), model_total("llama-7b", "galore_adamw")
    full = adam["states"]
    with_p = 1 - (galore["states"] + galore["projectors"]) / full
    without_p = 1 - galore["states"] / full
    bf16_projector = 1 - (galore["states"] + 2 * galore["projectors"]) / full  # 8-bit moments, a bf16 projector
    accountings = {"same width, with projectors": with_p, "same width, without projectors": without_p,
                   "8-bit moments, bf16 projectors": bf16_projector}
    numbers = {"claimed": 0.655, "measured": accountings, "rank": galore.get("rank")}
    hits = [name for name, v in accountings.items() if round(100 * v, 1) == 65.5]
    text = ", ".join(f"{name} {100 * v:.1f}%" for name, v in accountings.items())
    if hits:
        return Outcome("PASS", f"reproduced by {hits[0]} ({text})", numbers)
    return Outcome("FAIL", f"no accounting prints 65.5% at rank {galore.get('rank')}: {text}; the printed value lies "
                   "between the savings with and without projectors, like Table 6", numbers,
                   assess=False, not_assessed_because=UNSTATED_ACCOUNTING)


EXTRA_MEMORY = [
    custom(f"{PREFIX}.memory.7b-state-saving", paper=PAPER, where="abstract, §5.5 (LLaMA-7B)", provenance="P",
           kind="memory", statement="GaLore reduces optimizer-state memory by up to 65.5% (LLaMA-7B, rank 1024, "
           "8-bit GaLore against 8-bit Adam: 9.6 G less).", check=_state_saving_7b),
    gpu_state_claim(PAPER, PREFIX, ("galore_adamw",)),
]


# ----------------------------------------------------------------------------- paper vs code
_C = "galore-torch 1.0 adamw.py vs Algorithm 2 (algorithms/galore_adamw.py, Variants)"
CODE = variant_claims(PAPER, PREFIX, [
    VariantClaim("galore_adamw/variants", "Algorithm 2 and §5 defaults vs galore-torch 1.0 defaults", "C",
                 "The authors' code as shipped (lr 1e-3, ε 1e-6 HF-style, α = 1, decay after the update, right side "
                 "for square matrices, float32 SVD) departs from Algorithm 2 with the paper's settings at the first "
                 "step, in every parameter.", parts_at=1,
                 params=("tall", "wide", "square", "tensor", "vector", "scalar")),
    VariantClaim("galore_adamw/eps_placement", _C, "C",
                 "The code adds ε to the uncorrected √V (HF style; effective ε/√(1−β₂ᵗ) on V̂), Algorithm 2 to "
                 "the bias-corrected √V̂: the two part at step 1, by about ε-relative amounts.",
                 parts_at=1, max_error=1e-5),
    VariantClaim("galore_adamw/weight_decay_timing", _C, "C",
                 "The code decays the already updated weight (W ← W − ηλW after the step); decoupled decay before "
                 "the step parts from it at step 1 in every parameter.", parts_at=1,
                 params=("tall", "wide", "square", "tensor", "vector", "scalar")),
    VariantClaim("galore_adamw/square_side", _C, "C",
                 "The code projects a square matrix on the right (m ≥ n), Algorithm 2 on the left (m ≤ n): only "
                 "square matrices differ, from step 1.", parts_at=1, params=("square",)),
    VariantClaim("galore_adamw/svd", _C, "C",
                 "The code takes a float32 SVD with raw LAPACK signs and never rotates the moments: float32 "
                 "round-off until the first refresh after step 1 (step 9 at T = 8), then an O(1e-3) jump once a "
                 "singular vector's sign flips under unrotated moments.", check_step=False,
                 params=("tall", "wide", "square"), windows=((1, 8, 1e-12, 1e-6), (9, 9, 1e-4, None))),
    VariantClaim("galore_adamw/rank_overflow", _C, "C",
                 "A rank above the projected side: the code truncates it silently, variant='paper' refuses it.",
                 kind="code-vs-paper"),
])


# ----------------------------------------------------------------------------- the authors' package
_O = "galore-torch 1.0 (PyPI), run against the reference (results/oracle/thirdparty.json)"
ORACLE = thirdparty_claims(PAPER, PREFIX, [
    ThirdPartyClaim("galore-torch", "PASS", _O, "V", "galore-torch 1.0's GaLoreAdamW equals variant='official' "
                    "step for step in float32 (50 steps, oracle defaults)."),
    ThirdPartyClaim("galore-torch-strict", "PASS", _O, "V", "… and in float64 to 1e-10 (both take the same "
                    "float32 SVD)."),
    ThirdPartyClaim("galore-torch-defaults", "FAIL at step 1", _O, "V", "With its own defaults the package "
                    "departs from Algorithm 2's settings at the first step (lr, ε, α)."),
    ThirdPartyClaim("po-galore", "FAIL at step 200", "pytorch-optimizer 4.1.0 GaLore (third party)", "T",
                    "pytorch-optimizer's GaLore refreshes the subspace one step early (step 200 instead of 201).",
                    kind="code-vs-paper"),
])

# ----------------------------------------------------------------------------- not checked here
NOT_CHECKED = [
    not_checked(f"{PREFIX}.not-checked.table2-larger", paper=PAPER, where="Table 2 (130M–1B)", provenance="P",
                kind="gpu", statement="GaLore stays within 0.3 perplexity of full-rank Adam on C4 from 130M to 1B "
                "(25.36 vs 25.08, 18.95 vs 18.80, 15.64 vs 15.56).",
                why="needs C4 and 2.2B–13.1B-token runs; the GPU validation runs the 60M shape for 300 steps on a "
                "synthetic language (claim galore.table2-60m)"),
    not_checked(f"{PREFIX}.not-checked.7b-24gb", paper=PAPER, where="abstract, §5.5, Fig. 1", provenance="P",
                kind="memory", statement="8-bit GaLore with per-layer updates pre-trains LLaMA-7B within 24 GB "
                "(22.0 G at a token batch of at most 500), without model parallelism or offloading.",
                why="a measured peak of a 7B run with 8-bit states and per-layer hooks; the toolkit has no 8-bit "
                "optimizers and measures state exactly at the 60M scale (memory.gpu-state-equals-formula)"),
    not_checked(f"{PREFIX}.not-checked.table11", paper=PAPER, where="Table 11 (LLaMA-1B, measured)", provenance="P",
                kind="memory", statement="Measured memory at 1B: AdamW 13.60 G, Adafactor 13.15 G, 8-bit Adam "
                "9.54 G, 8-bit GaLore 7.95 G (with per-layer updates 9.63 / 10.32 / 6.93 / 5.63 G).",
                why="measured peaks of 1B runs with 8-bit and Adafactor inner optimizers, which the toolkit does "
                "not implement"),
]
