"""Subset-Norm and Subspace-Momentum (Nguyen & Nguyen, "Lean and Mean Adaptive Optimization via
Subset-Norm and Subspace-Momentum with Convergence Guarantees", ICML 2025, arXiv 2411.07120):
what the paper claims and what optverify measures.

Subset-Norm (SN) shares one AdaGrad/Adam step size per subset of coordinates (memory O(√d) instead of
O(d)); Subspace-Momentum (SM) keeps momentum in a low-dimensional subspace and plain SGD in its
complement. AdamSNSM combines them for LLM training. Only the abstracts ([A]), the authors' README
figures ([F]) and their code ([C]) were read: the theorem statements, the definition of the noise
sparsity β and the norms in the bounds are unverified reconstructions ([U]), so the SN and SM rate
claims are reported, never asserted. AdaGrad-Norm (k = d) and AdaGrad-Coordinate (k = 1), the two ends
of Subset-Norm, are held to their background theorems ([BG]).
"""

from __future__ import annotations

from verify.verdicts import Outcome

from ._results import (MemoryCell, RateClaim, ThirdPartyClaim, VariantClaim, custom, gpu_state_claim,
                       load, memory_cell_claims, model_label, model_total, rate_claims, thirdparty_claims,
                       variant_claims)

PAPER = "SN-SM, arXiv 2411.07120"
PREFIX = "snsm"

# ----------------------------------------------------------------------------- rates
_SN = "SN theorem (not verified; abstract)"
THEOREMS = {
    "subset_norm_high_probability": (_SN, "AdaGrad-Subset-Norm is noise adapted with high probability: O(1/T) "
                                     "without noise, O(1/√T) with noise (through Σ_j‖σ_Ψj‖)."),
    "coordinate_high_probability": (_SN + ", k = 1", "AdaGrad-Coordinate (k = 1) is noise adapted: O(1/T) without "
                                    "noise, O(1/√T) with noise."),
    "adagrad_norm_expectation": ("Ward, Wu & Bottou 2019 (k = d; background)",
                                 "AdaGrad-Norm is noise adaptive in expectation: O(1/T) without noise, Õ(1/√T) with."),
    "adagrad_norm_high_probability": ("Liu et al., arXiv 2302.14843 (background)",
                                      "AdaGrad-Norm reaches Õ(1/√T) with high probability under sub-gaussian noise."),
    "adagrad_coordinate_defossez": ("Défossez et al., TMLR 2022 (background)",
                                    "Coordinate-wise AdaGrad reaches O(d·log T/√T) with bounded gradients."),
    "sn_dimension_table": ("authors' README rate-table figure",
                           "1/√T term ∝ d^(0.3+1.8β) for Subset-Norm, d^(1.5+β) for Coordinate, d^(2.5β) for Norm: "
                           "SN beats Coordinate for every β, Norm iff β > 3/7."),
    "subspace_momentum_high_probability": ("SM theorem (not verified; abstract)",
                                           "Subspace-Momentum converges at SGD-with-momentum's rate, O(1/√T); no "
                                           "speed-up over SGD is claimed."),
    "no_theorem_sqrt_analogy": ("none (the practical optimizers have no theorem)",
                                "O(1/√T) by analogy with Adam: the toolkit's expectation, not the paper's claim."),
}
_NA, _DS, _PA, _SA, _MI, _MR, _MM, _CP = ("noise_adaptation", "dimension_sparsity", "partition_alignment", "sn_adam",
                                          "matrix_iso", "matrix_rows", "momentum_matters", "code_paths")
RATES = rate_claims(PAPER, PREFIX, THEOREMS, [
    RateClaim("adagrad_norm/noiseless-slope", "BG", "adagrad_norm_expectation", _NA),
    RateClaim("adagrad_norm/noisy-slope", "BG", "adagrad_norm_expectation", _NA),
    RateClaim("adagrad_norm/noisy-slope-q0.9", "BG", "adagrad_norm_high_probability", _NA),
    RateClaim("adagrad_norm/crossover-early", "BG", "adagrad_norm_expectation", _NA),
    RateClaim("adagrad_norm/crossover-late", "BG", "adagrad_norm_expectation", _NA),
    RateClaim("adagrad_norm/delta-last-isotropic", "BG", "adagrad_norm_high_probability", _NA),
    RateClaim("adagrad_norm/delta-last-student_t", "BG", "adagrad_norm_high_probability", _NA),
    RateClaim("adagrad_coordinate/noisy-slope", "BG", "adagrad_coordinate_defossez", _NA),
    RateClaim("adagrad_coordinate/noiseless-slope", "U", "coordinate_high_probability", _NA),
    RateClaim("adagrad_coordinate/noisy-slope-q0.99", "U", "coordinate_high_probability", _NA),
    RateClaim("adagrad_subset_norm/noiseless-slope", "U", "subset_norm_high_probability", _NA),
    RateClaim("adagrad_subset_norm/noisy-slope-avg_sq_grad-q0.9", "U", "subset_norm_high_probability", _NA),
    RateClaim("adagrad_subset_norm/noisy-slope-avg_sq_grad-q0.99", "U", "subset_norm_high_probability", _NA),
    RateClaim("adagrad_subset_norm/noisy-slope-avg_l1_sq-q0.9", "U", "subset_norm_high_probability", _NA),
    RateClaim("adagrad_subset_norm/noisy-slope-avg_l1_sq-q0.99", "U", "subset_norm_high_probability", _NA),
    RateClaim("adagrad_subset_norm/noisy-slope-avg_l21_sq-q0.9", "U", "subset_norm_high_probability", _NA),
    RateClaim("adagrad_subset_norm/noisy-slope-avg_l21_sq-q0.99", "U", "subset_norm_high_probability", _NA),
    RateClaim("adagrad_subset_norm/e3-vs-coordinate-d16-beta0.25", "F", "sn_dimension_table", _DS),
    RateClaim("adagrad_subset_norm/e3-vs-norm-d16-beta0.25", "F", "sn_dimension_table", _DS),
    RateClaim("adagrad_subset_norm/e3-vs-coordinate-d256-beta0.25", "F", "sn_dimension_table", _DS),
    RateClaim("adagrad_subset_norm/e3-vs-norm-d256-beta0.25", "F", "sn_dimension_table", _DS),
    RateClaim("adagrad_norm/e3-d-exponent-beta0.25", "F", "sn_dimension_table", _DS),
    RateClaim("adagrad_coordinate/e3-d-exponent-beta0.25", "F", "sn_dimension_table", _DS),
    RateClaim("adagrad_subset_norm/e3-d-exponent-beta0.25", "F", "sn_dimension_table", _DS),
    RateClaim("adagrad_subset_norm/e3-vs-coordinate-d16-beta1", "F", "sn_dimension_table", _DS),
    RateClaim("adagrad_subset_norm/e3-vs-norm-d16-beta1", "F", "sn_dimension_table", _DS),
    RateClaim("adagrad_subset_norm/e3-vs-coordinate-d256-beta1", "F", "sn_dimension_table", _DS),
    RateClaim("adagrad_subset_norm/e3-vs-norm-d256-beta1", "F", "sn_dimension_table", _DS),
    RateClaim("adagrad_norm/e3-d-exponent-beta1", "F", "sn_dimension_table", _DS),
    RateClaim("adagrad_coordinate/e3-d-exponent-beta1", "F", "sn_dimension_table", _DS),
    RateClaim("adagrad_subset_norm/e3-d-exponent-beta1", "F", "sn_dimension_table", _DS),
    RateClaim("adagrad_subset_norm/e4-alignment", "U", "subset_norm_high_probability", _PA),
    RateClaim("adam_sn/slope", "U", "no_theorem_sqrt_analogy", _SA),
    RateClaim("rmsprop_sn/slope", "U", "no_theorem_sqrt_analogy", _SA),
    RateClaim("adam_sn/heuristics-slope", "U", "no_theorem_sqrt_analogy", _CP),
    RateClaim("subspace_momentum/slope", "U", "subspace_momentum_high_probability", _MI),
    RateClaim("subspace_momentum/vs-sgd", "U", "subspace_momentum_high_probability", _MI),
    RateClaim("subspace_momentum/rows-slope", "U", "subspace_momentum_high_probability", _MR),
    RateClaim("subspace_momentum/ill-vs-sgd", "U", "subspace_momentum_high_probability", _MM),
    RateClaim("subspace_momentum/ill-vs-sgdm", "U", "subspace_momentum_high_probability", _MM),
    RateClaim("adam_sn_sm/slope", "U", "no_theorem_sqrt_analogy", _MI),
])

# ----------------------------------------------------------------------------- memory
_FIG = "authors' README figure (LLaMA-1B optimizer states)"
MEMORY = memory_cell_claims(PAPER, PREFIX, [
    MemoryCell("SN-SM README figure", "llama-1b", entry, value, _FIG, "F",
               f"LLaMA-1B optimizer states in BF16: {label} {value} GB.")
    for entry, label, value in (("adam", "Adam", 4.99), ("adam_sn", "AdamSN", 2.62), ("adam_sn_sm", "AdamSNSM", 0.84))
])


def _fraction_of_adam(quick: bool) -> Outcome:
    adam, snsm = model_total("llama-1b", "adam"), model_total("llama-1b", "adam_sn_sm")
    without = snsm["states"] / adam["states"]
    with_p = (snsm["states"] + snsm["projectors"]) / adam["states"]
    numbers = {"claimed": 0.20, "measured": {"without projectors": without, "with projectors": with_p}}
    if without <= 0.20:
        return Outcome("PASS", f"AdamSNSM's state is {100 * without:.1f}% of Adam's without the projection matrices "
                       f"(the accounting that reproduces the figure's 0.84 GB), {100 * with_p:.1f}% with them",
                       numbers)
    return Outcome("FAIL", f"AdamSNSM's state is {100 * without:.1f}% of Adam's even without projectors", numbers)


#: the authors' README table of peak GPU memory (GB; batch 1, activation checkpointing, RTX 4090)
PEAK_TABLE = {
    "llama-60m": {"rmsprop_sn": 1.2, "adam_sn_sm": 1.5, "galore_adamw": 1.4, "sgd": 1.2, "adam_sn": 1.3, "adam": 1.5},
    "llama-130m": {"rmsprop_sn": 1.5, "adam_sn_sm": 2.0, "galore_adamw": 1.8, "sgd": 1.7, "adam_sn": 1.7, "adam": 2.1},
    "llama-350m": {"rmsprop_sn": 2.6, "adam_sn_sm": 3.3, "galore_adamw": 3.1, "sgd": 3.1, "adam_sn": 3.3, "adam": 4.5},
    "llama-1b": {"rmsprop_sn": 6.7, "adam_sn_sm": 8.4, "galore_adamw": 8.5, "sgd": 9.3, "adam_sn": 9.5, "adam": 14.4},
    "llama-3b": {"rmsprop_sn": 11.8, "adam_sn_sm": 15.6, "galore_adamw": 16.0, "sgd": 16.9, "adam_sn": 17.4, "adam": None},
}
_LABELS = {"rmsprop_sn": "RMSPropSN", "adam_sn_sm": "AdamSNSM", "galore_adamw": "GaLore", "sgd": "SGDm",
           "adam_sn": "AdamSN", "adam": "Adam"}
PRINT_STEP = 0.1  # the table's precision (GB)


def peak_order_check(model: str):
    """Peaks differ by the optimizer state when everything else (weights, gradients, activations) is
    equal: every pair whose states differ by more than the table's precision must be ordered the same
    way in the table. A reversed pair is a peak the state does not explain (a transient)."""

    def check(quick: bool) -> Outcome:
        peaks = PEAK_TABLE[model]
        if model not in (load("memory/model_totals.json").get("models") or {}):
            return Outcome("INCONCLUSIVE", f"no {model_label(model)} configuration in results/memory/model_totals.json "
                           "(the GaLore configurations stop at 1B, then 7B): the states cannot be computed",
                           {"claimed": peaks})
        states = {}
        for alg in peaks:
            row = model_total(model, alg)
            states[alg] = (row["states"] + row["projectors"]) * row.get("bytes_per_element", 2) / 2**30
        numbers = {"claimed": peaks, "measured": {"state_GiB_bf16": states,
                   "peak_minus_state": {a: peaks[a] - states[a] for a in peaks if peaks[a] is not None}}}
        reversed_pairs = [(a, b) for a in peaks for b in peaks
                          if peaks[a] is not None and peaks[b] is not None
                          and states[a] - states[b] > PRINT_STEP and peaks[a] < peaks[b]]
        order = " < ".join(_LABELS[a] for a in sorted(states, key=states.get))
        if reversed_pairs:
            text = "; ".join(f"{_LABELS[a]} has {states[a] - states[b]:.2f} GiB more state than {_LABELS[b]} but a "
                             f"lower peak ({peaks[a]} vs {peaks[b]})" for a, b in reversed_pairs)
            return Outcome("FAIL", f"the peaks are not ordered by the state ({order}): {text}; the peak holds "
                           "something the state formula does not count (a transient or workspace; a candidate is the "
                           "SVD of the 32000-row lm_head, which the SN+SM grouping projects)", numbers)
        return Outcome("PASS", f"every pair of methods whose states differ by more than {PRINT_STEP} GB is ordered "
                       f"the same way by the peaks (state order {order})", numbers)

    return check


EXTRA_MEMORY = [
    custom(f"{PREFIX}.memory.fraction-of-adam", paper=PAPER, where="abstract (v1: '20%'; v2: 'more than 80%')",
           provenance="A", kind="memory", statement="AdamSNSM needs only 20% of Adam's optimizer-state memory "
           "(v2: reduces it by more than 80%) on LLaMA-1B.", check=_fraction_of_adam),
    *(custom(f"{PREFIX}.memory.peak-table.{model}", paper=PAPER, where="authors' README table of peak GPU memory "
             f"({model_label(model)})", provenance="F", kind="memory",
             statement=f"Peak GPU memory at {model_label(model)} (batch 1, activation checkpointing): "
             + ", ".join(f"{_LABELS[a]} {v if v is not None else 'OOM'}" for a, v in PEAK_TABLE[model].items())
             + " GB; the order follows the optimizer state.", check=peak_order_check(model))
      for model in PEAK_TABLE),
    gpu_state_claim(PAPER, PREFIX, ("adagrad_subset_norm", "adam_sn", "rmsprop_sn", "subspace_momentum",
                                    "adam_sn_sm")),
]

# ----------------------------------------------------------------------------- paper vs code
_C = "authors' GenericOptim (sn-sm code afec62a) vs the paper (body not verified)"
_ALL = ("tall", "wide", "square", "tensor", "vector", "scalar")
CODE = variant_claims(PAPER, PREFIX, [
    VariantClaim("adam_sn/eps_placement", _C, "U", "The code adds ε to the uncorrected √v (HF style); textbook Adam "
                 "(the paper's form is not verified) adds it to the bias-corrected √v̂: they part at step 1 by "
                 "ε-relative amounts.", parts_at=1, params=_ALL, max_error=1e-5),
    VariantClaim("adam_sn/beta2_one", _C, "U", "With β₂ = 1 and bias correction the code's step size is "
                 "√(1 − 1ᵗ) = 0 (AdaGrad silently stalls); the paper's accumulation takes a step: they part at "
                 "step 1 in every parameter.", parts_at=1, params=_ALL, min_error=1e-3),
    VariantClaim("rmsprop_sn/eps_placement", _C, "U", "RMSPropSN: the same ε placement difference, at step 1.",
                 parts_at=1, params=_ALL, max_error=1e-5),
    VariantClaim("adagrad_subset_norm/b0_eps", _C, "U", "AdaGrad-Subset-Norm: b₀ > 0 inside the root and ε = 0 "
                 "(the theory, unverified) against b₀ = 0 and ε = 1e-6 after the root (code): they part at step 1.",
                 parts_at=1, params=_ALL),
    VariantClaim("adagrad_norm/b0_eps", _C, "U", "AdaGrad-Norm (k = d) with the same two conventions: they part at "
                 "step 1.", parts_at=1, params=_ALL),
    VariantClaim("adagrad_coordinate/b0_eps", _C, "U", "AdaGrad-Coordinate (k = 1) with the same two conventions: "
                 "they part at step 1.", parts_at=1, params=_ALL),
    VariantClaim("subspace_momentum/refresh", _C, "U", "At a refresh the code updates with the stale momentum "
                 "coordinates lifted through the new basis and only then zeroes them (bug 1); a clean reset "
                 "agrees with it exactly until the first refresh after step 1 (step 8 at gap 8) and parts there, "
                 "in the projected matrices only.", parts_at=8, params=("tall", "wide", "square")),
    VariantClaim("subspace_momentum/correct_sgd_part", _C, "U", "The code's bias correction 1/(1 − β₁ᵗ) also scales "
                 "the orthogonal SGD part (×10 at step 1 for β₁ = 0.9): it parts from momentum-only correction at "
                 "step 1, in the projected matrices.", parts_at=1, params=("tall", "wide", "square")),
    VariantClaim("subspace_momentum/svd", _C, "U", "With a clean reset at refreshes, SM is invariant to the signs of "
                 "the basis: the code's float32 SVD with raw signs differs from the float64 pinned-sign SVD by "
                 "round-off only.", check_step=False, min_error=1e-13, max_error=1e-6),
    VariantClaim("subspace_momentum/rank_overflow", _C, "U", "A rank above the projected side: the code truncates it "
                 "silently, variant='paper' refuses it."),
    VariantClaim("adam_sn_sm/variants", "authors' GenericOptim(momentum_type='sm', second_moment_type='sn') vs the "
                 "paper (body not verified)", "U", "AdamSNSM as the code ships it (HF ε, bias correction on the SGD "
                 "part, stale-basis refresh, float32 SVD) parts from the paper-side reading at step 1, in every "
                 "parameter.", parts_at=1, params=_ALL),
    VariantClaim("adam_sn_sm/refresh", _C, "U", "AdamSNSM: the stale-basis refresh step parts from a clean reset at "
                 "the first refresh after step 1 (step 8 at gap 8), not before.", parts_at=8,
                 params=("tall", "wide", "square")),
])

# ----------------------------------------------------------------------------- third-party code
_O = "pytorch-optimizer 4.1.0 AdamWSN (third party), run against the reference (results/oracle/thirdparty.json)"
ORACLE = thirdparty_claims(PAPER, PREFIX, [
    ThirdPartyClaim("po-adamwsn", "PASS", _O, "T", "pytorch-optimizer's AdamWSN (SN only) equals variant='official' "
                    "with its subset size and ε."),
    ThirdPartyClaim("po-adamwsn-defaults", "FAIL at step 1", _O, "T", "With its defaults (subset size −1, ε 1e-8) "
                    "it departs from the authors' defaults (−2, 1e-6) at the first step.", kind="code-vs-paper"),
])

