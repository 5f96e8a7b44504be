r"""The rate experiments of theory.md as cells and checks, on a quick and a full grid.

Every algorithm of the registry gets at least one cell with a check. Settings that are ours (not
the papers'): problem sizes, noise levels, the step sizes η / η0 (chosen once on small pilot runs,
not tuned per horizon), horizon grids and seed counts; each is recorded in the cell's row.

Families (``figure`` names group the cells of one plot):

``baselines``        GD at η = 1/L on P1 (d = 16): explicit bound and slope [D]; Adam on P1 with
                     η0/√T and β2 = 1 − 1/T under Rademacher noise with ‖σ‖₂ = 1 [BG].
``noise_adaptation`` AdaGrad-Norm / -Coordinate / -Subset-Norm (k = 4) at σ = 0 and σ = 1 with a fixed η
                     (b0 = 1 inside the root, ε = 0), plus the σ = 0.1 crossover for AdaGrad-Norm
                     (E1); δ-dependence of the quantiles (E2); ℓ₁² and ℓ₂,₁² metrics for SN.
``dimension_sparsity`` E3: AdaGrad-Norm / -Coordinate / -Subset-Norm (k = √d) for d = 4^j and noise on
                     ⌈d^β⌉ coordinates: orderings and d-exponents, measured against the authors' figure.
``partition_alignment`` E4: the same noise placed in few contiguous subsets or spread one per subset.
``sn_adam``          AdamSN, RMSPropSN, Lion, MARS-Lion on P1 with η0/√T (no theorem: reported).
``matrix_iso``       the ABC matrix problem (8 × 16, W* = 0, κ = 2) with isotropic noise: SGD (explicit
                     bound [D]; on P1 an iterate thrown into the flat tails has a small gradient, so
                     divergence would look like convergence there), SGDm,
                     Subspace-Momentum (E5), LDAdam at ranks 2 and 4, AdaRankGrad, AdamSNSM,
                     MARS-Shampoo, Fira.
``matrix_rows``      the same problem with the noise (‖σ‖₂ = 3) on 2 rows: an SVD of the noisy gradient picks the
                     noise's rows (theory.md §6 (iii)): GaLore, Fira, AdaRankGrad, LDAdam, SM, Adam.
``mars``             MARS experiment B on RR (d = 10, N = 1024 samples, its own sampling noise, started at
                     x♮ + 0.2·1 so that the noise dominates from the start; theory.md's x♮ + 3 spends the
                     quick horizons in a non-monotone transient, measured):
                     MARS-AdamW exact with γ = 1 and the theory schedule vs AdamW with η0/√T, and γ = 0.

Every check names the planted bug (:mod:`verify.rates.mutants`) that it must FAIL (``Check.mutant``).

Tolerances (ours, stated in every check): a rate claimed tight on the cell (σ = 0 average: −1;
noise-dominated SGD / AdaGrad-Norm: −1/2) is a band of ±0.1 to ±0.12 around the exponent; an upper
bound (Õ) is one-sided, up to the bound's own slope over the window plus 0.05.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .spec import Cell, Check

__all__ = ["GRIDS", "Grid", "build", "cells_for", "algorithms_covered"]


@dataclass(frozen=True)
class Grid:
    name: str
    anytime: tuple[int, ...]  # horizons of anytime cells
    horizon: tuple[int, ...]  # horizons of fixed-horizon cells (one run each)
    matrix_horizon: tuple[int, ...]
    seeds_p1: int
    seeds_hp: int  # high-probability cells (quantiles down to δ = 0.01)
    seeds_matrix: int
    seeds_loop: int  # optimizers without batch support (one optimizer per seed)
    seeds_mars: int
    window_anytime: tuple[int, int]
    window_horizon: tuple[int, int]
    window_matrix: tuple[int, int]
    dims: tuple[int, ...]  # E3 dimensions (powers of 4, so k = √d is an integer)
    betas: tuple[float, ...]  # E3 noise sparsities
    e3_horizons: tuple[int, ...]
    seeds_e3: int


GRIDS = {
    "quick": Grid("quick", anytime=tuple(2**k for k in range(4, 14)), horizon=tuple(2**k for k in range(8, 13)),
                  matrix_horizon=tuple(2**k for k in range(8, 12)), seeds_p1=128, seeds_hp=256, seeds_matrix=32,
                  seeds_loop=8, seeds_mars=32, window_anytime=(2**9, 2**13), window_horizon=(2**8, 2**12),
                  window_matrix=(2**8, 2**11), dims=(16, 256), betas=(0.25, 1.0), e3_horizons=(2**9, 2**10, 2**11),
                  seeds_e3=32),
    "full": Grid("full", anytime=tuple(2**k for k in range(4, 17)), horizon=tuple(2**k for k in range(8, 16)),
                 matrix_horizon=tuple(2**k for k in range(8, 14)), seeds_p1=256, seeds_hp=1024, seeds_matrix=64,
                 seeds_loop=16, seeds_mars=64, window_anytime=(2**10, 2**16), window_horizon=(2**9, 2**15),
                 window_matrix=(2**9, 2**13), dims=(16, 64, 256, 1024), betas=(0.0, 0.25, 0.43, 0.6, 0.8, 1.0),
                 e3_horizons=(2**12, 2**13, 2**14), seeds_e3=256),
}

P1 = ("separable", {"d": 16, "L": 1.0, "delta": 1.0, "r": 2.0})
MQ = ("matrix_quadratic", {"m": 8, "n": 16, "eig_range": [1.0, 2.0], "seed": 0, "start_norm": 0.5})
RR = ("robust_regression", {"d": 10, "n_samples": 1024, "seed": 0, "start_offset": 0.2})
NONE = ("none", {})
ISO1 = ("isotropic", {"level": 1.0})
ROWS3 = ("rows", {"level": 3.0, "rows": 2})
BAND_NOISY = 0.12
BAND_NOISELESS = 0.1
ORDER_TOLERANCE = 0.05  # log-ratio: 5 %


def _const(eta: float) -> dict:
    return {"kind": "constant", "eta": eta}


def _sqrtT(eta0: float, **extra: Any) -> dict:
    return {"kind": "inverse_sqrt_horizon", "eta0": eta0, **extra}


class _Builder:
    def __init__(self, grid: Grid, master_seed: int) -> None:
        self.g = grid
        self.master_seed = master_seed
        self.cells: list[Cell] = []
        self.checks: list[Check] = []

    def cell(self, key, algorithm, hyper, problem, noise, schedule, *, seeds=None, metrics=("avg_sq_grad", "min_sq_grad"),
             horizons=None, l21_subset=None, figure="", label="") -> str:
        if horizons is None:
            if schedule["kind"] in ("constant", "one_over_L", "mars_theory"):
                horizons = self.g.anytime
            else:
                horizons = self.g.matrix_horizon if problem[0] == "matrix_quadratic" else self.g.horizon
        self.cells.append(Cell(key=key, algorithm=algorithm, hyper=hyper, problem=problem, noise=noise, schedule=schedule,
                               horizons=tuple(horizons), seeds=seeds or self.g.seeds_p1, metrics=tuple(metrics),
                               master_seed=self.master_seed, l21_subset=l21_subset, figure=figure, label=label or key))
        return key

    def check(self, **kwargs) -> None:
        self.checks.append(Check(**kwargs))

    # ------------------------------------------------------------------ shorthands
    def band(self, key, algorithm, theorem, cell, exponent, width, window, *, mutant, statistic="mean",
             metric="avg_sq_grad", figure="", claim="", provenance=None) -> None:
        self.check(key=key, algorithm=algorithm, theorem=theorem, kind="slope", cells=(cell,), metric=metric,
                   statistic=statistic, window=window, low=exponent - width, high=exponent + width, figure=figure,
                   claim=claim or f"slope ≈ {exponent:+.3g} (±{width})", provenance=provenance, mutant=mutant)

    def upper(self, key, algorithm, theorem, cell, window, *, mutant, statistic="mean", metric="avg_sq_grad", figure="",
              claim="", slack=0.05) -> None:
        self.check(key=key, algorithm=algorithm, theorem=theorem, kind="slope", cells=(cell,), metric=metric,
                   statistic=statistic, window=window, high_from_bound=True, slack=slack, figure=figure,
                   claim=claim or "slope at most the bound's (upper bound)", mutant=mutant)


def frozen(name: str) -> str:
    """The generic planted bug of ``name`` (parameters stop moving after step 1)."""
    return f"{name}_frozen_after_first_step"


# ----------------------------------------------------------------------------- the families
def _baselines(b: _Builder) -> None:
    g, fig = b.g, "baselines"
    gd = b.cell("sgd/gd-p1", "sgd", {}, P1, NONE, {"kind": "one_over_L"}, seeds=2, figure=fig, label="GD, η = 1/L, σ = 0")
    b.check(key="sgd/gd-bound", algorithm="sgd", theorem="gd_descent", kind="bound", cells=(gd,),
            window=(g.anytime[0], g.anytime[-1]), figure=fig, claim="R_T <= 2LΔ/T at every T", mutant="sgd_double_step")
    b.band("sgd/gd-slope", "sgd", "gd_descent", gd, -1.0, BAND_NOISELESS, g.window_anytime, figure=fig,
           claim="σ = 0: slope −1 (the sum of ‖∇f‖² converges)", mutant="sgd_double_step")
    adam = b.cell("adam/p1", "adam", {"betas": [0.9, 0.999]}, P1, ISO1, _sqrtT(0.3, beta2_horizon=True), figure=fig,
                  label="Adam, η = 0.3/√T, β2 = 1 − 1/T")
    b.upper("adam/slope", "adam", "adam_defossez", adam, g.window_horizon, figure=fig,
            claim="slope at most that of d·log T/√T", mutant="adam_bias_correction_precedence")


def _noise_adaptation(b: _Builder) -> None:
    g, fig = b.g, "noise_adaptation"
    methods = [("adagrad_norm", {"b0": 1.0, "eps": 0.0}, 1.0, "AdaGrad-Norm"),
               ("adagrad_coordinate", {"b0": 1.0, "eps": 0.0}, 0.25, "AdaGrad-Coordinate"),
               ("adagrad_subset_norm", {"b0": 1.0, "eps": 0.0, "subset_size": 4}, 0.5, "AdaGrad-Subset-Norm (k=4)")]
    for name, hyper, eta, label in methods:
        short = name.replace("adagrad_", "")
        metrics = ("avg_sq_grad", "min_sq_grad", "avg_l1_sq", "avg_l21_sq") if short == "subset_norm" else (
            "avg_sq_grad", "min_sq_grad")
        quiet = b.cell(f"{name}/p1-noiseless", name, hyper, P1, NONE, _const(eta), seeds=2, metrics=metrics,
                       l21_subset=4 if short == "subset_norm" else None, figure=fig, label=f"{label}, σ = 0")
        noisy = b.cell(f"{name}/p1", name, hyper, P1, ISO1, _const(eta), seeds=g.seeds_hp, metrics=metrics,
                       l21_subset=4 if short == "subset_norm" else None, figure=fig, label=f"{label}, σ = 1")
        if name == "adagrad_norm":
            b.band(f"{name}/noiseless-slope", name, "adagrad_norm_expectation", quiet, -1.0, BAND_NOISELESS,
                   g.window_anytime, figure=fig, claim="σ = 0: slope −1 with η fixed", mutant=frozen(name))
            b.band(f"{name}/noisy-slope", name, "adagrad_norm_expectation", noisy, -0.5, BAND_NOISY, g.window_anytime,
                   figure=fig, claim="σ = 1: slope −1/2 with the same η", mutant="adagrad_norm_not_accumulated")
            b.band(f"{name}/noisy-slope-q0.9", name, "adagrad_norm_high_probability", noisy, -0.5, BAND_NOISY,
                   g.window_anytime, statistic="q0.9", figure=fig, claim="the 0.9-quantile decays at slope −1/2",
                   mutant="adagrad_norm_not_accumulated")
            b.check(key=f"{name}/delta", algorithm=name, theorem="adagrad_norm_high_probability", kind="delta",
                    cells=(noisy,), window=g.window_anytime, levels=("q0.5", "q0.9", "q0.99"), low=0.0, high=0.5,
                    max_width=0.5, figure=fig, claim="E2: quantiles grow polylogarithmically in 1/δ (exponent well below 1)",
                    mutant="adagrad_norm_heavy_tailed_noise", assess=False,
                    notes="measured only: even Student-t (df 3) noise leaves the exponent near 0.02 (AdaGrad's "
                          "normalisation concentrates R_T across seeds), so no planted bug was found that this "
                          "statistic catches on this cell")
            cross = b.cell(f"{name}/p1-crossover", name, hyper, P1, ("isotropic", {"level": 0.1}), _const(eta),
                           seeds=g.seeds_p1, figure=fig, label=f"{label}, σ = 0.1 (crossover)")
            b.band(f"{name}/crossover-early", name, "adagrad_norm_expectation", cross, -1.0, 0.2,
                   (g.anytime[0], 2**7), figure=fig, claim="σ = 0.1, small T: the noiseless slope −1 (±0.2)",
                   mutant=frozen(name))
            b.band(f"{name}/crossover-late", name, "adagrad_norm_expectation", cross, -0.5, 0.15,
                   (g.window_anytime[1] // 4, g.window_anytime[1]), figure=fig,
                   claim="σ = 0.1, large T: the noisy slope −1/2 (±0.15)", mutant="adagrad_norm_no_sqrt")
        elif name == "adagrad_coordinate":
            b.upper(f"{name}/noisy-slope", name, "adagrad_coordinate_defossez", noisy, g.window_anytime, figure=fig,
                    mutant="adagrad_coordinate_not_accumulated")
            b.band(f"{name}/noiseless-slope", name, "coordinate_high_probability", quiet, -1.0, BAND_NOISELESS,
                   g.window_anytime, figure=fig, claim="σ = 0: slope −1 (the SN paper's noise adaptation)",
                   mutant=frozen(name))
            b.band(f"{name}/noisy-slope-q0.99", name, "coordinate_high_probability", noisy, -0.5, BAND_NOISY,
                   g.window_anytime, statistic="q0.99", figure=fig, claim="σ = 1: 0.99-quantile slope −1/2",
                   mutant="adagrad_coordinate_no_sqrt")
        else:
            b.band(f"{name}/noiseless-slope", name, "subset_norm_high_probability", quiet, -1.0, BAND_NOISELESS,
                   g.window_anytime, figure=fig, claim="σ = 0: slope −1 (noise adaptation)", mutant=frozen(name))
            for metric in ("avg_sq_grad", "avg_l1_sq", "avg_l21_sq"):
                for stat in ("q0.9", "q0.99"):
                    b.band(f"{name}/noisy-slope-{metric}-{stat}", name, "subset_norm_high_probability", noisy, -0.5,
                           BAND_NOISY, g.window_anytime, statistic=stat, metric=metric, figure=fig,
                           claim=f"σ = 1: {stat} of {metric} at slope −1/2", mutant="adagrad_subset_norm_no_sqrt")
            b.check(key=f"{name}/delta", algorithm=name, theorem="subset_norm_high_probability", kind="delta",
                    cells=(noisy,), window=g.window_anytime, levels=("q0.5", "q0.9", "q0.99"), low=0.0, high=0.5,
                    max_width=0.5, figure=fig, claim="E2: quantiles grow polylogarithmically in 1/δ",
                    mutant="adagrad_subset_norm_heavy_tailed_noise", assess=False,
                    notes="measured only (see adagrad_norm/delta)")


#: exponent of d in the 1/√T term of the authors' rate figure [F] (theory.md §4, "Dimensional dependence")
E3_PREDICTED = {"adagrad_coordinate": lambda beta: 1.5 + beta, "adagrad_subset_norm": lambda beta: 0.3 + 1.8 * beta,
                "adagrad_norm": lambda beta: 2.5 * beta}


def _dimension(b: _Builder) -> None:
    """E3: d = 4^j, σ_i = 1 on ⌈d^β⌉ random coordinates, P1 normalised (L = Δ = 1), one η for every method.

    Measured, not judged: the orderings and exponents of the authors' figure are asymptotic in d,
    their normalisation is unverified, and on these dimensions no planted bug separates them (see the
    report); each measurement is shown next to the figure's prediction.
    """
    g, fig, eta = b.g, "dimension_sparsity", 0.5
    methods = ("adagrad_norm", "adagrad_coordinate", "adagrad_subset_norm")
    for beta in g.betas:
        keys = {m: [] for m in methods}
        for d in g.dims:
            k = int(round(d**0.5))
            noise = ("sparse", {"level": 1.0, "beta": beta, "placement": "random", "seed": 0})
            for name in methods:
                extra = {"subset_size": k} if name == "adagrad_subset_norm" else {}
                keys[name].append(b.cell(f"{name}/e3-d{d}-beta{beta:g}", name, {"b0": 1.0, "eps": 0.0, **extra},
                                         ("separable", {"d": d}), noise, _const(eta), seeds=g.seeds_e3,
                                         horizons=g.e3_horizons, metrics=("avg_sq_grad",), figure=fig,
                                         label=f"{name.replace('adagrad_', '')} d={d} β={beta:g}"))
            sn, coord, norm = keys["adagrad_subset_norm"][-1], keys["adagrad_coordinate"][-1], keys["adagrad_norm"][-1]
            b.check(key=f"adagrad_subset_norm/e3-vs-coordinate-d{d}-beta{beta:g}", algorithm="adagrad_subset_norm",
                    theorem="sn_dimension_table", kind="order", cells=(sn, coord), statistic="q0.9", high=ORDER_TOLERANCE,
                    max_width=1.0, figure=fig, assess=False, mutant="adagrad_subset_norm_not_accumulated",
                    claim=f"E3 d={d}, β={beta:g}: SN <= Coordinate (the figure: for every β)")
            prediction = "SN < Norm" if beta > 3 / 7 else "Norm <= SN"
            b.check(key=f"adagrad_subset_norm/e3-vs-norm-d{d}-beta{beta:g}", algorithm="adagrad_subset_norm",
                    theorem="sn_dimension_table", kind="order", cells=(sn, norm), statistic="q0.9", high=ORDER_TOLERANCE,
                    max_width=1.0, figure=fig, assess=False, mutant="adagrad_subset_norm_not_accumulated",
                    claim=f"E3 d={d}, β={beta:g}: log(SN/Norm) (the figure predicts {prediction}: β vs 3/7)")
        for name in methods:
            predicted = E3_PREDICTED[name](beta)
            b.check(key=f"{name}/e3-d-exponent-beta{beta:g}", algorithm=name, theorem="sn_dimension_table", kind="dim",
                    cells=tuple(keys[name]), statistic="q0.9", low=predicted - 0.5, high=predicted + 0.5, max_width=2.0,
                    figure=fig, assess=False, mutant=f"{name}_not_accumulated",
                    claim=f"E3 β={beta:g}: d-exponent of the 0.9-quantile at fixed T (figure: {predicted:.2f} "
                          "for the 1/√T term)")


def _partition_alignment(b: _Builder) -> None:
    """E4: the same noise (σ_i = 1 on ⌈d^{1/2}⌉ coordinates) filling few contiguous subsets, or one per subset."""
    g, fig = b.g, "partition_alignment"
    d = 64 if g.name == "quick" else 256
    k = int(round(d**0.5))
    keys = {}
    for placement in ("first", "spread"):
        noise = ("sparse", {"level": 1.0, "beta": 0.5, "placement": placement, "seed": 0})
        keys[placement] = b.cell(f"adagrad_subset_norm/e4-{placement}", "adagrad_subset_norm",
                                 {"b0": 1.0, "eps": 0.0, "subset_size": k}, ("separable", {"d": d}), noise, _const(0.5),
                                 seeds=g.seeds_hp, horizons=g.e3_horizons, metrics=("avg_sq_grad",), l21_subset=k,
                                 figure=fig, label=f"SN k={k}, d={d}, noise in {'few subsets' if placement == 'first' else 'every subset'}")
    b.check(key="adagrad_subset_norm/e4-alignment", algorithm="adagrad_subset_norm",
            theorem="subset_norm_high_probability", kind="order", cells=(keys["first"], keys["spread"]), statistic="mean",
            high=0.0, max_width=0.5, figure=fig, mutant="adagrad_subset_norm_strided_subsets",
            claim="E4: the mixed norm Σ_j‖σ_Ψj‖ predicts SN does better when the noise fills few subsets "
                  "(log ratio < 0)")


def _sn_adam(b: _Builder) -> None:
    g, fig = b.g, "sn_adam"
    entries = [("adam_sn", {"betas": [0.9, 0.999], "subset_size": 4}, 0.6, "AdamSN (k=4), η = 0.6/√T"),
               ("rmsprop_sn", {"beta2": 0.999, "subset_size": 4}, 0.6, "RMSPropSN (k=4), η = 0.6/√T"),
               ("lion", {"betas": [0.9, 0.99]}, 0.05, "Lion, η = 0.05/√T"),
               ("mars_lion", {}, 0.05, "MARS-Lion (approx, γ = 0.025), η = 0.05/√T")]
    for name, hyper, eta0, label in entries:
        cell = b.cell(f"{name}/p1", name, hyper, P1, ISO1, _sqrtT(eta0), figure=fig, label=label)
        b.upper(f"{name}/slope", name, "no_theorem_sqrt_analogy", cell, g.window_horizon, figure=fig,
                claim="slope at most −1/2 (+0.05), by analogy only", mutant=frozen(name))


def _matrix(b: _Builder) -> None:
    g = b.g
    S, window = g.seeds_matrix, g.window_matrix
    adam_like = 0.5
    fig = "matrix_iso"
    sgd = b.cell("sgd/mq-iso", "sgd", {}, MQ, ISO1, _sqrtT(2.0), seeds=S, figure=fig, label="SGD, η = 2/√T")
    b.check(key="sgd/bound", algorithm="sgd", theorem="sgd_horizon", kind="bound", cells=(sgd,), window=window,
            figure=fig, claim="E R_T <= (2Δ/η0 + Lη0σ²)/√T", mutant="sgd_stale_gradient_sum")
    b.band("sgd/slope", "sgd", "sgd_horizon", sgd, -0.5, BAND_NOISY, window, figure=fig,
           claim="noise-dominated: slope −1/2 (two-sided: on this strongly convex quadratic the step's noise floor, "
                 "of order Lησ², makes T^(-1/2) tight [D])", mutant="sgd_stale_gradient_sum")
    sgdm = b.cell("sgdm/mq-iso", "sgd", {"momentum": 0.9, "momentum_type": "ema"}, MQ, ISO1, _sqrtT(2.0), seeds=S,
                  figure=fig, label="SGDm (EMA 0.9), η = 2/√T")
    b.band("sgdm/slope", "sgd", "sgdm_horizon", sgdm, -0.5, BAND_NOISY, window, figure=fig,
           claim="momentum: the SGD rate, slope −1/2", mutant="sgd_stale_gradient_sum")
    sm = b.cell("subspace_momentum/mq-iso", "subspace_momentum", {"rank": 2, "momentum": 0.9, "update_proj_gap": 200},
                MQ, ISO1, _sqrtT(2.0), seeds=S, figure=fig, label="Subspace-Momentum r = 2, η = 2/√T")
    b.upper("subspace_momentum/slope", "subspace_momentum", "subspace_momentum_high_probability", sm, window, figure=fig,
            claim="slope at most −1/2 (+0.05)", mutant=frozen("subspace_momentum"))
    b.check(key="subspace_momentum/vs-sgd", algorithm="subspace_momentum", theorem="subspace_momentum_high_probability",
            kind="order", cells=(sm, sgd), window=window, high=ORDER_TOLERANCE, max_width=1.0, figure=fig,
            claim="E5: SM no worse than SGD (r = 0) at equal η (within 5 %)", mutant="subspace_momentum_no_complement")
    for rank in (2, 4):
        cell = b.cell(f"ldadam/mq-iso-r{rank}", "ldadam", {"rank": rank}, MQ, ISO1, _sqrtT(adam_like), seeds=S,
                      figure=fig, label=f"LDAdam r = {rank}, η = 0.5/√T")
        b.upper(f"ldadam/slope-r{rank}", "ldadam", "ldadam_theorem1", cell, window, figure=fig,
                claim=f"r = {rank}: slope at most −1/2 (+0.05); the rank moves the intercept only",
                mutant="ldadam_no_error_feedback" if rank == 2 else "ldadam_frozen_subspace")
    arg = b.cell("adarankgrad/mq-iso", "adarankgrad", {"max_rank": 2}, MQ, ISO1, _sqrtT(0.25), seeds=g.seeds_loop,
                 figure=fig, label="AdaRankGrad r ≤ 2, η = 0.25/√T")
    b.upper("adarankgrad/slope", "adarankgrad", "adarankgrad_sumo_template", arg, window, figure=fig,
            claim="slope at most −1/2 (+0.05); the template covers SGD inner steps only", mutant="adarankgrad_no_refresh")
    for name, hyper, label in [("adam_sn_sm", {"rank": 2, "update_proj_gap": 200, "subset_size": "heuristics"}, "AdamSNSM r = 2"),
                               ("mars_shampoo", {}, "MARS-Shampoo (approx, γ = 0.025)"),
                               ("fira_adamw", {"rank": 2, "scale": 1.0, "update_proj_gap": 200}, "Fira r = 2")]:
        eta0 = 0.05 if name == "mars_shampoo" else (1.0 if name == "adam_sn_sm" else adam_like)
        cell = b.cell(f"{name}/mq-iso", name, hyper, MQ, ISO1, _sqrtT(eta0), seeds=S, figure=fig, label=f"{label}, η = {eta0}/√T")
        b.upper(f"{name}/slope", name, "no_theorem_sqrt_analogy", cell, window, figure=fig,
                claim="slope at most −1/2 (+0.05), by analogy only", mutant=frozen(name))
    fig = "matrix_rows"
    for name, hyper, eta0, label in [("galore_adamw", {"rank": 2, "scale": 1.0, "update_proj_gap": 200}, adam_like, "GaLore r = 2"),
                                     ("fira_adamw", {"rank": 2, "scale": 1.0, "update_proj_gap": 200}, adam_like, "Fira r = 2"),
                                     ("adarankgrad", {"max_rank": 2}, 0.25, "AdaRankGrad r ≤ 2"),
                                     ("ldadam", {"rank": 2}, adam_like, "LDAdam r = 2"),
                                     ("subspace_momentum", {"rank": 2, "momentum": 0.9, "update_proj_gap": 200}, 2.0,
                                      "Subspace-Momentum r = 2"),
                                     ("adam", {"betas": [0.9, 0.999]}, adam_like, "Adam (full rank), β2 = 1 − 1/T")]:
        seeds = g.seeds_loop if name == "adarankgrad" else S
        schedule = _sqrtT(eta0, beta2_horizon=True) if name == "adam" else _sqrtT(eta0)
        cell = b.cell(f"{name}/mq-rows", name, hyper, MQ, ROWS3, schedule, seeds=seeds, figure=fig,
                      label=f"{label}, noise on 2 rows")
        if name in ("galore_adamw", "adarankgrad"):
            b.check(key=f"{name}/rows-floor", algorithm=name, theorem="golore_floor", kind="slope", cells=(cell,),
                    metric="min_sq_grad", window=window, low=-0.25, figure=fig,
                    claim="SVD of noisy gradients: min_t ‖∇f‖² stalls (slope >= −1/4)",
                    mutant="galore_full_rank" if name == "galore_adamw" else "adarankgrad_full_rank")
        elif name == "fira_adamw":
            b.upper("fira_adamw/rows-slope", name, "no_theorem_sqrt_analogy", cell, window, figure=fig,
                    claim="noise on 2 rows: the residual reaches the complement (slope <= −1/2 + 0.05); theory.md §7 "
                          "expected the GoLore floor instead", mutant="fira_no_residual")
        elif name == "ldadam":
            b.upper("ldadam/rows-slope", name, "ldadam_theorem1", cell, window, figure=fig,
                    claim="noise on 2 rows: error feedback still reaches the complement (slope <= −1/2 + 0.05)",
                    mutant="ldadam_frozen_subspace")
        elif name == "subspace_momentum":
            b.upper("subspace_momentum/rows-slope", name, "subspace_momentum_high_probability", cell, window, figure=fig,
                    claim="noise on 2 rows: the SGD complement converges (slope <= −1/2 + 0.05)",
                    mutant="subspace_momentum_no_complement")
        else:
            b.upper("adam/rows-slope", name, "adam_defossez", cell, window, figure=fig,
                    claim="full-rank reference: slope at most that of d·log T/√T", mutant="adam_bias_correction_precedence")


def _mars(b: _Builder) -> None:
    g, fig = b.g, "mars"
    S = g.seeds_mars
    common = {"estimator": "exact", "clip": "none", "bias_correction": False, "eps": 1e-2, "optimize_1d": True,
              "weight_decay": 0.0}
    schedule = {"kind": "mars_theory", "eta0": 1.0, "s": 8.0, "c": 1.0, "beta2": 0.99}
    horizons = g.horizon
    exact1 = b.cell("mars_adamw/rr-exact-g1", "mars_adamw", {**common, "gamma": 1.0, "preconditioner": "identity"}, RR,
                    NONE, schedule, seeds=S, horizons=horizons, figure=fig,
                    label="MARS exact, γ = 1, η_t = (8+t)^(-1/3), 1−β1,t = η_t² (Alg. 1, H = I)")
    exact0 = b.cell("mars_adamw/rr-exact-g0", "mars_adamw", {**common, "gamma": 0.0, "preconditioner": "identity"}, RR,
                    NONE, schedule, seeds=S, horizons=horizons, figure=fig, label="the same with γ = 0 (no correction)")
    adamw = b.cell("adam/rr", "adam", {"betas": [0.9, 0.999]}, RR, NONE, _sqrtT(0.3, beta2_horizon=True), seeds=S,
                   horizons=horizons, figure=fig, label="AdamW, β1 = 0.9, β2 = 1 − 1/T, η = 0.3/√T")
    b.check(key="mars_adamw/gap-vs-adamw", algorithm="mars_adamw", theorem="mars_theorem_b5", kind="gap",
            cells=(exact1, adamw), window=g.window_horizon, high=-0.1, require_disjoint=True, max_width=0.4, figure=fig,
            claim="slope(MARS exact, γ = 1) − slope(AdamW) <= −0.1, slope intervals disjoint (theory.md §9 B)",
            mutant=frozen("mars_adamw"))
    b.upper("mars_adamw/slope", "mars_adamw", "mars_theorem_b5", exact1, g.window_horizon, figure=fig,
            claim="slope at most that of log(s+T)·T^(-2/3) (+0.05)", mutant=frozen("mars_adamw"))
    b.check(key="mars_adamw/gamma-gap", algorithm="mars_adamw", theorem="mars_theorem_b5", kind="gap",
            cells=(exact1, exact0), window=g.window_horizon, high=-0.05, max_width=0.4, figure=fig, provenance="D",
            claim="γ = 1 beats γ = 0 (the lag bias of a fixed γ < 1, theory.md §9 D.11) by >= 0.05 in slope",
            mutant="mars_exact_aliased")
    b.upper("adam/rr-slope", "adam", "adam_defossez", adamw, g.window_horizon, figure=fig,
            claim="AdamW: slope at most that of d·log T/√T (the MARS comparison)", mutant="adam_bias_correction_precedence")


def build(grid: str = "quick", master_seed: int = 0) -> tuple[list[Cell], list[Check]]:
    """Every cell and check of ``grid`` (``"quick"`` or ``"full"``) for one master seed."""
    try:
        g = GRIDS[grid]
    except KeyError:
        raise ValueError(f"grid must be one of {sorted(GRIDS)}, got {grid!r}") from None
    b = _Builder(g, master_seed)
    _baselines(b)
    _noise_adaptation(b)
    _dimension(b)
    _partition_alignment(b)
    _sn_adam(b)
    _matrix(b)
    _mars(b)
    keys = [c.key for c in b.cells]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate cell keys in the grid")
    known = set(keys)
    for check in b.checks:
        missing = [k for k in check.cells if k not in known]
        if missing:
            raise ValueError(f"check {check.key} names unknown cells {missing}")
    return b.cells, b.checks


def cells_for(cells: list[Cell], checks: list[Check], algorithms: list[str] | None) -> tuple[list[Cell], list[Check]]:
    """The checks attributed to ``algorithms`` (all when None) and every cell they need."""
    if not algorithms:
        return cells, checks
    wanted = [c for c in checks if c.algorithm in algorithms]
    needed = {k for c in wanted for k in c.cells}
    return [c for c in cells if c.key in needed], wanted


def algorithms_covered(checks: list[Check]) -> set[str]:
    return {c.algorithm for c in checks}
