"""MARS (Yuan, Liu, Wu, Zhou, Gu, "MARS: Unleashing the Power of Variance Reduction for Training Large
Models", ICML 2025, arXiv 2411.10438v4): what the paper claims and what optverify measures.

MARS adds a scaled STORM-type correction γ·β₁/(1−β₁)·(∇f(x_t, ξ_t) − ∇f(x_{t−1}, ξ_t)) to the
gradient, clips it, and feeds it to AdamW, Lion or Shampoo (Algorithms 2–4). Theorem B.5 (and B.6 for
MARS-AdamW with weight decay) gives an Õ(T^(−2/3)) rate for the average squared gradient norm,
against O(T^(−1/2)) for AdamW, under schedules (γ = 1, β₁ → 1, η ∝ t^(−1/3)) that the default
γ = 0.025 does not meet. The full v4 text was read ([P]); the authors' code is the official
``mars.py`` (AGI-Arena/MARS, last changed 09c37ae).
"""

from __future__ import annotations

from ._results import (MemoryCell, RateClaim, ThirdPartyClaim, VariantClaim, gpu_state_claim, memory_cell_claims,
                       model_label, not_checked, rate_claims, thirdparty_claims, variant_claims)

PAPER = "MARS, arXiv 2411.10438"
PREFIX = "mars"

# ----------------------------------------------------------------------------- rates
THEOREMS = {
    "mars_theorem_b5": ("Theorems B.5 and B.6, App. B",
                        "MARS reaches an Õ(T^(−2/3)) average squared gradient norm (γ = 1, β₁ → 1, η ∝ t^(−1/3)), "
                        "better than AdamW's O(T^(−1/2))."),
    "no_theorem_sqrt_analogy": ("none (Algorithms 3–4 have no theorem)",
                                "O(1/√T) by analogy with SGD: the toolkit's expectation, not the paper's claim."),
}
RATES = rate_claims(PAPER, PREFIX, THEOREMS, [
    RateClaim("mars_adamw/gamma-gap", "D", "mars_theorem_b5", "mars"),
    RateClaim("mars_adamw/slope", "P", "mars_theorem_b5", "mars"),
    RateClaim("mars_adamw/equal-calls-vs-sgdm", "P", "mars_theorem_b5", "mars"),
    RateClaim("mars_adamw/official-slope", "P", "mars_theorem_b5", "mars"),
    RateClaim("mars_adamw/official-vs-adamw", "P", "mars_theorem_b5", "mars"),
    RateClaim("mars_adamw/clip-slope", "P", "mars_theorem_b5", "code_paths"),
    RateClaim("mars_lion/slope", "U", "no_theorem_sqrt_analogy", "sn_adam"),
    RateClaim("mars_shampoo/slope", "U", "no_theorem_sqrt_analogy", "matrix_iso"),
])

# ----------------------------------------------------------------------------- memory
_SRC = "MARS state relative to AdamW"


def _model(model: str) -> str:
    return "GPT-2 small, 124M" if model.startswith("gpt2") else model_label(model)



_WHERE = "the official mars.py's state (m, v, last_grad, previous_grad); §3.1 Remark 3.3 (approx)"
MEMORY = memory_cell_claims(PAPER, PREFIX, [
    *(MemoryCell(_SRC, model, entry, value, _WHERE, "C",
                 f"{label} keeps {value}× AdamW's optimizer state ({_model(model)}).",
                 ratio=True, tolerance=0.05)
      for model in ("gpt2-small (124M, MARS repo)", "llama-1b")
      for entry, label, value in (("mars_adamw_approx (official)", "The official MARS-AdamW (approx)", 1.5),
                                  ("mars_adamw_approx (minimal)", "A minimal faithful MARS-AdamW (approx)", 1.5),
                                  ("mars_adamw_exact (official)", "The official MARS-AdamW (exact)", 2.0))),
    *(MemoryCell(_SRC, model, entry, printed, "the toolkit's estimators (algorithms/mars_adamw.py, Memory)", "D",
                 f"The toolkit's {label} keeps {claimed}× AdamW's state ({_model(model)}): "
                 + ("m, v and the previous gradient." if claimed == 1.5 and "approx" in entry else
                    "m, v and x_(t−1), one buffer where the official code keeps two gradients (2×)."),
                 ratio=True, tolerance=0.05, claimed=claimed)
      for model in ("gpt2-small (124M, MARS repo)", "llama-1b")
      for entry, label, printed, claimed in (("mars_adamw approx (toolkit)", "approximate MARS-AdamW", 1.5, 1.5),
                                             ("mars_adamw exact (toolkit)", "exact MARS-AdamW", 2.0, 1.5))),
])
EXTRA_MEMORY = [gpu_state_claim(PAPER, PREFIX, ("mars_adamw", "mars_lion", "mars_shampoo"))]

# ----------------------------------------------------------------------------- paper vs code
_C = "official mars.py vs Algorithms 2–4 (algorithms/mars_*.py, Variants)"
_ALL = ("tall", "wide", "square", "tensor", "vector", "scalar")
CODE = variant_claims(PAPER, PREFIX, [
    VariantClaim("mars_adamw/variants", "Algorithm 2 vs the official mars.py", "C",
                 "The official code (c₁ = (1+k)·g₁, per-tensor clipping, non-2-D parameters on an AdamW fallback) "
                 "parts from Algorithm 2 at the first step, in every parameter.", parts_at=1, params=_ALL),
    VariantClaim("mars_adamw/first_step", _C, "C",
                 "The code's first correction is (1 + k)·g₁ (its last_grad starts at zero; the paper's x₁ = x₀ makes "
                 "it g₁). Without clipping the two part at step 1 (only through ε: Adam's first step is nearly "
                 "scale-free) and by O(1e-2) later.", parts_at=1, params=_ALL, min_error=1e-3),
    VariantClaim("mars_adamw/first_step_clipped", _C, "C",
                 "When the paper's global clip binds at step 1 (as on this stream), c₁ is normalised and the two "
                 "first-step rules give identical runs.", parts_at=None, max_error=1e-12),
    VariantClaim("mars_adamw/clip", _C, "C",
                 "The code clips c_t per tensor, the paper over the whole parameter vector: they part at step 1.",
                 parts_at=1, params=_ALL, min_error=1e-3),
    VariantClaim("mars_adamw/optimize_1d", _C, "C",
                 "The code sends every parameter that is not exactly 2-D (the 4×3×5 tensor, vectors, scalars) to an "
                 "AdamW fallback; under the paper's global clip this also changes the matrices' clipping norm, so "
                 "every parameter parts at step 1.", parts_at=1, params=_ALL),
    VariantClaim("mars_lion/first_step", _C, "C",
                 "MARS-Lion: sign(m₁) does not see the (1 + k) factor, so the first-step rules part at step 2.",
                 parts_at=2, params=_ALL),
    VariantClaim("mars_lion/variants", "Algorithm 3 vs the official mars.py", "C",
                 "MARS-Lion as the code ships it parts from Algorithm 3 at the first step (the non-2-D parameters, "
                 "on the AdamW fallback) and in the matrices at step 2 (sign(m₁) hides the first-step factor and "
                 "the clip).", parts_at=1, params=_ALL),
    VariantClaim("mars_shampoo/variants", "Algorithm 4 vs the official mars.py", "C",
                 "MARS-Shampoo as the code ships it (clipping, bfloat16 Newton–Schulz, shape factor, AdamW fallback) "
                 "parts from Algorithm 4 at the first step.", parts_at=1, params=_ALL),
    VariantClaim("mars_shampoo/ns_dtype", _C, "C",
                 "The code runs Newton–Schulz in bfloat16: against the same iteration in float64 the matrices part "
                 "at step 1 by bfloat16 rounding (between 1e-6 and 1e-2 of the weights).", parts_at=1,
                 params=("tall", "wide", "square"), min_error=1e-6, max_error=1e-2),
    VariantClaim("mars_shampoo/orthogonalizer", _C, "C",
                 "The code orthogonalises with five Newton–Schulz steps instead of Algorithm 4's exact SVD polar "
                 "factor: the matrices part at step 1.", parts_at=1, params=("tall", "wide", "square")),
    VariantClaim("mars_shampoo/shape_factor", _C, "C",
                 "The code multiplies the update by √max(1, m/n): only tall matrices (24×16) change, from step 1.",
                 parts_at=1, params=("tall",)),
    VariantClaim("mars_shampoo/clip", _C, "C",
                 "The code clips c_t per tensor, Algorithm 4 not at all: they part at step 1.", parts_at=1,
                 params=_ALL),
    VariantClaim("mars_lion/lion_identity", "§3.2, eqs. (3.18)–(3.19)", "P",
                 "Lion(β₁, β₂) is MARS-approx-Lion with β = β₂ and γ = (β₂ − β₁)/β₂ without clipping: the two never "
                 "differ beyond round-off.", parts_at=None, max_error=1e-12, kind="identity"),
    VariantClaim("mars_adamw/gamma0_identity", "Algorithm 2 with γ = 0", "D",
                 "With γ = 0 and no clipping, MARS-AdamW is AdamW: the two never differ beyond round-off.",
                 parts_at=None, max_error=1e-12, kind="identity"),
])

# ----------------------------------------------------------------------------- third-party code
_O = "pytorch-optimizer 4.1.0 MARS (third party), run against the reference (results/oracle/thirdparty.json)"
ORACLE = thirdparty_claims(PAPER, PREFIX, [
    ThirdPartyClaim("po-mars", "PASS", _O, "T", "pytorch-optimizer's MARS (approx) agrees with variant='official' "
                    "in float32."),
    ThirdPartyClaim("po-mars-strict", "FAIL at step 1", _O, "T", "In float64 it departs at step 1: ε placed as "
                    "(√(v + 1e-15) + ε)/√(1 − β₂ᵗ).", kind="code-vs-paper"),
    ThirdPartyClaim("po-mars-defaults", "FAIL at step 2", _O, "T", "Against Algorithm 2 (variant='paper') its "
                    "defaults part at step 2.", kind="code-vs-paper"),
])

# ----------------------------------------------------------------------------- not checked here
NOT_CHECKED = [
    not_checked(f"{PREFIX}.not-checked.gpt2-large-tokens", paper=PAPER, where="§1, §4.2 (GPT-2 large, OpenWebText)",
                provenance="P", kind="gpu", statement="On GPT-2 large, MARS reaches AdamW's best validation loss "
                "(2.58) with 28B instead of 50B tokens and ends at 2.51.",
                why="GPT-2-large runs on OpenWebText (28–50B tokens); the GPU validation compares MARS-AdamW with "
                "AdamW on the 60M shape for 300 steps (claim mars.beats-adamw)"),
    not_checked(f"{PREFIX}.not-checked.downstream", paper=PAPER, where="Tables 1 and 4 (lm-eval-harness)",
                provenance="P", kind="gpu", statement="GPT-2 large trained with MARS-AdamW scores 44.64 on HellaSwag "
                "(AdamW 41.70) and a higher 0- and 5-shot average.", why="needs the trained GPT-2-large models"),
]
