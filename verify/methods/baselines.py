"""Baselines: SGD (plain, heavy ball, EMA momentum), Adam(W) and Lion: their verification in one place.

* memory: SGD's optional momentum buffer, Adam's two moments, Lion's one (:mod:`verify.memory.formulas`);
* theorems: the descent lemma and SGD's constant and 1/√T rates [D], SGD-momentum and Défossez et al.'s
  Adam bound [BG];
* rate entries: GD and Adam on P1 (``baselines``), SGD/SGDm in the ABC basin (``matrix_iso``), Lion by
  analogy (``sn_adam``), Adam as the full-rank reference of the rows experiment and with weight decay;
* mutants: a doubled SGD step, a never-zeroed gradient sum, Adam's bias-correction precedence, AdamW's decay
  turned into L2;
* identity checks: ``adam`` and ``sgd`` against ``torch.optim`` (float64).
"""

from __future__ import annotations

import sympy as sp
import torch

import algorithms
from verify.memory.formulas import B, Term, adam_transients, dense_adam_terms, formula, p, STEP, Context
from verify.oracle import compare
from verify.rates.cells import BASIN, ISO1, NONE, TIGHT_NOISE, Builder, rate_entry, sqrt_horizon
from verify.rates.mutants import Mutant, declare as declare_mutants, declare_invisible
from verify.rates.theorems import (BOUNDED_GRAD, LOWER, SCHEDULES, SMOOTH, UNBIASED_VAR, C, Delta, L, T, Theorem,
                                   assume, declare, eta, eta0, d, sigma)
from verify.suite import check
from verify.verdicts import judged


# ----------------------------------------------------------------------------- memory formulas
@formula("sgd", defaults={"momentum": 0.0})
def _sgd(ctx: Context):
    terms = [STEP]
    if ctx.get("momentum") != 0:
        terms.append(Term("momentum_buffer", B * p, "param", "moment", "heavy-ball / EMA buffer"))
    transients = []
    if ctx.get("weight_decay"):
        transients.append(Term("weight_decay_gradient", B * p, "param", "transient", "g + λx"))
    if ctx.get("momentum") and ctx.get("momentum_type") == "ema" and ctx.get("bias_correction"):
        transients.append(Term("bias_corrected_momentum", B * p, "param", "transient", "b / (1 − μ^t)"))
    return "dense", terms, transients  # heavy ball and plain SGD update in place


@formula("adam")
def _adam(ctx: Context):
    return "dense", [STEP, *dense_adam_terms("docs/memory.md §1: 2p")], adam_transients()


@formula("lion")
def _lion(ctx: Context):
    """Lion (Chen et al. 2023, Algorithm 2): one EMA buffer (docs/methods.md §7)."""
    return "dense", [STEP, Term("exp_avg", B * p, "param", "moment", "Lion: m (1 per element)")], \
        [Term("interpolation_and_sign", 2 * B * p, "param", "transient", "β1 m + (1 − β1) g, its sign")]


# ----------------------------------------------------------------------------- theorems
declare(
    Theorem(
        key="gd_descent",
        title="gradient descent on an L-smooth function, η = 1/L",
        algorithms=("sgd",),
        source="descent lemma (standard); PEPit's non-convex GD example gives the tight (4/3)-type constant [S]",
        provenance="D",
        assumptions=(SMOOTH, LOWER, assume("exact gradients (σ = 0)", "D")),
        quantity="avg_sq_grad",
        probability="deterministic",
        bound=2 * L * Delta / T,
        schedule=SCHEDULES["one_over_L"],
        explicit=True,
        notes="[D] f(x_{t+1}) ≤ f(x_t) − (1/2L)‖∇f(x_t)‖² for η = 1/L; summing t = 0..T−1 gives "
              "(1/T)Σ‖∇f(x_t)‖² ≤ 2L(f(x_0) − f_inf)/T, hence also for the minimum.",
    ),
    Theorem(
        key="sgd_constant",
        title="SGD with a constant step η ≤ 1/L",
        algorithms=("sgd",),
        source="Ghadimi & Lan 2013 (background); re-derived from the descent lemma",
        provenance="D",
        assumptions=(SMOOTH, LOWER, UNBIASED_VAR, assume("constant η ≤ 1/L", "D")),
        quantity="avg_sq_grad",
        probability="expectation",
        bound=2 * Delta / (eta * T) + L * eta * sigma**2,
        schedule=SCHEDULES["constant"],
        explicit=True,
        notes="[D] E f(x_{t+1}) ≤ E f(x_t) − η(1 − Lη/2)E‖∇f‖² + Lη²σ²/2 and 1 − Lη/2 ≥ 1/2; summing, "
              "(1/T)Σ E‖∇f(x_t)‖² ≤ 2Δ/(ηT) + Lησ² (σ² = E‖ξ‖², the total noise variance).",
    ),
    Theorem(
        key="sgd_horizon",
        title="SGD with the fixed-horizon step η = η0/√T ≤ 1/L",
        algorithms=("sgd",),
        source="Ghadimi & Lan 2013 (background, docs/problems.md §2); constants re-derived from sgd_constant",
        provenance="D",
        assumptions=(SMOOTH, LOWER, UNBIASED_VAR, assume("η0/√T ≤ 1/L", "D")),
        quantity="avg_sq_grad",
        probability="expectation",
        bound=(2 * Delta / eta0 + L * eta0 * sigma**2) / sp.sqrt(T),
        schedule=SCHEDULES["inverse_sqrt_horizon"],
        explicit=True,
        notes="[D] sgd_constant with η = η0/√T: 2Δ/(η0√T) + Lη0σ²/√T. Slope −1/2 whenever σ > 0 "
              "(O(LΔ/T + σ√(LΔ/T)) at the tuned η0).",
    ),
    Theorem(
        key="sgdm_horizon",
        title="SGD with EMA/heavy-ball momentum, fixed horizon",
        algorithms=("sgd",),
        source="Liu, Gao & Yin, NeurIPS 2020 (background: docs/problems.md §2)",
        provenance="BG",
        assumptions=(SMOOTH, LOWER, UNBIASED_VAR, assume("constant β1; η ∝ 1/√T small enough", "BG")),
        quantity="avg_sq_grad",
        probability="expectation",
        bound=C * (L * Delta / T + sigma * sp.sqrt(L * Delta / T)),
        schedule=SCHEDULES["inverse_sqrt_horizon"],
        notes="Same order as SGD with a β1-dependent constant (shape only).",
    ),
    Theorem(
        key="adam_defossez",
        title="Adam with bounded gradients, η ∝ 1/√T",
        algorithms=("adam",),
        source="Défossez, Bottou, Bach & Usunier, TMLR 2022 (background: docs/problems.md §2)",
        provenance="BG",
        assumptions=(SMOOTH, LOWER, UNBIASED_VAR, BOUNDED_GRAD,
                     assume("η = η0/√T and β2 = 1 − 1/T (the theorem's choice); β1 < √β2", "BG")),
        quantity="avg_sq_grad",
        probability="expectation",
        bound=C * d * sp.log(T) / sp.sqrt(T),
        schedule=SCHEDULES["inverse_sqrt_horizon"],
        notes="Their Adam has no bias correction on m; torch-style correction factors tend to 1 and do not "
              "change the shape. Upper bound: slope at most −1/2.",
    ),
)


# ----------------------------------------------------------------------------- rate entries
@rate_entry("baselines", 10)
def gd_and_adam_on_p1(b: Builder) -> None:
    """GD at η = 1/L on P1 (σ = 0): the explicit bound and slope −1 [D]; Adam in P1's basin with η0/√T, β2 = 1 − 1/T."""
    g, fig = b.g, "baselines"
    gd = b.cell("sgd/gd-p1", "sgd", {}, b.p1(), NONE, {"kind": "one_over_L"}, seeds=2, figure=fig,
                label="GD, η = 1/L, σ = 0")
    b.check(key="sgd/gd-bound", algorithm="sgd", theorem="gd_descent", kind="bound", cells=(gd,),
            window=(g.anytime[0], g.anytime[-1]), figure=fig, claim="R_T <= 2LΔ/T at every T", mutants=("sgd_double_step",),
            resolution=None, no_schedule_power="an explicit constant at η = 1/L: a smaller step satisfies its own, larger "
            "bound; the schedule's exponent is the slope check's to resolve")
    b.band("sgd/gd-slope", "sgd", "gd_descent", gd, -1.0, g.window_anytime, figure=fig,
           claim="σ = 0: slope −1 (Σ‖∇f‖² converges)", mutants=("sgd_double_step",))
    adam = b.cell("adam/p1", "adam", {"betas": [0.9, 0.999]}, b.p1(start=BASIN), ISO1, sqrt_horizon(0.3, beta2_horizon=True),
                  figure=fig, label="Adam in P1's basin, η = 0.3/√T, β2 = 1 − 1/T")
    b.band("adam/slope", "adam", "adam_defossez", adam, -0.5, g.window_horizon, figure=fig,
           claim="slope −1/2 (the bound d·log T/√T, tight in the basin)", notes=TIGHT_NOISE,
           mutants=("adam_bias_correction_precedence",))


@rate_entry("sn_adam", 30)
def lion_by_analogy(b: Builder) -> None:
    b.p1_analogy("lion", {"betas": [0.9, 0.99]}, 0.05, "Lion, η = 0.05/√T")


@rate_entry("matrix_iso", 10)
def sgd_in_the_abc_basin(b: Builder) -> None:
    """SGD (explicit bound and slope [D]) and SGDm in the ABC problem's basin, η = 1/√T."""
    g = b.g
    S, window = g.seeds_matrix, g.window_matrix
    fig = "matrix_iso"
    basin = b.mq(start_norm=0.05)
    sgd = b.cell("sgd/mq-iso", "sgd", {}, basin, ISO1, sqrt_horizon(1.0), seeds=S, figure=fig,
                 label="SGD in the ABC basin, η = 1/√T")
    b.check(key="sgd/bound", algorithm="sgd", theorem="sgd_horizon", kind="bound", cells=(sgd,), window=window,
            figure=fig, claim="E R_T <= (2Δ/η0 + Lη0σ²)/√T", mutants=("sgd_stale_gradient_sum",), resolution=None,
            no_schedule_power="an explicit constant for η = η0/√T: another schedule has its own bound; the slope check "
            "carries the schedule power")
    b.band("sgd/slope", "sgd", "sgd_horizon", sgd, -0.5, window, figure=fig,
           claim="noise-dominated: slope −1/2", notes="[D] started in the basin, R_T ≈ Lη0σ²/(2√T)·(1 + O(η)): "
           "the noise term of the bound dominates and T^(-1/2) is tight (two-sided band)",
           mutants=("sgd_stale_gradient_sum",))
    sgdm = b.cell("sgdm/mq-iso", "sgd", {"momentum": 0.9, "momentum_type": "ema"}, basin, ISO1, sqrt_horizon(1.0), seeds=S,
                  figure=fig, label="SGDm (EMA 0.9) in the basin, η = 1/√T")
    b.band("sgdm/slope", "sgd", "sgdm_horizon", sgdm, -0.5, window, figure=fig,
           claim="momentum: the SGD rate, slope −1/2", notes=TIGHT_NOISE, mutants=("sgd_stale_gradient_sum",))


@rate_entry("matrix_rows", 60)
def adam_full_rank_rows_reference(b: Builder) -> None:
    cell = b.rows_cell("adam", {"betas": [0.9, 0.999]}, 0.5, "Adam (full rank), β2 = 1 − 1/T", beta2_horizon=True)
    b.measured("adam/rows-slope", "adam", "adam_defossez", cell, b.g.window_matrix, figure="matrix_rows",
               claim="full-rank reference of the rows experiment (measured)")


@rate_entry("code_paths", 10)
def adam_weight_decay(b: Builder) -> None:
    """Decoupled weight decay with the minimiser away from 0 (measured; guarded by ``--regression``)."""
    g, fig = b.g, "code_paths"
    offset = b.p1(start=BASIN, centre=3.0)
    decayed = b.cell("adam/p1-weight-decay", "adam", {"betas": [0.9, 0.999], "weight_decay": 0.1}, offset, ISO1,
                     sqrt_horizon(0.3), figure=fig, label="AdamW, weight decay 0.1, minimiser away from 0")
    b.measured("adam/weight-decay-slope", "adam", "adam_defossez", decayed, g.window_horizon, figure=fig,
               claim="decoupled weight decay: R_T of ∇f (measured; coupled L2 decay lands elsewhere)")


# ----------------------------------------------------------------------------- mutants
class SgdDoubleStep(algorithms.REGISTRY["sgd"]):
    def _update_param(self, p, grad, state, group) -> None:
        super()._update_param(p, grad, state, group)
        super()._update_param(p, grad, state, group)


class SgdStaleGradientSum(algorithms.REGISTRY["sgd"]):
    def _update_param(self, p, grad, state, group) -> None:
        total = state.get("grad_sum")
        total = grad.clone() if total is None else total.add_(grad)
        state["grad_sum"] = total
        super()._update_param(p, total.clone(), state, group)


class AdamBiasCorrectionPrecedence(algorithms.REGISTRY["adam"]):
    def _update_param(self, p, grad, state, group) -> None:
        state["step"] += 1
        t = int(state["step"])
        beta1, beta2 = group["betas"]
        state["exp_avg"].lerp_(grad, 1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        c1, c2 = (1 - beta1) ** t, (1 - beta2) ** t  # the bug: (1 - beta)**t instead of 1 - beta**t
        denom = (state["exp_avg_sq"].sqrt() / c2**0.5).add_(group["eps"])
        p.add_(state["exp_avg"] / denom / c1, alpha=-float(group["lr"]))


class AdamDecayAsL2(algorithms.REGISTRY["adam"]):
    """AdamW whose decoupled weight decay became L2: λx is added to the gradient and goes through the moments
    (no claim sees it; ``verify rates --regression`` does, on the ``adam/p1-weight-decay`` cell)."""

    def __init__(self, params, lr: float = 1e-3, *args, **kwargs) -> None:
        kwargs["decoupled_weight_decay"] = False
        super().__init__(params, lr, *args, **kwargs)


declare_mutants(
    Mutant("sgd_double_step", "sgd", SgdDoubleStep, "the update is applied twice per step"),
    Mutant("sgd_stale_gradient_sum", "sgd", SgdStaleGradientSum, "the gradient buffer is never zeroed (Σ g_s)"),
    Mutant("adam_bias_correction_precedence", "adam", AdamBiasCorrectionPrecedence,
           "(1 - beta)**t instead of 1 - beta**t in the bias corrections"),
    Mutant("adam_decay_as_l2", "adam", AdamDecayAsL2, "decoupled weight decay turned into L2 (through the moments)"),
)
declare_invisible("adam: bias correction frozen at t = 1", "a constant factor √(1−β2)/(1−β1) on the step: no slope changes")


# ----------------------------------------------------------------------------- identity checks (verify check)
@check("adam == torch.optim.AdamW (float64, 50 steps)", "oracle")
def _adam_vs_torch(quick: bool):
    rep = compare("adam", torch.optim.AdamW, reference_kwargs=dict(lr=1e-2, weight_decay=0.1),
                  candidate_kwargs=dict(lr=1e-2, weight_decay=0.1, foreach=False), dtype=torch.float64,
                  gradients="loss", rtol=1e-12, state_map={"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq"})
    return judged(rep.passed, f"max rel err {max(rep.param_err):.1e}")


@check("sgd == torch.optim.SGD heavy ball (float64, 50 steps)", "oracle")
def _sgd_vs_torch(quick: bool):
    rep = compare("sgd", torch.optim.SGD, reference_kwargs=dict(lr=1e-2, momentum=0.9),
                  candidate_kwargs=dict(lr=1e-2, momentum=0.9, foreach=False), dtype=torch.float64,
                  gradients="loss", rtol=1e-12)
    return judged(rep.passed, f"max rel err {max(rep.param_err):.1e}")
