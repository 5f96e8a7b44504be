"""Subset-Norm / Subspace-Momentum (Nguyen & Nguyen, arXiv 2411.07120) and the AdaGrad family it
generalises (AdaGrad-Norm, AdaGrad-Coordinate): their verification in one place.

* memory: one accumulator per subset (``c = p/k``), Subspace-Momentum's projected momentum and basis or
  index vector, AdamSNSM's combination;
* theorems: AdaGrad-Norm's noise adaptation [BG], the SN and SM high-probability rates (reconstructed,
  reported), the dimension/sparsity figure [F];
* rate entries: noise adaptation and the δ-dependence (E2), the d/β table (E3), the partition alignment
  (E4), AdamSN/RMSPropSN by analogy, Subspace-Momentum against SGD (E5), on the ABC problem and with noise
  on two rows, AdamSNSM by analogy, AdamSN's heuristic subsets on a matrix;
* mutants: no square root, an accumulator that is never stored, strided subsets, heavy-tailed noise, a
  dropped orthogonal complement, AdamSN's heuristic subsets along the wrong axis;
* identity checks (``verify check``, group ``sn_sm``): each compares a reference optimizer against an
  independent oracle in float64: torch.optim, another registered optimizer it must reduce to, or the
  update written out with explicit index sets / projector matrices. tests/verify/test_checks_sn_sm.py
  plants a bug in the reference for each check and shows that it fails.
"""

from __future__ import annotations

import math
from typing import Any

import sympy
import sympy as sp
import torch

import algorithms
from algorithms import adam_sn as _adam_sn_module
from algorithms.subsets import SubsetLayout, divide_by_subsets, param_layout, subset_sum_of_squares
from verify.checks._common import quick_steps, registered, relative_error
from verify.memory.formulas import (B, Context, STEP, RNG, Term, adam_transients, formula, k, m, n, p, r,
                                    side_rule, subset_count, svd_refresh)
from verify.oracle import compare
from verify.rates.cells import (ISO1, NONE, ORDER_TOLERANCE, UPPER_ONLY, Builder, const, frozen, rate_entry, sqrt_horizon)
from verify.rates import theorems as th
from verify.rates.mutants import Mutant, declare as declare_mutants, declare_invisible, patched
from verify.rates.theorems import (BOUNDED_GRAD, LOWER, SCHEDULES, SMOOTH, UNBIASED_VAR, C, H, L, Delta, T, Theorem,
                                   assume, declare, delta, sigma, sigma_21)
from verify.suite import check
from verify.verdicts import judged


# ----------------------------------------------------------------------------- memory formulas
@formula("adagrad_coordinate")
def _adagrad_coordinate(ctx: Context):
    return "dense", [STEP, Term("sum_sq", B * p, "param", "subset_accumulator", "docs/memory.md §1: AdaGrad-Coordinate mn")], \
        [Term("denominator_and_step", 2 * B * p, "param", "transient", "sqrt(v) + eps and g / it")]


@formula("adagrad_norm", defaults={"scope": "group"})
def _adagrad_norm(ctx: Context):
    transients = [Term("gradient_squares", B * p, "param", "transient", "g² before the sum")]
    if ctx.get("scope") == "tensor":  # Subset-Norm with one subset per tensor (none for a zero-size tensor)
        return "dense", [STEP, *_subset_terms(ctx, "norm", "sum_sq", "docs/memory.md §1: 1 scalar per tensor")], transients
    note = "the group's single scalar (docs/memory.md §1: O(1)); the toolkit keeps one copy in every parameter's state"
    return "dense", [STEP, Term("sum_sq", B * sympy.Integer(1), "param", "subset_accumulator", note)], transients


def _subset_terms(ctx: Context, rule: Any, key: str, note: str) -> list[Term]:
    """One accumulator per subset: ``B · p/k`` (``k`` from :func:`subset_count`)."""
    kk, _ = subset_count(ctx.problem, rule)
    ctx.values[k] = kk
    count = B * p / k if ctx.numel else sympy.Integer(0)
    return [Term(key, count, "param", "subset_accumulator", note)]


def _subset_sums(ctx: Context) -> Term:
    """The per-subset sums of squares (and their square roots) of one step: ``B · p/k`` (set by _subset_terms)."""
    count = B * p / k if ctx.numel else sympy.Integer(0)
    return Term("subset_sums", count, "param", "transient", "‖g_Ψ‖² per subset")


@formula("adagrad_subset_norm", defaults={"subset_size": -2})
def _adagrad_subset_norm(ctx: Context):
    terms = [STEP, *_subset_terms(ctx, ctx.get("subset_size"), "sum_sq", "docs/memory.md §1: c = p/k accumulators")]
    return "dense", terms, [Term("squares_then_quotient", B * p, "param", "transient", "g² (then g / denominator)"),
                            _subset_sums(ctx)]


@formula("adam_sn", defaults={"betas": (0.9, 0.999), "subset_size": -2})
def _adam_sn(ctx: Context):
    beta1 = ctx.get("betas")[0]
    terms = [STEP]
    if beta1 != 0:
        terms.append(Term("exp_avg", B * p, "param", "moment", "docs/memory.md §1: full first moment mn"))
    terms += _subset_terms(ctx, ctx.get("subset_size"), "exp_avg_sq", "docs/memory.md §1: AdamSN mn + M (heuristics) or mn + mn/k")
    return "dense", terms, [Term("quotient_and_scaled", 2 * B * p, "param", "transient", "m / denominator, scaled"),
                            _subset_sums(ctx)]


@formula("rmsprop_sn", defaults={"subset_size": -2})
def _rmsprop_sn(ctx: Context):
    terms = [STEP, *_subset_terms(ctx, ctx.get("subset_size"), "exp_avg_sq", "docs/memory.md §1: RMSPropSN M (heuristics)")]
    return "dense", terms, [Term("quotient_and_scaled", 2 * B * p, "param", "transient", "g / denominator, scaled"),
                            _subset_sums(ctx)]


_SM_VARIANT = {"paper": {"rank_overflow": "raise"}, "official": {"rank_overflow": "truncate"}}
#: Subspace-Momentum's side rule per projection type in the authors' code (docs/methods.md §1.4): svd projects
#: the smaller dimension, uniform/topk select rows (m ≥ n) or columns of the larger one; square → "right"
_SM_SIDE_RULES = {"svd": "std", "uniform": "reverse_std", "topk": "reverse_std"}


def _sm_layout(ctx: Context) -> tuple[str, int]:
    mm, nn = ctx.problem
    proj_type = ctx.get("proj_type")
    side = side_rule(mm, nn, ctx.get("proj_side") or _SM_SIDE_RULES[proj_type], "right")
    d = mm if side == "left" else nn
    rank = int(ctx.get("rank"))
    overflow = ctx.group.get("rank_overflow") or _SM_VARIANT[ctx.get("variant")]["rank_overflow"]
    if rank > d and overflow == "raise":
        raise ValueError(f"rank {rank} > projected dimension {d} (the optimizer raises for this shape)")
    return side, min(rank, d)


def _sm_terms(ctx: Context, beta1: float) -> list[Term]:
    """Subspace-Momentum's projected state (docs/methods.md §1.4, docs/memory.md §1): momentum ``r × (other dim)``, and a dense
    basis ``d × r`` (svd) or ``r`` int64 indices (uniform/topk; plus the generator for uniform)."""
    side, rank = _sm_layout(ctx)
    if beta1 == 0 or rank == 0:
        return []  # no momentum: no basis is built (the code's rule)
    ctx.values[r] = rank
    proj_dim, other = (m, n) if side == "left" else (n, m)
    terms = [Term("exp_avg", B * r * other, "param", "moment", "docs/memory.md §1: momentum r·M (svd) / r·μ (index)")]
    if ctx.get("proj_type") == "svd":
        terms.append(Term("basis", B * proj_dim * r, "param", "projector", "docs/memory.md §1: projector r·μ"))
    else:
        terms.append(Term("indices", B * r, "int64", "indices", "docs/memory.md §1: index vector (r) int64"))
        if ctx.get("proj_type") == "uniform":
            terms.append(RNG)
    return terms


def _sm_transients(ctx: Context, beta1: float) -> list[Term]:
    side, rank = _sm_layout(ctx)
    if beta1 == 0 or rank == 0:
        return [Term("orthogonal_is_gradient", sympy.Integer(0), "param", "transient", "no subspace: g itself")]
    ctx.values[r] = rank
    steady = [Term("lifted_orthogonal_numerator", 4 * B * m * n, "param", "transient",
                   "Pᵀm, P Pᵀ g, g − P Pᵀ g, their sum")]
    if ctx.get("proj_type") != "svd":
        return steady
    return steady + svd_refresh(ctx, m if side == "left" else n)


@formula("subspace_momentum",
         defaults={"momentum": 0.9, "rank": 128, "proj_type": "svd", "proj_side": None, "variant": "paper"})
def _subspace_momentum(ctx: Context):
    beta1 = ctx.get("momentum")
    if ctx.lowrank():
        return "projected", [STEP, *_sm_terms(ctx, beta1)], _sm_transients(ctx, beta1)
    terms = [STEP]
    if beta1 != 0:
        terms.append(Term("momentum_buffer", B * p, "param", "moment", "dense EMA momentum (SGD outside the SM group)"))
    transients = [Term("bias_corrected_momentum", B * p, "param", "transient", "b / (1 − β^t)")] \
        if beta1 != 0 and ctx.get("bias_correction") else []
    return "dense", terms, transients


@formula("adam_sn_sm",
         defaults={"betas": (0.9, 0.999), "subset_size": "heuristics", "rank": 128, "proj_type": "svd", "proj_side": None, "variant": "paper"})
def _adam_sn_sm(ctx: Context):
    beta1 = ctx.get("betas")[0]
    if ctx.lowrank():
        terms = [STEP, *_subset_terms(ctx, ctx.get("subset_size"), "exp_avg_sq", "docs/memory.md §1: AdamSNSM ... + M (SN accumulators)")]
        terms += _sm_terms(ctx, beta1)
        transients = [t for t in _sm_transients(ctx, beta1)]
        transients += [Term("sn_quotient", B * m * n, "param", "transient", "numerator / denominator"), _subset_sums(ctx)]
        return "projected", terms, transients
    terms = [STEP]
    if beta1 != 0:
        terms.append(Term("exp_avg", B * p, "param", "moment", "dense Adam outside the SN+SM group (docs/memory.md §1: 2p)"))
    terms += _subset_terms(ctx, "coordinate", "exp_avg_sq", "dense Adam: coordinate-wise v")
    return "dense", terms, adam_transients()


# ----------------------------------------------------------------------------- theorems
declare(
    Theorem(
        key="adagrad_norm_expectation",
        title="AdaGrad-Norm: noise-adaptive without knowing L or σ",
        algorithms=("adagrad_norm",),
        source="Ward, Wu & Bottou 2019 (background: docs/problems.md §2)",
        provenance="BG",
        assumptions=(SMOOTH, LOWER, UNBIASED_VAR, assume("bounded gradients (Ward et al.)", "BG"),
                     assume("b0 > 0 inside the square root, constant η", "BG")),
        quantity="avg_sq_grad",
        probability="expectation",
        bound=C * (1 / T + sigma * sp.log(T) / sp.sqrt(T)),
        schedule=SCHEDULES["constant"],
        notes="O(1/T) when σ = 0, Õ(1/√T) under noise, with η fixed across T. Shape only.",
    ),
    Theorem(
        key="adagrad_norm_high_probability",
        title="AdaGrad-Norm with high probability under sub-gaussian noise",
        algorithms=("adagrad_norm",),
        source="Liu, T. D. Nguyen, T. H. Nguyen, Ene, H. L. Nguyen, arXiv 2302.14843 (abstract; docs/problems.md §2)",
        provenance="BG",
        assumptions=(SMOOTH, LOWER, assume("sub-gaussian noise E exp(ξ²/σ²) ≤ e", "BG"),
                     assume("no bounded-gradient assumption", "BG")),
        quantity="avg_sq_grad",
        probability="high_probability",
        bound=C * (sp.log(T / delta) ** 2 / T + sigma * sp.log(T / delta) / sp.sqrt(T)),
        schedule=SCHEDULES["constant"],
        notes="The (1−δ)-quantile grows polylogarithmically in 1/δ (not like 1/δ); slope −1/2 under noise.",
    ),
    Theorem(
        key="adagrad_coordinate_defossez",
        title="coordinate-wise AdaGrad with bounded gradients",
        algorithms=("adagrad_coordinate",),
        source="Défossez, Bottou, Bach & Usunier, TMLR 2022 (background: docs/problems.md §2)",
        provenance="BG",
        assumptions=(SMOOTH, LOWER, UNBIASED_VAR, BOUNDED_GRAD, assume("constant η", "BG")),
        quantity="avg_sq_grad",
        probability="expectation",
        bound=C * th.d * sp.log(T) / sp.sqrt(T),
        schedule=SCHEDULES["constant"],
        notes="An upper bound: the slope is at most −1/2 (up to the log); noise-free runs may be faster.",
    ),
    Theorem(
        key="subset_norm_high_probability",
        title="AdaGrad-Subset-Norm: noise-adapted high-probability rate",
        algorithms=("adagrad_subset_norm",),
        source="Nguyen & Nguyen, arXiv 2411.07120 (theorem numbers not verified; our reading: docs/methods.md §1.8)",
        provenance="U",
        assumptions=(assume("f L-smooth, non-convex", "A"), assume("f* > −∞, Δ = f(x_1) − f*", "U"),
                     assume("unbiased oracle", "U"), assume("coordinate-wise sub-gaussian noise E exp(ξ_i²/σ_i²) ≤ e", "U"),
                     assume("b0 inside the square root, ε = 0, constant η", "U")),
        quantity="avg_sq_grad",
        probability="high_probability",
        bound=C * (H**2 / T + sigma_21 * H / sp.sqrt(T)),
        schedule=SCHEDULES["constant"],
        notes="Expected shape only: H = poly(Δ/η, ηL, b0, ‖σ‖² log(T/δ)); the noise norm is plausibly the mixed "
              "Σ_j‖σ_Ψj‖₂ (σ_21), interpolating ‖σ‖₁ (k = 1) and ‖σ‖₂ (k = d). Noise-free: O(1/T).",
    ),
    Theorem(
        key="coordinate_high_probability",
        title="AdaGrad-Coordinate as the k = 1 end of the SN theorem (noise through ‖σ‖₁)",
        algorithms=("adagrad_coordinate",),
        source="Nguyen & Nguyen, arXiv 2411.07120 (our reading: docs/methods.md §1.8)",
        provenance="U",
        assumptions=(assume("as subset_norm_high_probability with k = 1", "U"),),
        quantity="avg_sq_grad",
        probability="high_probability",
        bound=C * (H**2 / T + sigma * H / sp.sqrt(T)),
        schedule=SCHEDULES["constant"],
        notes="Noise-free O(1/T) (the SN paper's noise adaptation) is not covered by the [BG] Défossez bound.",
    ),
    Theorem(
        key="sn_dimension_table",
        title="dimension and noise-sparsity dependence of Norm / Subset-Norm / Coordinate",
        algorithms=("adagrad_subset_norm", "adagrad_coordinate", "adagrad_norm"),
        source="authors' README figure imgs/subset-norm-stepsize-1.png (timmytonga/adam-subset-norm @ ba5e242)",
        provenance="F",
        assumptions=(assume("about d^β noisy coordinates (the reading of 'noise sparsity β')", "U"),
                     assume("Δ and L O(1) in d", "U")),
        quantity="avg_sq_grad",
        probability="high_probability",
        bound=C * (th.d ** (sp.Rational(3, 10) + sp.Rational(9, 5) * th.beta) / sp.sqrt(T) + th.d ** (th.beta + 1) / T),
        schedule=SCHEDULES["constant"],
        notes="Subset-Norm row for β ≤ 2/3 (Coordinate: d^{1.5+β}/√T + d^{2.5}/T; Norm: d^{2.5β}/√T + d^{3β}/T). "
              "[D] SN beats Coordinate in the 1/√T term for all β; SN beats Norm iff β > 3/7. Orderings are "
              "tested, not exponents.",
    ),
    Theorem(
        key="subspace_momentum_high_probability",
        title="Subspace-Momentum: the SGD-with-momentum rate",
        algorithms=("subspace_momentum",),
        source="Nguyen & Nguyen, arXiv 2411.07120 (the SM theorem, our reading: docs/methods.md §1.8)",
        provenance="U",
        assumptions=(assume("L-smooth, lower-bounded f", "U"), assume("sub-gaussian noise", "U"),
                     assume("P_t with orthonormal rows, possibly refreshed; whether a gradient-dependent P is covered is open",
                        "U")),
        quantity="avg_sq_grad",
        probability="high_probability",
        bound=C * (L * Delta / T + sigma * sp.sqrt(L * Delta) / sp.sqrt(T)),
        schedule=SCHEDULES["inverse_sqrt_horizon"],
        notes="No speed-up over SGD/SGDm is claimed; expected between SGD (r = 0) and SGDm (r = d).",
    ),
)


# ----------------------------------------------------------------------------- rate entries
@rate_entry("noise_adaptation", 10)
def noise_adaptation(b: Builder) -> None:
    """AdaGrad-Norm / -Coordinate / -Subset-Norm (k = 4) at σ = 0 (η = 4 > 2/L: the step must adapt) and σ = 1
    (η fixed), the σ = 0.1 crossover (reported), E2's δ-dependence on the last iterate."""
    g, fig = b.g, "noise_adaptation"
    methods = [("adagrad_norm", {"b0": 1.0, "eps": 0.0}, 1.0, "AdaGrad-Norm"),
               ("adagrad_coordinate", {"b0": 1.0, "eps": 0.0}, 0.25, "AdaGrad-Coordinate"),
               ("adagrad_subset_norm", {"b0": 1.0, "eps": 0.0, "subset_size": 4}, 0.5, "AdaGrad-Subset-Norm (k=4)")]
    quiet_eta = 4.0  # > 2/L: a fixed step this large diverges; the accumulator must bring it down
    adapt_note = ("σ = 0 with η = 4/L (GD at this step diverges): the accumulator must shrink the step; a bug that "
                  "stops accumulating keeps η/b0 and oscillates")
    for name, hyper, eta, label in methods:
        short = name.replace("adagrad_", "")
        sn = short == "subset_norm"
        metrics = ("avg_sq_grad", "min_sq_grad", "avg_l1_sq", "avg_l21_sq") if sn else ("avg_sq_grad", "min_sq_grad")
        quiet = b.cell(f"{name}/p1-noiseless", name, hyper, b.p1(), NONE, const(quiet_eta), seeds=2, metrics=metrics,
                       l21_subset=4 if sn else None, figure=fig, label=f"{label}, σ = 0, η = {quiet_eta:g}")
        noisy = b.cell(f"{name}/p1", name, hyper, b.p1(), ISO1, const(eta), seeds=g.seeds_hp, metrics=metrics,
                       l21_subset=4 if sn else None, figure=fig, label=f"{label}, σ = 1")
        accumulate = (f"{name}_not_accumulated",)
        if name == "adagrad_norm":
            b.band(f"{name}/noiseless-slope", name, "adagrad_norm_expectation", quiet, -1.0, g.window_anytime,
                   figure=fig, claim="σ = 0: slope −1 with η fixed (and larger than 2/L)", notes=adapt_note,
                   mutants=accumulate)
            blind = ("not seen: the no-sqrt bug (step η/Σ‖g‖²) gives slope −0.57 on this window, inside the band "
                     "(its 1/t step is still in its transient)")
            b.band(f"{name}/noisy-slope", name, "adagrad_norm_expectation", noisy, -0.5, g.window_anytime,
                   figure=fig, claim="σ = 1: slope −1/2 with the same kind of fixed η", notes=blind,
                   mutants=(f"{name}_not_accumulated",))
            b.band(f"{name}/noisy-slope-q0.9", name, "adagrad_norm_high_probability", noisy, -0.5, g.window_anytime,
                   statistic="q0.9", figure=fig, claim="the 0.9-quantile decays at slope −1/2", notes=blind,
                   mutants=(f"{name}_not_accumulated",))
            cross = b.cell(f"{name}/p1-crossover", name, hyper, b.p1(), ("isotropic", {"level": 0.1}), const(eta),
                           seeds=g.seeds_p1, figure=fig, label=f"{label}, σ = 0.1 (crossover)")
            crossover_note = ("reported: a window around the crossover mixes the two regimes by design, so its slope "
                              "cannot follow a schedule's exponent (no power)")
            b.band(f"{name}/crossover-early", name, "adagrad_norm_expectation", cross, -1.0, (g.anytime[0], 2**7),
                   width=0.2, figure=fig, claim="σ = 0.1, small T: near the noiseless slope −1 (±0.2)",
                   mutants=(frozen(name),), assess=False, notes=crossover_note)
            b.band(f"{name}/crossover-late", name, "adagrad_norm_expectation", cross, -0.5, 
                   (g.window_anytime[1] // 4, g.window_anytime[1]), width=0.15, figure=fig,
                   claim="σ = 0.1, large T: the noisy slope −1/2 (±0.15)", mutants=(f"{name}_no_sqrt",), assess=False,
                   notes=crossover_note)
            _delta_dependence(b, name, hyper, eta)
        elif name == "adagrad_coordinate":
            b.band(f"{name}/noisy-slope", name, "adagrad_coordinate_defossez", noisy, -0.5, g.window_anytime,
                   figure=fig, claim="slope −1/2 (the bound d·log T/√T: an upper bound, tight under noise)",
                   notes="[D] under dominant noise the accumulated Σg_i² grows like σ_i²t, the step like η/(σ_i√t): "
                         "R_T ∝ 1/√T, so the bound's exponent is attained (two-sided band)",
                   mutants=(f"{name}_not_accumulated", f"{name}_no_sqrt"))
            b.band(f"{name}/noiseless-slope", name, "coordinate_high_probability", quiet, -1.0, g.window_anytime,
                   figure=fig, claim="σ = 0: slope −1 (the SN paper's noise adaptation)", notes=adapt_note,
                   mutants=accumulate)
            b.band(f"{name}/noisy-slope-q0.99", name, "coordinate_high_probability", noisy, -0.5, g.window_anytime,
                   statistic="q0.99", figure=fig, claim="σ = 1: 0.99-quantile slope −1/2",
                   mutants=(f"{name}_no_sqrt",))
        else:
            b.band(f"{name}/noiseless-slope", name, "subset_norm_high_probability", quiet, -1.0, g.window_anytime,
                   figure=fig, claim="σ = 0: slope −1 (noise adaptation)", notes=adapt_note, mutants=accumulate)
            for metric in ("avg_sq_grad", "avg_l1_sq", "avg_l21_sq"):
                for stat in ("q0.9", "q0.99"):
                    b.band(f"{name}/noisy-slope-{metric}-{stat}", name, "subset_norm_high_probability", noisy, -0.5,
                           g.window_anytime, statistic=stat, metric=metric, figure=fig,
                           claim=f"σ = 1: {stat} of {metric} at slope −1/2", mutants=(f"{name}_no_sqrt",))


def _delta_dependence(b: Builder, name: str, hyper: dict, eta: float) -> None:
    """E2 on a statistic that does not self-average: the last iterate's ‖∇f(x_T)‖² at small T.

    R_T averages T steps, so its quantiles concentrate whatever the noise's tails (even Student-t
    noise gave an exponent near 0.02). The last iterate carries one step's noise: its (1−δ)-quantile
    grows like log(1/δ) under sub-gaussian (Rademacher) noise and like a power of 1/δ under heavy
    tails (Student-t, 3 degrees of freedom, the same variance). Measured, not judged.
    """
    g, fig = b.g, "noise_adaptation"
    levels = ("q0.5", "q0.9", "q0.99", "q0.999")
    for family, label in (("isotropic", "Rademacher"), ("student_t", "Student-t (df 3)")):
        cell = b.cell(f"{name}/p1-last-{family}", name, hyper, b.p1(), (family, {"level": 1.0}), const(eta),
                      seeds=g.seeds_delta, horizons=g.delta_horizons, metrics=("last_sq_grad",), figure=fig,
                      label=f"{name}, last iterate, {label} noise")
        b.check(key=f"{name}/delta-last-{family}", algorithm=name, theorem="adagrad_norm_high_probability", kind="delta",
                cells=(cell,), metric="last_sq_grad", levels=levels, low=0.0, high=0.5, max_width=None, figure=fig,
                claim=f"E2: d log q_(1−δ)/d log(1/δ) of ‖∇f(x_T)‖² at T = {g.delta_horizons[-1]}, {label} noise",
                assess=False, resolution=None, no_schedule_power="a measurement, not a claim",
                notes="measured: sub-gaussian tails give a small exponent (log(1/δ) growth), heavy tails a larger one")


#: exponent of d in the 1/√T term of the authors' rate figure [F]
E3_PREDICTED = {"adagrad_coordinate": lambda beta: 1.5 + beta, "adagrad_subset_norm": lambda beta: 0.3 + 1.8 * beta,
                "adagrad_norm": lambda beta: 2.5 * beta}


@rate_entry("dimension_sparsity", 10)
def dimension_and_sparsity(b: Builder) -> None:
    """E3: d = 4^j, σ_i = 1 on ⌈d^β⌉ random coordinates, P1 normalised (L = Δ = 1 for every d).

    Normalisation: L = 1 and Δ = f(x0) − f* = 1 for every d (P1's weights scale as 1/d), and the noise
    has ‖σ‖₂² = ⌈d^β⌉ (σ_i = 1 on the noisy coordinates). η is tuned per method, d and β on a log
    grid (the smallest 0.9-quantile at the largest horizon); the d-exponent is fitted only where every
    tuned cell's T-slope is −1/2 ± 0.1 (the noise-dominated regime the figure's 1/√T term describes).
    Measured, not judged: the figure's normalisation and bounded quantity are not stated [F].
    """
    g, fig = b.g, "dimension_sparsity"
    methods = ("adagrad_norm", "adagrad_coordinate", "adagrad_subset_norm")
    for beta in g.betas:
        groups: dict[str, list[tuple[str, ...]]] = {m: [] for m in methods}
        for d in g.dims:
            k = int(round(d**0.5))
            for name in methods:
                extra = {"subset_size": k} if name == "adagrad_subset_norm" else {}
                keys = tuple(b.cell(f"{name}/e3-d{d}-beta{beta:g}-eta{eta:g}", name, {"b0": 1.0, "eps": 0.0, **extra},
                                    b.p1(d), b.sparse(beta), const(eta), seeds=g.seeds_e3, horizons=g.e3_horizons,
                                    metrics=("avg_sq_grad",), figure=fig,
                                    label=f"{name.replace('adagrad_', '')} d={d} β={beta:g} η={eta:g}")
                             for eta in g.e3_etas)
                groups[name].append(keys)
            sn, coord, norm = groups["adagrad_subset_norm"][-1], groups["adagrad_coordinate"][-1], groups["adagrad_norm"][-1]
            common = dict(algorithm="adagrad_subset_norm", theorem="sn_dimension_table", kind="order", statistic="q0.9",
                          high=ORDER_TOLERANCE, max_width=1.0, figure=fig, assess=False, resolution=None,
                          no_schedule_power="an ordering at tuned η (reported)", tune_groups=(len(sn), len(sn)))
            b.check(key=f"adagrad_subset_norm/e3-vs-coordinate-d{d}-beta{beta:g}", cells=sn + coord,
                    claim=f"E3 d={d}, β={beta:g}: SN <= Coordinate at tuned η (the figure: for every β)", **common)
            prediction = "SN < Norm" if beta > 3 / 7 else "Norm <= SN"
            b.check(key=f"adagrad_subset_norm/e3-vs-norm-d{d}-beta{beta:g}", cells=sn + norm,
                    claim=f"E3 d={d}, β={beta:g}: log(SN/Norm) at tuned η (the figure predicts {prediction}: β vs 3/7)",
                    **common)
        for name in methods:
            predicted = E3_PREDICTED[name](beta)
            cells = tuple(k for group in groups[name] for k in group)
            b.check(key=f"{name}/e3-d-exponent-beta{beta:g}", algorithm=name, theorem="sn_dimension_table", kind="dim",
                    cells=cells, tune_groups=tuple(len(group) for group in groups[name]), statistic="q0.9",
                    low=predicted - 0.5, high=predicted + 0.5, max_width=2.0, figure=fig, assess=False,
                    resolution=None, no_schedule_power="a d-exponent at tuned η (reported)",
                    claim=f"E3 β={beta:g}: d-exponent of the 0.9-quantile at fixed T and tuned η (figure: "
                          f"{predicted:.2f} for the 1/√T term)")


@rate_entry("partition_alignment", 10)
def partition_alignment(b: Builder) -> None:
    """E4: the same noise (σ_i = 1 on ⌈d^{1/2}⌉ coordinates) filling few contiguous subsets, or one per subset."""
    g, fig = b.g, "partition_alignment"
    d = 64 if g.name == "quick" else 256
    k = int(round(d**0.5))
    keys = {}
    for placement in ("first", "spread"):
        keys[placement] = b.cell(f"adagrad_subset_norm/e4-{placement}", "adagrad_subset_norm",
                                 {"b0": 1.0, "eps": 0.0, "subset_size": k}, b.p1(d), b.sparse(0.5, placement),
                                 const(0.5), seeds=g.seeds_hp, horizons=g.e3_horizons, metrics=("avg_sq_grad",),
                                 l21_subset=k, figure=fig,
                                 label=f"SN k={k}, d={d}, noise in {'few subsets' if placement == 'first' else 'every subset'}")
    b.check(key="adagrad_subset_norm/e4-alignment", algorithm="adagrad_subset_norm",
            theorem="subset_norm_high_probability", kind="order", cells=(keys["first"], keys["spread"]), statistic="mean",
            high=0.0, max_width=0.5, figure=fig, mutants=("adagrad_subset_norm_strided_subsets",), resolution=None,
            no_schedule_power="an ordering of two noise placements at one η",
            claim="E4: the mixed norm Σ_j‖σ_Ψj‖ predicts SN does better when the noise fills few subsets "
                  "(log ratio < 0)")


@rate_entry("sn_adam", 10)
def adam_sn_by_analogy(b: Builder) -> None:
    b.p1_analogy("adam_sn", {"betas": [0.9, 0.999], "subset_size": 4}, 0.6, "AdamSN (k=4), η = 0.6/√T")


@rate_entry("sn_adam", 20)
def rmsprop_sn_by_analogy(b: Builder) -> None:
    b.p1_analogy("rmsprop_sn", {"beta2": 0.999, "subset_size": 4}, 0.6, "RMSPropSN (k=4), η = 0.6/√T")


@rate_entry("matrix_iso", 30)
def subspace_momentum_on_the_abc_problem(b: Builder) -> None:
    """Subspace-Momentum at r = 2 against SGD at equal η (E5: SM no worse than r = 0)."""
    g = b.g
    S, window = g.seeds_matrix, g.window_matrix
    fig = "matrix_iso"
    MQ = b.mq()
    sgd_far = b.cell("sgd/mq-iso-far", "sgd", {}, MQ, ISO1, sqrt_horizon(2.0), seeds=S, figure=fig,
                     label="SGD from ‖W0‖ = 0.5, η = 2/√T (the SM comparison)")
    sm = b.cell("subspace_momentum/mq-iso", "subspace_momentum", {"rank": 2, "momentum": 0.9, "update_proj_gap": 200},
                MQ, ISO1, sqrt_horizon(2.0), seeds=S, figure=fig, label="Subspace-Momentum r = 2, η = 2/√T")
    b.upper("subspace_momentum/slope", "subspace_momentum", "subspace_momentum_high_probability", sm, window, figure=fig,
            claim="slope at most −1/2 (+0.05)", mutants=(frozen("subspace_momentum"),), one_sided=UPPER_ONLY)
    b.check(key="subspace_momentum/vs-sgd", algorithm="subspace_momentum", theorem="subspace_momentum_high_probability",
            kind="order", cells=(sm, sgd_far), window=window, high=ORDER_TOLERANCE, max_width=1.0, figure=fig,
            claim="E5: SM no worse than SGD (r = 0) at equal η (within 5 %)", mutants=("subspace_momentum_no_complement",),
            resolution=None, no_schedule_power="an ordering of two methods at one η")


@rate_entry("matrix_iso", 60)
def adam_sn_sm_by_analogy(b: Builder) -> None:
    b.matrix_analogy("adam_sn_sm", {"rank": 2, "update_proj_gap": 200, "subset_size": "heuristics"}, 1.0, "AdamSNSM r = 2")


@rate_entry("matrix_rows", 50)
def subspace_momentum_with_noise_on_two_rows(b: Builder) -> None:
    cell = b.rows_cell("subspace_momentum", {"rank": 2, "momentum": 0.9, "update_proj_gap": 200}, 2.0,
                       "Subspace-Momentum r = 2")
    b.upper("subspace_momentum/rows-slope", "subspace_momentum", "subspace_momentum_high_probability", cell,
            b.g.window_matrix, figure="matrix_rows",
            claim="noise on 2 rows: the SGD complement converges (slope <= −1/2 + 0.05)",
            mutants=("subspace_momentum_no_complement",), one_sided=UPPER_ONLY)


@rate_entry("momentum_matters", 10)
def momentum_matters(b: Builder) -> None:
    """E5: SGD (r = 0), Subspace-Momentum (r = 2) and SGD-momentum (r = d) at equal η and β1 on an
    ill-conditioned ABC problem (Hessian eigenvalues C⊗B in [0.01, 4]) with weak noise, where heavy-ball
    momentum speeds up the slow directions. Reported (the SM theorem is unverified)."""
    g, fig = b.g, "momentum_matters"
    ill = b.mq(eig_range=(0.1, 2.0))
    noise = ("isotropic", {"level": 0.1})
    keys = {}
    for name, algorithm, hyper in [("sgd", "sgd", {}),
                                   ("subspace_momentum", "subspace_momentum",
                                    {"rank": 2, "momentum": 0.9, "update_proj_gap": 200}),
                                   ("sgdm", "sgd", {"momentum": 0.9, "momentum_type": "ema"})]:
        keys[name] = b.cell(f"{name}/mq-ill", algorithm, hyper, ill, noise, sqrt_horizon(2.0), seeds=g.seeds_matrix,
                            figure=fig, label=f"{name}, ill-conditioned ABC, η = 2/√T")
    common = dict(algorithm="subspace_momentum", theorem="subspace_momentum_high_probability", kind="order",
                  window=g.window_matrix, low=-10.0, high=10.0, max_width=None, figure=fig, assess=False,
                  resolution=None, no_schedule_power="an ordering at one η (reported)")
    b.check(key="subspace_momentum/ill-vs-sgd", cells=(keys["subspace_momentum"], keys["sgd"]),
            claim="E5: log(SM / SGD) on the ill-conditioned problem (SM between SGD and SGDm: <= 0)", **common)
    b.check(key="subspace_momentum/ill-vs-sgdm", cells=(keys["subspace_momentum"], keys["sgdm"]),
            claim="E5: log(SM / SGDm) on the ill-conditioned problem (between: >= 0)", **common)


@rate_entry("code_paths", 50)
def adam_sn_heuristics_on_a_matrix(b: Builder) -> None:
    g, fig = b.g, "code_paths"
    MQ = b.mq()
    heuristics = b.cell("adam_sn/mq-heuristics", "adam_sn", {"betas": [0.9, 0.999], "subset_size": "heuristics"}, MQ,
                        ISO1, sqrt_horizon(0.5), seeds=g.seeds_matrix, figure=fig, label="AdamSN, heuristic subsets on a matrix")
    b.measured("adam_sn/heuristics-slope", "adam_sn", "no_theorem_sqrt_analogy", heuristics, g.window_matrix,
               figure=fig, claim="AdamSN's heuristic subset rule on a matrix parameter, measured")


# ----------------------------------------------------------------------------- mutants
def _no_sqrt_update(opt, p, grad, state, group) -> None:
    """AdaGrad-(Subset-)Norm/Coordinate step dividing by b² = b0² + Σ‖g‖² instead of b."""
    state["step"] += 1
    layout = opt._layout(p, group)
    batch = group["batch_dims"]
    state["sum_sq"].add_(subset_sum_of_squares(grad, layout, batch))
    denom = state["sum_sq"] + opt.resolved(group, "eps")
    p.add_(divide_by_subsets(grad, denom, layout, batch), alpha=-float(group["lr"]))


def _not_accumulated_update(opt, p, grad, state, group) -> None:
    """AdaGrad step whose new accumulator b_t² = b_{t-1}² + ‖g_t‖² is computed but never stored (b_t² = b0² + ‖g_t‖²)."""
    state["step"] += 1
    layout = opt._layout(p, group)
    batch = group["batch_dims"]
    current = state["sum_sq"] + subset_sum_of_squares(grad, layout, batch)  # the bug: not written back
    denom = current.sqrt().add_(opt.resolved(group, "eps"))
    p.add_(divide_by_subsets(grad, denom, layout, batch), alpha=-float(group["lr"]))


class AdagradNormNoSqrt(algorithms.REGISTRY["adagrad_norm"]):
    def __init__(self, params, lr: float = 1e-2, **kwargs) -> None:
        kwargs["scope"] = "tensor"  # one accumulator per tensor: the same as "group" for a single parameter
        super().__init__(params, lr, **kwargs)

    def _update_param(self, p, grad, state, group) -> None:
        _no_sqrt_update(self, p, grad, state, group)


class AdagradCoordinateNoSqrt(algorithms.REGISTRY["adagrad_coordinate"]):
    def _update_param(self, p, grad, state, group) -> None:
        _no_sqrt_update(self, p, grad, state, group)


class AdagradSubsetNormNoSqrt(algorithms.REGISTRY["adagrad_subset_norm"]):
    def _update_param(self, p, grad, state, group) -> None:
        _no_sqrt_update(self, p, grad, state, group)


def _tensor_scope(cls: type) -> type:
    class TensorScope(cls):
        def __init__(self, params, lr: float = 1e-2, **kwargs) -> None:
            kwargs["scope"] = "tensor"
            super().__init__(params, lr, **kwargs)

    return TensorScope


class AdagradNormNotAccumulated(_tensor_scope(algorithms.REGISTRY["adagrad_norm"])):
    def _update_param(self, p, grad, state, group) -> None:
        _not_accumulated_update(self, p, grad, state, group)


class AdagradCoordinateNotAccumulated(algorithms.REGISTRY["adagrad_coordinate"]):
    def _update_param(self, p, grad, state, group) -> None:
        _not_accumulated_update(self, p, grad, state, group)


class AdagradSubsetNormNotAccumulated(algorithms.REGISTRY["adagrad_subset_norm"]):
    def _update_param(self, p, grad, state, group) -> None:
        _not_accumulated_update(self, p, grad, state, group)


class AdagradSubsetNormStridedSubsets(algorithms.REGISTRY["adagrad_subset_norm"]):
    """Subsets formed with the wrong reshape order: subset j = {j, j + d/k, j + 2d/k, ...} (strided, not contiguous)."""

    def _update_param(self, p, grad, state, group) -> None:
        state["step"] += 1
        layout = self._layout(p, group)
        batch = group["batch_dims"]
        d = p.shape[-1]
        k = d // layout.state_shape[0] if p.dim() - batch == 1 and layout.state_shape else 1
        perm = torch.arange(d, device=p.device).reshape(k, d // k).T.reshape(-1)  # the bug: [k, d/k] read column-wise
        g = grad[..., perm]
        state["sum_sq"].add_(subset_sum_of_squares(g, layout, batch))
        denom = state["sum_sq"].sqrt().add_(self.resolved(group, "eps"))
        step = divide_by_subsets(g, denom, layout, batch)
        p[..., perm] = p[..., perm] - float(group["lr"]) * step


class SubspaceMomentumNoComplement(algorithms.REGISTRY["subspace_momentum"]):
    def _subspace_parts(self, p, grad, state, group, beta1):
        lifted, orthogonal = super()._subspace_parts(p, grad, state, group, beta1)
        return lifted, torch.zeros_like(orthogonal)


def _heuristic_layout_on_the_other_axis(p, batch_dims, subset_size):
    layout = param_layout(p, batch_dims, subset_size)
    if subset_size != "heuristics" or p.dim() - batch_dims != 2:
        return layout
    m, n = p.shape[batch_dims:]
    if m >= n:  # the right rule sums each row; the bug sums each column
        return SubsetLayout((m, n), (-2,), (1, n), m, n, None, False)
    return SubsetLayout((m, n), (-1,), (m, 1), n, m, None, False)


class AdamSnHeuristicsWrongAxis(algorithms.REGISTRY["adam_sn"]):
    """AdamSN whose heuristic subsets of a matrix run along the wrong axis (columns for rows; no claim sees it,
    ``verify rates --regression`` does, on the ``adam_sn/mq-heuristics`` cell)."""

    def step(self, closure=None):
        with patched(_adam_sn_module, "param_layout", _heuristic_layout_on_the_other_axis):
            return super().step(closure)


declare_mutants(
    Mutant("adagrad_norm_no_sqrt", "adagrad_norm", AdagradNormNoSqrt, "divides by Σ‖g‖², not its square root"),
    Mutant("adagrad_coordinate_no_sqrt", "adagrad_coordinate", AdagradCoordinateNoSqrt,
           "divides by Σ g_i², not its square root"),
    Mutant("adagrad_subset_norm_no_sqrt", "adagrad_subset_norm", AdagradSubsetNormNoSqrt,
           "divides by Σ‖g_Ψ‖², not its square root"),
    Mutant("adagrad_norm_not_accumulated", "adagrad_norm", AdagradNormNotAccumulated,
           "the new accumulator is never stored (b_t² = b0² + ‖g_t‖²)"),
    Mutant("adagrad_coordinate_not_accumulated", "adagrad_coordinate", AdagradCoordinateNotAccumulated,
           "the new accumulator is never stored"),
    Mutant("adagrad_subset_norm_not_accumulated", "adagrad_subset_norm", AdagradSubsetNormNotAccumulated,
           "the new accumulator is never stored"),
    Mutant("adagrad_subset_norm_strided_subsets", "adagrad_subset_norm", AdagradSubsetNormStridedSubsets,
           "subsets read with the wrong reshape order (strided instead of contiguous)"),
    Mutant("adagrad_norm_heavy_tailed_noise", "adagrad_norm", None,
           "the noise is Student-t (df 3) though the check assumes sub-gaussian noise", noise="student_t"),
    Mutant("adagrad_subset_norm_heavy_tailed_noise", "adagrad_subset_norm", None,
           "the noise is Student-t (df 3) though the check assumes sub-gaussian noise", noise="student_t"),
    Mutant("subspace_momentum_no_complement", "subspace_momentum", SubspaceMomentumNoComplement,
           "the SGD step in the orthogonal complement is dropped"),
    Mutant("adam_sn_heuristics_wrong_axis", "adam_sn", AdamSnHeuristicsWrongAxis,
           "heuristic subsets of a matrix along the wrong axis"),
)
declare_invisible("adagrad_subset_norm: mean instead of sum", "the mean is the sum / k, so the step is √k times larger: a "
                  "constant step-size change, invisible to a slope (adaptive methods keep their exponent for any η)")


# ----------------------------------------------------------------------------- identity checks (verify check)
GROUP = "sn_sm"
RTOL = 1e-12


# ----------------------------------------------------------------------------- Subset-Norm
@check("adagrad_subset_norm(k=1) == torch.optim.Adagrad (float64)", GROUP)
def adagrad_k1_vs_torch(quick: bool):
    rep = compare("adagrad_subset_norm", torch.optim.Adagrad,
                  reference_kwargs=dict(lr=0.05, subset_size=1, b0=0.1, eps=1e-8, weight_decay=0.0),
                  candidate_kwargs=dict(lr=0.05, initial_accumulator_value=0.01, eps=1e-8, foreach=False, weight_decay=0.0),
                  dtype=torch.float64, steps=quick_steps(quick), rtol=RTOL)
    return judged(rep.passed, f"max rel err {max(rep.param_err):.1e}")


@check("rmsprop_sn(k=1) == torch.optim.RMSprop (float64)", GROUP)
def rmsprop_k1_vs_torch(quick: bool):
    rep = compare("rmsprop_sn", torch.optim.RMSprop, reference_kwargs=dict(lr=1e-2, beta2=0.9, eps=1e-8, subset_size=1, weight_decay=0.0),
                  candidate_kwargs=dict(lr=1e-2, alpha=0.9, eps=1e-8, foreach=False, weight_decay=0.0),
                  dtype=torch.float64, steps=quick_steps(quick), rtol=RTOL)
    return judged(rep.passed, f"max rel err {max(rep.param_err):.1e}")


@check("adam_sn(k=1, official) == adam(eps_placement='hf') (float64)", GROUP)
def adam_sn_k1_vs_adam_hf(quick: bool):
    kw = dict(lr=1e-2, betas=(0.9, 0.99), eps=1e-3, weight_decay=0.1)
    rep = compare("adam_sn", registered("adam"), reference_kwargs=dict(kw, subset_size=1, variant="official"),
                  candidate_kwargs=dict(kw, eps_placement="hf", weight_decay_timing="after"),
                  dtype=torch.float64, steps=quick_steps(quick), rtol=RTOL, gradients="loss")
    return judged(rep.passed, f"max rel err {max(rep.param_err):.1e}")


def explicit_subsets(shape: tuple[int, ...], rule) -> list[list[int]]:
    """The partition as flat row-major index lists, straight from docs/methods.md §1.2 (2-D shapes and integer rules)."""
    numel = math.prod(shape)
    if rule == "heuristics":
        m, n = shape
        if m >= n:
            return [[i * n + j for j in range(n)] for i in range(m)]
        return [[i * n + j for i in range(m)] for j in range(n)]
    target = rule if rule > 0 else math.floor(math.sqrt(numel) / -rule)
    k = max(d for d in range(1, max(target, 1) + 1) if numel % d == 0)
    return [list(range(c * k, (c + 1) * k)) for c in range(numel // k)]


@check("adagrad_subset_norm == the update on explicit subsets (heuristics, k, -k)", GROUP)
def subset_norm_vs_explicit_subsets(quick: bool):
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for shape in [(9, 4), (4, 10), (6, 6)]:
        for rule in ["heuristics", 4, -2]:
            x0 = torch.randn(shape, generator=gen, dtype=torch.float64)
            grads = [torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(5 if quick else 20)]
            x = x0.clone().requires_grad_()
            opt = algorithms.make("adagrad_subset_norm", [x], lr=0.1, subset_size=rule, b0=0.5, eps=1e-3)
            ref = x0.reshape(-1).tolist()
            subsets = explicit_subsets(shape, rule)
            acc = [0.25] * len(subsets)
            for g in grads:
                x.grad = g.clone()
                opt.step()
                flat = g.reshape(-1).tolist()
                for j, members in enumerate(subsets):
                    acc[j] += sum(flat[i] ** 2 for i in members)
                    for i in members:
                        ref[i] -= 0.1 * flat[i] / (math.sqrt(acc[j]) + 1e-3)
            worst = max(worst, relative_error(x.detach().reshape(-1), torch.tensor(ref, dtype=torch.float64)))
    return judged(worst <= RTOL, f"max rel err {worst:.1e} over 9 (shape, rule) cases")


# ----------------------------------------------------------------------------- Subspace-Momentum
@check("subspace_momentum(full rank, no refresh) == EMA-momentum SGD (float64)", GROUP)
def sm_full_rank_vs_ema_sgd(quick: bool):
    rep = compare("subspace_momentum", registered("sgd"),
                  reference_kwargs=dict(lr=1e-2, momentum=0.9, rank=64, rank_overflow="truncate", update_proj_gap=10**6,
                                        weight_decay=0.0),
                  candidate_kwargs=dict(lr=1e-2, momentum=0.9, momentum_type="ema", weight_decay=0.0),
                  shapes=((24, 12), (12, 24), (16, 16), (17,)), dtype=torch.float64, steps=quick_steps(quick), rtol=RTOL)
    return judged(rep.passed, f"max rel err {max(rep.param_err):.1e}")


def _right_basis(G: torch.Tensor, r: int, official: bool) -> torch.Tensor:
    """Top-r right singular vectors (n × r): paper float64 with pinned signs; official float32 as returned."""
    if official:
        return torch.linalg.svd(G.float(), full_matrices=False).Vh[:r].T.double()
    V = torch.linalg.svd(G, full_matrices=False).Vh[:r].T
    return V * V[V.abs().argmax(dim=0), torch.arange(r)].sign()


def _sm_against_matrices(*, refresh: str, gap: int, steps: int, official: bool = False) -> float:
    """Run subspace_momentum on a tall matrix and return its max rel err against explicit projector matrices."""
    gen = torch.Generator().manual_seed(1)
    m, n, r, lr, beta = 10, 6, 2, 0.05, 0.9
    x0 = torch.randn(m, n, generator=gen, dtype=torch.float64)
    x = x0.clone().requires_grad_()
    opt = algorithms.make("subspace_momentum", [x], lr=lr, momentum=beta, rank=r, update_proj_gap=gap, refresh=refresh,
                          variant="official" if official else "paper")
    ref, B, mom, worst = x0.clone(), None, torch.zeros(m, r, dtype=torch.float64), 0.0
    for t in range(1, steps + 1):
        G = torch.randn(m, n, generator=gen, dtype=torch.float64)
        x.grad = G.clone()
        opt.step()
        stale = False
        if B is None or t % gap == 0:
            if B is not None and refresh == "reset":
                mom = torch.zeros_like(mom)
            stale = B is not None and refresh == "official"
            B = _right_basis(G, r, official)
        mom = beta * mom + (1 - beta) * (G @ B)
        ref = ref - lr * (mom @ B.T + (G - G @ B @ B.T))
        if stale:
            mom = torch.zeros_like(mom)
        worst = max(worst, relative_error(x.detach(), ref))
    return worst


@check("subspace_momentum(rank 2, fixed subspace) == P^T m + (I - P^T P) g on explicit matrices", GROUP)
def sm_fixed_subspace_vs_matrices(quick: bool):
    err = _sm_against_matrices(refresh="reset", gap=10**6, steps=quick_steps(quick))
    return judged(err <= RTOL, f"max rel err {err:.1e}")


@check("subspace_momentum(official) reproduces the authors' stale-basis refresh (float32 SVD)", GROUP)
def sm_official_refresh_vs_matrices(quick: bool):
    err = _sm_against_matrices(refresh="official", gap=4, steps=quick_steps(quick), official=True)
    return judged(err <= RTOL, f"max rel err {err:.1e} (refresh every 4 steps)")


@check("adam_sn_sm(full rank, no refresh) == adam_sn (float64)", GROUP)
def snsm_full_rank_vs_adam_sn(quick: bool):
    kw = dict(lr=1e-2, betas=(0.9, 0.99), eps=1e-6, subset_size="heuristics")
    rep = compare("adam_sn_sm", registered("adam_sn"),
                  reference_kwargs=dict(kw, rank=64, rank_overflow="truncate", update_proj_gap=10**6),
                  candidate_kwargs=kw, shapes=((40, 24), (24, 40), (32, 32)), dtype=torch.float64,
                  steps=quick_steps(quick), rtol=RTOL)
    return judged(rep.passed, f"max rel err {max(rep.param_err):.1e}")
