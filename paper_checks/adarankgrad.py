"""AdaRankGrad (Refael, Svirsky, Shustin, Huleihel, Lindenbaum, "AdaRankGrad: Adaptive Gradient-Rank and
Moments for Memory-Efficient LLMs Training and Fine-Tuning", ICLR 2025, arXiv 2410.17881): what the
paper claims and what optverify measures.

AdaRankGrad projects gradients like GaLore but chooses the rank at each subspace change from an
information (energy) threshold, refreshes the subspace when the projected gradient has converged, and
transforms the moments into the new subspace. Only the abstract and the opening of §1 were read
([A]); the algorithm, the rank rule, the lemma and the theorem are known from summaries and from the
first author's later SUMO paper ([S]) and no official code exists, so the toolkit's AdaRankGrad is a
documented reconstruction whose unverified choices are constructor arguments, and nothing here is
asserted except what the toolkit derives itself ([D]).
"""

from __future__ import annotations

from verify.verdicts import Outcome

from ._results import (MissingResult, RateClaim, custom, fmt, gpu_state_claim, load, model_total, not_checked,
                       rate_claims)

PAPER = "AdaRankGrad, arXiv 2410.17881"
PREFIX = "adarankgrad"

# ----------------------------------------------------------------------------- rates
THEOREMS = {
    "adarankgrad_sumo_template": ("convergence theorem (not verified; via SUMO, arXiv 2505.24749)",
                                  "The dynamic-subspace method (SGD inner steps) converges at O(1/√T)."),
    "golore_floor": ("GoLore, arXiv 2410.11289 (background)",
                     "With noisy gradients, SVD subspaces make min_t ‖∇f‖² stall at a noise floor."),
}
RATES = rate_claims(PAPER, PREFIX, THEOREMS, [
    RateClaim("adarankgrad/slope", "S", "adarankgrad_sumo_template", "matrix_iso"),
    RateClaim("adarankgrad/rows-floor", "S", "golore_floor", "matrix_rows"),
    RateClaim("adarankgrad/adaptive-slope", "S", "adarankgrad_sumo_template", "code_paths"),
])


# ----------------------------------------------------------------------------- rank
def _cases() -> dict:
    cases = load("rank/rank_one_limit.json").get("cases") or {}
    if not cases:
        raise MissingResult("results/rank/rank_one_limit.json holds no cases")
    return cases


def _rank_to_one(quick: bool) -> Outcome:
    """The lemma as summarised: rank → 1 for gradients (1/N)Σ(A_i − B_iWC_i), any N."""
    cases = _cases()
    limits = {name: c.get("sr_at_1e7_closed_form") for name, c in cases.items()}
    last = {name: c.get("last_measured_sr") for name, c in cases.items()}
    numbers = {"claimed": 1.0, "measured": {"closed_form_limit": limits, "last_measured": last}}
    if not all(isinstance(v, float) for v in [*limits.values(), *last.values()]):
        return Outcome("INCONCLUSIVE", "a case has no measured or closed-form stable rank", numbers)
    not_one = {n: v for n, v in limits.items() if abs(v - 1) > 1e-6}
    if not_one:
        return Outcome("FAIL", "the stable rank does not tend to one for "
                       + ", ".join(f"{n} (limit {fmt(v, 6)}, last measured {fmt(last[n], 6)})" for n, v in
                                   not_one.items()), numbers)
    return Outcome("PASS", "every case tends to rank one: " + ", ".join(f"{n} → {fmt(v, 6)}" for n, v in limits.items()),
                   numbers)


def _limit_caveat(quick: bool) -> Outcome:
    """[D] the limit is sr(unvec v₁): one exactly when the λ₁-eigenvector is decomposable."""
    cases = _cases()
    rows, problems = {}, []
    for name, c in cases.items():
        limit, last, first = c.get("predicted_limit_sr_unvec_v1"), c.get("last_measured_sr"), c.get("first_sr")
        rows[name] = {"predicted": limit, "closed_form_1e7": c.get("sr_at_1e7_closed_form"), "last_measured": last,
                      "decomposable": c.get("v1_decomposable"), "limit_is_one": c.get("limit_is_one")}
        if not all(isinstance(v, float) for v in (limit, last, first)):
            problems.append(f"{name}: missing numbers")
            continue
        if not c.get("closed_form_ok"):
            problems.append(f"{name}: the measured stable rank leaves the closed form")
        if abs(c.get("sr_at_1e7_closed_form", float("nan")) - limit) > 1e-10 * limit:
            problems.append(f"{name}: the closed form tends to {fmt(c.get('sr_at_1e7_closed_form'), 8)}, not the "
                            f"predicted {fmt(limit, 8)}")
        if bool(c.get("v1_decomposable")) != bool(c.get("limit_is_one")):
            problems.append(f"{name}: decomposable={c.get('v1_decomposable')} but limit one={c.get('limit_is_one')}")
        if not abs(last - limit) < 0.05 * abs(first - limit):
            problems.append(f"{name}: last measured {fmt(last, 6)} not near the predicted {fmt(limit, 6)}")
    numbers = {"claimed": "limit = sr(unvec v₁); one iff v₁ decomposable", "measured": rows}
    if problems:
        return Outcome("FAIL", "; ".join(problems), numbers)
    return Outcome("PASS", "; ".join(f"{n}: limit {fmt(r['predicted'], 6)} ({'decomposable' if r['decomposable'] else 'not decomposable'}), "
                                     f"last measured {fmt(r['last_measured'], 6)}" for n, r in rows.items()), numbers)


def _noise_raises_rank(quick: bool) -> Outcome:
    data = load("rank/noise_effect.json")
    obs_min, obs_final, level, clean = (data.get(k) for k in ("observed_min", "observed_final", "noise_level",
                                                              "clean_final"))
    numbers = {"claimed": "observed sr dips, then returns to the noise level; the clean sr keeps decaying",
               "measured": {"observed_min": obs_min, "observed_final": obs_final, "noise_level": level,
                            "clean_final": clean}}
    if not all(isinstance(v, float) for v in (obs_min, obs_final, level, clean)):
        return Outcome("INCONCLUSIVE", "results/rank/noise_effect.json lacks the stable ranks", numbers)
    first = (data.get("trace_observed") or {}).get("stable_rank", [None])[0]
    ok = (isinstance(first, float) and obs_min < 0.5 * first and obs_final >= 0.8 * level
          and clean < 0.5 * first and clean < obs_min)
    text = (f"observed stable rank {fmt(first)} → min {fmt(obs_min)} → {fmt(obs_final)} (noise level {fmt(level)}); "
            f"clean gradient → {fmt(clean, 6)} (σ = {data.get('problem', {}).get('sigma')})")
    return Outcome("PASS" if ok else "FAIL", text, numbers)


def _trace() -> dict:
    runs = load("rank/adarankgrad_trace.json").get("runs") or {}
    if "clean" not in runs or len(runs) < 2:
        raise MissingResult("results/rank/adarankgrad_trace.json lacks the clean and noisy runs")
    return runs


def _rank_decreases(quick: bool) -> Outcome:
    clean = _trace()["clean"]
    trace = clean.get("rank_trace") or []
    numbers = {"claimed": "the adaptive rank falls during training", "measured": {
        "first": trace[0] if trace else None, "min": clean.get("min_rank"), "final": clean.get("final_rank"),
        "mean": clean.get("mean_rank")}}
    if not trace:
        return Outcome("INCONCLUSIVE", "no rank trace", numbers)
    if clean.get("final_rank") < trace[0] / 2 and clean.get("min_rank") < trace[0]:
        return Outcome("PASS", f"on the clean A − BWC problem r_t goes {trace[0]} → min {clean['min_rank']} → "
                       f"{clean['final_rank']} (mean {fmt(clean['mean_rank'])})", numbers)
    return Outcome("FAIL", f"r_t goes {trace[0]} → {clean.get('final_rank')}: no decrease", numbers)


def _rule_reproduced(quick: bool) -> Outcome:
    runs = _trace()
    counts = {name: len(r.get("refresh_steps") or []) for name, r in runs.items()}
    numbers = {"claimed": "chosen rank = energy rank of the received gradient at every refresh",
               "measured": {name: r.get("agree") for name, r in runs.items()}, "refreshes": counts}
    bad = [n for n, r in runs.items() if not r.get("agree") or not r.get("refresh_steps")
           or r.get("chosen_rank") != r.get("energy_rank_of_gradient")]
    if bad:
        return Outcome("FAIL", f"the chosen rank differs from the energy rank in {bad}", numbers)
    return Outcome("PASS", "at every refresh of every run the rank equals the energy rank of the gradient: "
                   + ", ".join(f"{n} ({k} refreshes)" for n, k in counts.items()), numbers)


def _noise_raises_adaptive_rank(quick: bool) -> Outcome:
    runs = _trace()
    means = {n: r.get("mean_rank") for n, r in runs.items()}
    numbers = {"claimed": "noisier gradients keep a higher adaptive rank", "measured": means}
    noisy = [n for n in runs if n != "clean"]
    if not all(isinstance(means[n], float) for n in runs):
        return Outcome("INCONCLUSIVE", "no mean ranks", numbers)
    ok = all(means[n] > means["clean"] for n in noisy) and all(runs[n].get("rises_after_minimum") for n in noisy)
    text = ", ".join(f"{n}: mean r_t {fmt(means[n])} (final {runs[n].get('final_rank')})" for n in runs)
    return Outcome("PASS" if ok else "FAIL", text, numbers)


RANK = [
    custom(f"{PREFIX}.rank.lemma-rank-one", paper=PAPER, where="abstract; Lemma 1 (statement known from a summary)",
           provenance="S", kind="rank", statement="For gradients of the reversible-network form (1/N)Σ(A_i − B_iW_tC_i) "
           "under SGD, the gradient rank decreases and approaches one: κ(t) = ‖G_t − σ₁u₁v₁ᵀ‖/‖G_t‖ ≤ O(C^(−t)).",
           check=_rank_to_one, figures=("rank/figures/rank_limit.png",)),
    custom(f"{PREFIX}.rank.limit-caveat", paper=PAPER, where="derived here: the limit of the GD dynamics",
           provenance="D", kind="rank", statement="The stable rank tends to sr(unvec v₁) of the λ₁-eigenvector of "
           "S = (1/N)ΣC_i⊗B_i: exactly one when v₁ is decomposable (e.g. N = 1), above one otherwise.",
           check=_limit_caveat, figures=("rank/figures/rank_limit.png",)),
    custom(f"{PREFIX}.rank.noise-effect", paper=PAPER, where="derived here: rank decay is a property of the mean "
           "gradient", provenance="D", kind="rank", statement="With additive gradient noise the observed gradient's "
           "stable rank dips and then returns to the noise level, while the clean gradient's keeps decaying.",
           check=_noise_raises_rank, figures=("rank/figures/rank_noise.png",)),
    custom(f"{PREFIX}.rank.adaptive-rank-decreases", paper=PAPER, where="abstract ('adaptive rank reduction')",
           provenance="A", kind="rank", statement="AdaRankGrad's adaptive rank decreases during training as the "
           "gradient becomes low-rank.", check=_rank_decreases, figures=("rank/figures/rank_adarankgrad.png",)),
    custom(f"{PREFIX}.rank.rule-reproduced", paper=PAPER, where="the toolkit's rank rule (algorithms/adarankgrad.py; "
           "rank_rule='energy')", provenance="D", kind="rank", statement="At every subspace change the rank chosen is "
           "the energy rank r(1 − threshold) of the gradient received at that step.", check=_rule_reproduced,
           figures=("rank/figures/rank_adarankgrad.png",)),
    custom(f"{PREFIX}.rank.noise-keeps-rank-high", paper=PAPER, where="derived here: the noise effect on the "
           "energy-threshold rank", provenance="D", kind="rank", statement="Under gradient noise the energy-threshold "
           "rank stays high and rises again near convergence, instead of falling.",
           check=_noise_raises_adaptive_rank, figures=("rank/figures/rank_adarankgrad.png",)),
]


# ----------------------------------------------------------------------------- memory
#: as reported by Lotus (arXiv 2602.01233, Table 1) for C4 pre-training, weights + states, BF16 (G)
LOTUS = {"llama-60m": (0.21, 0.24), "llama-130m": (0.50, 0.52), "llama-350m": (1.11, 1.22), "llama-1b": (3.62, 4.38)}


def _below_galore(quick: bool) -> Outcome:
    equal = {}
    for model in LOTUS:
        ada, ga = model_total(model, "adarankgrad"), model_total(model, "galore_adamw")
        equal[model] = (ada["states"], ada["projectors"]) == (ga["states"], ga["projectors"])
    numbers = {"claimed": {m: {"adarankgrad": a, "galore": g} for m, (a, g) in LOTUS.items()},
               "measured": {"state_at_max_rank_equals_galore": equal}}
    if not all(equal.values()):
        return Outcome("FAIL", f"at its maximal rank AdaRankGrad's state differs from GaLore's: {equal}", numbers)
    above = [m for m, (a, g) in LOTUS.items() if a > g]
    if above:
        return Outcome("FAIL", f"the reported AdaRankGrad memory exceeds GaLore's at {above}, impossible with "
                       "r_t ≤ r", numbers)
    ratios = ", ".join(f"{m.split('-')[1]} {a / g:.2f}" for m, (a, g) in LOTUS.items())
    return Outcome("PASS", f"at r_t = r its state equals GaLore's (formula), so it can only be smaller; the reported "
                   f"ratios to GaLore are {ratios} (a mean rank below the maximum)", numbers)


MEMORY = [
    custom(f"{PREFIX}.memory.below-galore", paper=PAPER, where="C4 memory as reported by Lotus (arXiv 2602.01233, "
           "Table 1)", provenance="S", kind="memory", statement="AdaRankGrad needs less memory than GaLore at the "
           "same maximal rank: 0.21 / 0.50 / 1.11 / 3.62 G against 0.24 / 0.52 / 1.22 / 4.38 G (60M–1B).",
           check=_below_galore),
    gpu_state_claim(PAPER, PREFIX, ("adarankgrad",)),
]

# ----------------------------------------------------------------------------- not checked here
NOT_CHECKED = [
    not_checked(f"{PREFIX}.not-checked.glue-c4", paper=PAPER, where="Table 2 (GLUE) and the C4 table, as reported "
                "by Lotus", provenance="S", kind="gpu", statement="AdaRankGrad beats GaLore on GLUE with RoBERTa-base "
                "(average 86.31 vs 85.89 at rank 4) and on C4 pre-training (34.24 vs 34.88 at 60M, 14.71 vs 15.64 "
                "at 1B).", why="the numbers are second-hand and need GLUE/C4 runs; the GPU validation compares "
                "AdaRankGrad with GaLore at the 60M shape (claim adarankgrad.vs-galore)"),
    not_checked(f"{PREFIX}.not-checked.official-code", paper=PAPER, where="no public code", provenance="S",
                kind="code-vs-paper", statement="The paper's algorithm (rank rule, refresh test, moment transform, "
                "randomized-SVD parameters) as the authors implemented it.",
                why="no official code exists and the algorithm boxes were not read: there is no paper-vs-code "
                "difference to run, and every unverified choice is a constructor argument of the reconstruction"),
]
