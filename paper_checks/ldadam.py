"""LDAdam (Robert, Safaryan, Modoranu, Alistarh, "LDAdam: Adaptive Optimization from Low-Dimensional
Gradient Statistics", ICLR 2025, arXiv 2410.16103): what the paper claims and what optverify measures.

LDAdam keeps Adam's statistics in a rank-r subspace that moves every step (one warm-started power
iteration), carries the moments across subspace changes (projection-aware update rules) and feeds the
compression error back through a generalized error feedback. Only the abstract and the OpenReview
reviews were read ([A], [S]): the algorithm box, the assumptions and the two theorems are not
verified ([U]), so every rate claim here is reported, never asserted. The authors' code is the
IST-DASLab repository at commit f3c5daf ([C]).
"""

from __future__ import annotations

from verify.verdicts import Outcome

from ._results import (RateClaim, VariantClaim, custom, gpu_state_claim, model_total, not_checked, rate_claims,
                       variant_claims)

PAPER = "LDAdam, arXiv 2410.16103"
PREFIX = "ldadam"

# ----------------------------------------------------------------------------- rates
THEOREMS = {
    "ldadam_theorem1": ("Theorem 1 (not verified; as read in the OpenReview reviews)",
                        "LDAdam converges at Adam's non-convex rate, O(1/√T); the rank enters only the constant."),
}
RATES = rate_claims(PAPER, PREFIX, THEOREMS, [
    RateClaim("ldadam/slope-r2", "U", "ldadam_theorem1", "matrix_iso"),
    RateClaim("ldadam/slope-r4", "U", "ldadam_theorem1", "matrix_iso"),
    RateClaim("ldadam/rank-moves-slope", "U", "ldadam_theorem1", "matrix_iso"),
    RateClaim("ldadam/rows-slope", "U", "ldadam_theorem1", "matrix_rows"),
])


# ----------------------------------------------------------------------------- memory
def _state_like_galore(quick: bool) -> Outcome:
    """The code's persistent state is r·(min + 2·max) per matrix, GaLore's count; the error-feedback
    buffer lives in the gradient buffer (``p.grad``), which this toolkit stores in the state instead."""
    rows = {}
    for model in ("llama-60m", "llama-130m", "llama-350m", "llama-1b", "llama-7b"):
        ld, ga = model_total(model, "ldadam"), model_total(model, "galore_adamw")
        rows[model] = {"ldadam_states": ld["states"], "ldadam_projectors": ld["projectors"],
                       "error_feedback": ld.get("error_feedback"), "galore_states": ga["states"],
                       "galore_projectors": ga["projectors"], "rank": ld.get("rank")}
    numbers = {"claimed": "LDAdam states + projectors == GaLore's at the same rank and routing", "measured": rows}
    off = [m for m, r in rows.items() if (r["ldadam_states"], r["ldadam_projectors"]) != (r["galore_states"],
                                                                                           r["galore_projectors"])]
    if off:
        return Outcome("FAIL", f"LDAdam's persistent state differs from GaLore's at {off}", numbers)
    if any(not isinstance(r["error_feedback"], int) or r["error_feedback"] <= 0 for r in rows.values()):
        return Outcome("FAIL", "no error-feedback buffer counted (the toolkit keeps one m×n buffer per matrix)",
                       numbers)
    one_b = rows["llama-1b"]
    return Outcome("PASS", f"equal to GaLore's at every size (1B: {one_b['ldadam_states']:,} + "
                   f"{one_b['ldadam_projectors']:,} elements at rank {one_b['rank']}); the error-feedback buffer "
                   f"({one_b['error_feedback']:,} elements at 1B) is the gradient buffer in the authors' code, "
                   "a state tensor here", numbers)


MEMORY = [
    custom(f"{PREFIX}.memory.state-like-galore", paper=PAPER, where="authors' code (ldadamw.py); abstract",
           provenance="C", kind="memory", statement="LDAdam keeps Adam's statistics in low dimension: its persistent "
           "state per m×n matrix is r·(min(m,n) + 2·max(m,n)) (projector and two rank-r moments), the count of "
           "GaLore; the error-feedback buffer reuses the gradient buffer.", check=_state_like_galore),
    gpu_state_claim(PAPER, PREFIX, ("ldadam",)),
]

# ----------------------------------------------------------------------------- paper vs code
CODE = variant_claims(PAPER, PREFIX, [
    VariantClaim("ldadam/variants", "authors' code f3c5daf (algorithms/ldadam.py, Variants)", "C",
                 "The authors' code runs its QR and SVD in float32 with raw signs; LDAdam is invariant to the signs "
                 "of the basis columns, so the float64 variant differs from it only by float32 round-off (a "
                 "parameter difference far below 1e-6), and only in the projected matrices.", check_step=False,
                 params=("tall", "wide", "square"), min_error=1e-12, max_error=1e-6),
    VariantClaim("ldadam/reverse_std_square", "authors' code f3c5daf, projector.py side test", "C",
                 "Under proj_side='reverse_std' the code still projects a square matrix on the left (its side "
                 "test), where 'reverse_std' should be the opposite of 'std': the square matrix parts by O(1e-4) "
                 "from step 1, the others differ by float32 round-off only.", parts_at=1,
                 per_param={"square": (1e-4, None), "tall": (None, 1e-6), "wide": (None, 1e-6)}),
])

# ----------------------------------------------------------------------------- not checked here
NOT_CHECKED = [
    not_checked(f"{PREFIX}.not-checked.experiments", paper=PAPER, where="abstract; §5 (tables not verified)",
                provenance="A", kind="gpu", statement="LDAdam matches or beats Adam and GaLore at similar memory on "
                "GLUE fine-tuning, GSM8K and LLaMA pre-training on C4.",
                why="the paper's tables were not read, and the runs need the real data sets; the GPU validation "
                "compares LDAdam with Adam at the 60M shape (claim ldadam.matches-adam)"),
]

