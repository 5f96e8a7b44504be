r"""The rate experiments as cells and checks, on a quick and a full grid.

Every algorithm of the registry gets at least one cell with a check. Settings that are ours (not
the papers'): problem sizes, noise levels, the step sizes η / η0 (chosen once on small pilot runs,
not tuned per horizon, except E3), horizon grids and seed counts; each is recorded in the cell's row.

**Design rule for asserted checks** (``docs/rates.md``). A slope band is only as good as the
alternatives it rejects (:mod:`verify.rates.power`). A slope follows the step-size schedule only
where one term of the bound dominates; where the optimisation term (∝ 1/(ηT)) and the noise term
(∝ η) are balanced, any exponent p of η ∝ T^(−p) gives a slope near −1/2 and the check cannot tell
rates apart. The asserted noisy cells therefore start in the minimiser's basin (P1 within 0.1
widths, the ABC problem at Frobenius distance 0.05), where the noise term dominates and the
measured slope moves one-for-one with the schedule's exponent, and their bands are two-sided
(half-width 0.08 < the resolution 0.1). Noiseless claims (slope −1) are the summability of
Σ‖∇f‖²; they reject other schedules (slope p − 1) but only bugs that stop convergence.

Families (``figure`` names group the cells of one plot):

``baselines``          GD at η = 1/L on P1 (σ = 0): explicit bound and slope [D]; Adam in P1's basin with
                       η0/√T and β2 = 1 − 1/T under Rademacher noise ‖σ‖₂ = 1 [BG shape, tight here [D]].
``noise_adaptation``   AdaGrad-Norm / -Coordinate / -Subset-Norm (k = 4) at σ = 0 (η = 4 > 2/L: the
                       step must adapt) and σ = 1 (η fixed), the σ = 0.1 crossover (reported), E2's
                       δ-dependence on the last iterate (Rademacher vs Student-t at equal variance).
``dimension_sparsity`` E3: d = 4^j, noise on ⌈d^β⌉ coordinates, η tuned per method and d on a log grid.
``partition_alignment`` E4: the same noise filling few contiguous subsets or spread one per subset.
``sn_adam``            AdamSN, RMSPropSN, Lion, MARS-Lion on P1 with η0/√T (no theorem: reported).
``matrix_iso``         the ABC problem: SGD (explicit bound and slope [D]) and SGDm in the basin;
                       Subspace-Momentum, LDAdam (r = 2, 4), AdaRankGrad, AdamSNSM, MARS-Shampoo, Fira.
``matrix_rows``        the noise on 2 rows: an SVD of the noisy gradient picks the noise's rows.
``momentum_matters``   E5: SGD, Subspace-Momentum and SGD-momentum on an ill-conditioned ABC problem.
``mars``               Theorem B.5 on P1's basin: Algorithm 1 (H = I, exact) at the theorem's own
                       constants (s ≥ 8L³/ρ³, c ≥ 32L²/ρ² + 1, η_1 ≤ ρ/(2L), checked at run time), γ = 1
                       against γ = 0 on paired seeds; the official MARS-AdamW (reported).
``code_paths``         settings no theorem covers but a bug can break (weight decay, α ≠ 1, adaptive
                       rank, clipping that fires, subset rules on matrices): measured, and guarded by
                       ``verify rates --regression``.

Every asserted check names the planted bugs (:mod:`verify.rates.mutants`) it must FAIL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .spec import Alternative, Cell, Check

__all__ = ["GRIDS", "Grid", "build", "cells_for", "algorithms_covered", "mars_b5_constants"]


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
    e3_etas: tuple[float, ...]  # E3's step-size grid (tuned per method and d)
    mars_horizons: tuple[int, ...]
    window_mars: tuple[int, int]
    delta_horizons: tuple[int, ...]
    seeds_delta: int


GRIDS = {
    "quick": Grid("quick", anytime=tuple(2**k for k in range(4, 14)), horizon=tuple(2**k for k in range(8, 13)),
                  matrix_horizon=tuple(2**k for k in range(8, 12)), seeds_p1=128, seeds_hp=256, seeds_matrix=32,
                  seeds_loop=8, seeds_mars=16, window_anytime=(2**9, 2**13), window_horizon=(2**8, 2**12),
                  window_matrix=(2**8, 2**11), dims=(16, 256), betas=(0.25, 1.0), e3_horizons=(2**9, 2**10, 2**11),
                  seeds_e3=32, e3_etas=(0.125, 0.5, 2.0), mars_horizons=tuple(2**k for k in range(6, 17)),
                  window_mars=(2**12, 2**16), delta_horizons=(2**4, 2**5, 2**6), seeds_delta=1024),
    "full": Grid("full", anytime=tuple(2**k for k in range(4, 17)), horizon=tuple(2**k for k in range(8, 16)),
                 matrix_horizon=tuple(2**k for k in range(8, 14)), seeds_p1=256, seeds_hp=1024, seeds_matrix=64,
                 seeds_loop=16, seeds_mars=16, window_anytime=(2**10, 2**16), window_horizon=(2**9, 2**15),
                 window_matrix=(2**9, 2**13), dims=(16, 64, 256, 1024), betas=(0.0, 0.25, 0.43, 0.6, 0.8, 1.0),
                 e3_horizons=(2**12, 2**13, 2**14), seeds_e3=128, e3_etas=(0.125, 0.5, 2.0, 8.0),
                 mars_horizons=tuple(2**k for k in range(6, 20)), window_mars=(2**16, 2**19),
                 delta_horizons=(2**4, 2**5, 2**6), seeds_delta=4096),
}

NONE = ("none", {})
ISO1 = ("isotropic", {"level": 1.0})
ROWS3 = ("rows", {"level": 3.0, "rows": 2})
BAND = 0.08  # half-width of a two-sided slope band (< the default resolution 0.1 of the schedule exponent)
ORDER_TOLERANCE = 0.05  # log-ratio: 5 %
#: P1 starts this many widths from its minimiser in the noise-dominated cells (the basin, where f is L·‖x−c‖²/2 + O(‖x−c‖⁴))
BASIN = 0.1
TIGHT_NOISE = ("[D] in the basin the iterates sit in the noise floor, whose size is proportional to the step, "
               "so R_T ∝ η0/√T: the bound's T^(-1/2) is tight here (two-sided band)")


def _const(eta: float) -> dict:
    return {"kind": "constant", "eta": eta}


def _sqrtT(eta0: float, **extra: Any) -> dict:
    return {"kind": "inverse_sqrt_horizon", "eta0": eta0, **extra}


def mars_b5_constants(L: float, rho: float = 1.0) -> dict[str, float]:
    r"""Theorem B.5's smallest admissible constants for per-sample smoothness L and H ⪰ ρI:
    s = ⌈8L³/ρ³⌉, c = ⌈32L²/ρ² + 1⌉ and η0 with :math:`\eta_1 = \eta_0 (s+1)^{-1/3} = \rho/(2L)`."""
    s = float(math.ceil(8 * L**3 / rho**3))
    c = float(math.ceil(32 * L**2 / rho**2 + 1))
    eta0 = rho / (2 * L) * (s + 1.0) ** (1.0 / 3.0)
    return {"s": s, "c": c, "eta0": eta0}


def mars_tight_from(L: float, curvature: float, constants: dict[str, float], rho: float = 1.0) -> int:
    r"""[D] The first step from which Algorithm 1's estimator error is slower than the iterates' relaxation.

    With :math:`1-\beta_t = c\eta_t^2`, the error :math:`e_t = m_t - \nabla F(x_t)` is an average over
    :math:`1/(c\eta_t^2)` steps; the iterates relax in :math:`1/(\eta_t\lambda/\rho)` steps (λ the
    curvature at the minimiser). While :math:`c\eta_t > \lambda/\rho` the error decorrelates faster than
    the iterates move, the iterates average it themselves, and the floor of ‖∇F‖² is that of SGD,
    ∝ η_t ∝ t^(−1/3); once :math:`c\eta_t \le \lambda/\rho` the iterates follow the error and the floor is
    its variance ∝ 1 − β_t ∝ t^(−2/3), the theorem's rate. Under B.5's constants this happens only after
    about 4096·(s+1) steps (c·η_1 ≈ 16L/ρ).
    """
    eta0, s, c = constants["eta0"], constants["s"], constants["c"]
    # c·η0·(s+t)^(-1/3) <= curvature/ρ  <=>  s + t >= (c·η0·ρ/curvature)^3
    return int(math.ceil((c * eta0 * rho / curvature) ** 3 - s))


def frozen(name: str) -> str:
    """The generic planted bug of ``name`` (parameters stop moving after step 1)."""
    return f"{name}_frozen_after_first_step"


class _Builder:
    def __init__(self, grid: Grid, master_seed: int) -> None:
        self.g = grid
        self.master_seed = master_seed
        self.cells: list[Cell] = []
        self.checks: list[Check] = []

    # problems: the instance (P1's start radii, the ABC matrices, RR's samples) varies with the master seed
    def p1(self, d: int = 16, *, start: float | None = None, **extra) -> tuple[str, dict]:
        params = {"d": d, "L": 1.0, "delta": 1.0, "r": 2.0, **extra}
        if start is not None:
            params["start"] = start
        if self.master_seed:
            params["instance"] = self.master_seed
        return ("separable", params)

    def mq(self, *, start_norm: float = 0.5, eig_range=(1.0, 2.0)) -> tuple[str, dict]:
        return ("matrix_quadratic", {"m": 8, "n": 16, "eig_range": list(eig_range), "seed": self.master_seed,
                                     "start_norm": start_norm})

    def sparse(self, beta: float, placement: str = "random") -> tuple[str, dict]:
        return ("sparse", {"level": 1.0, "beta": beta, "placement": placement, "seed": self.master_seed})

    def cell(self, key, algorithm, hyper, problem, noise, schedule, *, seeds=None, metrics=("avg_sq_grad", "min_sq_grad"),
             horizons=None, l21_subset=None, figure="", label="") -> str:
        if horizons is None:
            if schedule["kind"] in ("constant", "one_over_L", "mars_theory", "anytime_power"):
                horizons = self.g.anytime
            else:
                horizons = self.g.matrix_horizon if problem[0] == "matrix_quadratic" else self.g.horizon
        self.cells.append(Cell(key=key, algorithm=algorithm, hyper=hyper, problem=problem, noise=noise, schedule=schedule,
                               horizons=tuple(horizons), seeds=seeds or self.g.seeds_p1, metrics=tuple(metrics),
                               master_seed=self.master_seed, l21_subset=l21_subset, figure=figure, label=label or key))
        return key

    def check(self, **kwargs) -> None:
        if "mutants" in kwargs and isinstance(kwargs["mutants"], str):
            kwargs["mutants"] = (kwargs["mutants"],)
        self.checks.append(Check(**kwargs))

    def band(self, key, algorithm, theorem, cell, exponent, window, *, mutants, width=BAND, statistic="mean",
             metric="avg_sq_grad", figure="", claim="", provenance=None, notes="", assess=True, **extra) -> None:
        self.check(key=key, algorithm=algorithm, theorem=theorem, kind="slope", cells=(cell,), metric=metric,
                   statistic=statistic, window=window, low=exponent - width, high=exponent + width, figure=figure,
                   claim=claim or f"slope ≈ {exponent:+.3g} (±{width})", provenance=provenance, mutants=mutants,
                   notes=notes, assess=assess, **extra)

    def upper(self, key, algorithm, theorem, cell, window, *, mutants, one_sided, statistic="mean", metric="avg_sq_grad",
              figure="", claim="", slack=0.05, assess=True) -> None:
        self.check(key=key, algorithm=algorithm, theorem=theorem, kind="slope", cells=(cell,), metric=metric,
                   statistic=statistic, window=window, high_from_bound=True, slack=slack, figure=figure,
                   claim=claim or "slope at most the bound's (upper bound)", mutants=mutants, one_sided=one_sided,
                   assess=assess)

    def measured(self, key, algorithm, theorem, cell, window, *, claim, metric="avg_sq_grad", statistic="mean",
                 figure="", notes="") -> None:
        """A slope reported with its interval and no verdict (guarded by ``verify rates --regression``)."""
        self.check(key=key, algorithm=algorithm, theorem=theorem, kind="slope", cells=(cell,), metric=metric,
                   statistic=statistic, window=window, low=-10.0, high=10.0, max_width=None, figure=figure, claim=claim,
                   assess=False, resolution=None, no_schedule_power="a measurement, not a claim", notes=notes)


# ----------------------------------------------------------------------------- the families
def _baselines(b: _Builder) -> None:
    g, fig = b.g, "baselines"
    gd = b.cell("sgd/gd-p1", "sgd", {}, b.p1(), NONE, {"kind": "one_over_L"}, seeds=2, figure=fig,
                label="GD, η = 1/L, σ = 0")
    b.check(key="sgd/gd-bound", algorithm="sgd", theorem="gd_descent", kind="bound", cells=(gd,),
            window=(g.anytime[0], g.anytime[-1]), figure=fig, claim="R_T <= 2LΔ/T at every T", mutants=("sgd_double_step",),
            resolution=None, no_schedule_power="an explicit constant at η = 1/L: a smaller step satisfies its own, larger "
            "bound; the schedule's exponent is the slope check's to resolve")
    b.band("sgd/gd-slope", "sgd", "gd_descent", gd, -1.0, g.window_anytime, figure=fig,
           claim="σ = 0: slope −1 (Σ‖∇f‖² converges)", mutants=("sgd_double_step",))
    adam = b.cell("adam/p1", "adam", {"betas": [0.9, 0.999]}, b.p1(start=BASIN), ISO1, _sqrtT(0.3, beta2_horizon=True),
                  figure=fig, label="Adam in P1's basin, η = 0.3/√T, β2 = 1 − 1/T")
    b.band("adam/slope", "adam", "adam_defossez", adam, -0.5, g.window_horizon, figure=fig,
           claim="slope −1/2 (the bound d·log T/√T, tight in the basin)", notes=TIGHT_NOISE,
           mutants=("adam_bias_correction_precedence",))


def _noise_adaptation(b: _Builder) -> None:
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
        quiet = b.cell(f"{name}/p1-noiseless", name, hyper, b.p1(), NONE, _const(quiet_eta), seeds=2, metrics=metrics,
                       l21_subset=4 if sn else None, figure=fig, label=f"{label}, σ = 0, η = {quiet_eta:g}")
        noisy = b.cell(f"{name}/p1", name, hyper, b.p1(), ISO1, _const(eta), seeds=g.seeds_hp, metrics=metrics,
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
            cross = b.cell(f"{name}/p1-crossover", name, hyper, b.p1(), ("isotropic", {"level": 0.1}), _const(eta),
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


def _delta_dependence(b: _Builder, name: str, hyper: dict, eta: float) -> None:
    """E2 on a statistic that does not self-average: the last iterate's ‖∇f(x_T)‖² at small T.

    R_T averages T steps, so its quantiles concentrate whatever the noise's tails (even Student-t
    noise gave an exponent near 0.02). The last iterate carries one step's noise: its (1−δ)-quantile
    grows like log(1/δ) under sub-gaussian (Rademacher) noise and like a power of 1/δ under heavy
    tails (Student-t, 3 degrees of freedom, the same variance). Measured, not judged.
    """
    g, fig = b.g, "noise_adaptation"
    levels = ("q0.5", "q0.9", "q0.99", "q0.999")
    for family, label in (("isotropic", "Rademacher"), ("student_t", "Student-t (df 3)")):
        cell = b.cell(f"{name}/p1-last-{family}", name, hyper, b.p1(), (family, {"level": 1.0}), _const(eta),
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


def _dimension(b: _Builder) -> None:
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
                                    b.p1(d), b.sparse(beta), _const(eta), seeds=g.seeds_e3, horizons=g.e3_horizons,
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


def _partition_alignment(b: _Builder) -> None:
    """E4: the same noise (σ_i = 1 on ⌈d^{1/2}⌉ coordinates) filling few contiguous subsets, or one per subset."""
    g, fig = b.g, "partition_alignment"
    d = 64 if g.name == "quick" else 256
    k = int(round(d**0.5))
    keys = {}
    for placement in ("first", "spread"):
        keys[placement] = b.cell(f"adagrad_subset_norm/e4-{placement}", "adagrad_subset_norm",
                                 {"b0": 1.0, "eps": 0.0, "subset_size": k}, b.p1(d), b.sparse(0.5, placement),
                                 _const(0.5), seeds=g.seeds_hp, horizons=g.e3_horizons, metrics=("avg_sq_grad",),
                                 l21_subset=k, figure=fig,
                                 label=f"SN k={k}, d={d}, noise in {'few subsets' if placement == 'first' else 'every subset'}")
    b.check(key="adagrad_subset_norm/e4-alignment", algorithm="adagrad_subset_norm",
            theorem="subset_norm_high_probability", kind="order", cells=(keys["first"], keys["spread"]), statistic="mean",
            high=0.0, max_width=0.5, figure=fig, mutants=("adagrad_subset_norm_strided_subsets",), resolution=None,
            no_schedule_power="an ordering of two noise placements at one η",
            claim="E4: the mixed norm Σ_j‖σ_Ψj‖ predicts SN does better when the noise fills few subsets "
                  "(log ratio < 0)")


def _sn_adam(b: _Builder) -> None:
    g, fig = b.g, "sn_adam"
    entries = [("adam_sn", {"betas": [0.9, 0.999], "subset_size": 4}, 0.6, "AdamSN (k=4), η = 0.6/√T"),
               ("rmsprop_sn", {"beta2": 0.999, "subset_size": 4}, 0.6, "RMSPropSN (k=4), η = 0.6/√T"),
               ("lion", {"betas": [0.9, 0.99]}, 0.05, "Lion, η = 0.05/√T"),
               ("mars_lion", {}, 0.05, "MARS-Lion (approx, γ = 0.025), η = 0.05/√T")]
    for name, hyper, eta0, label in entries:
        cell = b.cell(f"{name}/p1", name, hyper, b.p1(), ISO1, _sqrtT(eta0), figure=fig, label=label)
        b.upper(f"{name}/slope", name, "no_theorem_sqrt_analogy", cell, g.window_horizon, figure=fig,
                claim="slope at most −1/2 (+0.05), by analogy only", mutants=(frozen(name),),
                one_sided="no theorem: an upper bound by analogy with SGD/Adam")


UPPER_ONLY = "the statement is an upper bound and this cell is not shown to make it tight"


def _matrix(b: _Builder) -> None:
    g = b.g
    S, window = g.seeds_matrix, g.window_matrix
    adam_like = 0.5
    fig = "matrix_iso"
    basin = b.mq(start_norm=0.05)
    MQ = b.mq()
    sgd = b.cell("sgd/mq-iso", "sgd", {}, basin, ISO1, _sqrtT(1.0), seeds=S, figure=fig,
                 label="SGD in the ABC basin, η = 1/√T")
    b.check(key="sgd/bound", algorithm="sgd", theorem="sgd_horizon", kind="bound", cells=(sgd,), window=window,
            figure=fig, claim="E R_T <= (2Δ/η0 + Lη0σ²)/√T", mutants=("sgd_stale_gradient_sum",), resolution=None,
            no_schedule_power="an explicit constant for η = η0/√T: another schedule has its own bound; the slope check "
            "carries the schedule power")
    b.band("sgd/slope", "sgd", "sgd_horizon", sgd, -0.5, window, figure=fig,
           claim="noise-dominated: slope −1/2", notes="[D] started in the basin, R_T ≈ Lη0σ²/(2√T)·(1 + O(η)): "
           "the noise term of the bound dominates and T^(-1/2) is tight (two-sided band)",
           mutants=("sgd_stale_gradient_sum",))
    sgdm = b.cell("sgdm/mq-iso", "sgd", {"momentum": 0.9, "momentum_type": "ema"}, basin, ISO1, _sqrtT(1.0), seeds=S,
                  figure=fig, label="SGDm (EMA 0.9) in the basin, η = 1/√T")
    b.band("sgdm/slope", "sgd", "sgdm_horizon", sgdm, -0.5, window, figure=fig,
           claim="momentum: the SGD rate, slope −1/2", notes=TIGHT_NOISE, mutants=("sgd_stale_gradient_sum",))
    sgd_far = b.cell("sgd/mq-iso-far", "sgd", {}, MQ, ISO1, _sqrtT(2.0), seeds=S, figure=fig,
                     label="SGD from ‖W0‖ = 0.5, η = 2/√T (the SM comparison)")
    sm = b.cell("subspace_momentum/mq-iso", "subspace_momentum", {"rank": 2, "momentum": 0.9, "update_proj_gap": 200},
                MQ, ISO1, _sqrtT(2.0), seeds=S, figure=fig, label="Subspace-Momentum r = 2, η = 2/√T")
    b.upper("subspace_momentum/slope", "subspace_momentum", "subspace_momentum_high_probability", sm, window, figure=fig,
            claim="slope at most −1/2 (+0.05)", mutants=(frozen("subspace_momentum"),), one_sided=UPPER_ONLY)
    b.check(key="subspace_momentum/vs-sgd", algorithm="subspace_momentum", theorem="subspace_momentum_high_probability",
            kind="order", cells=(sm, sgd_far), window=window, high=ORDER_TOLERANCE, max_width=1.0, figure=fig,
            claim="E5: SM no worse than SGD (r = 0) at equal η (within 5 %)", mutants=("subspace_momentum_no_complement",),
            resolution=None, no_schedule_power="an ordering of two methods at one η")
    ranks = {}
    for rank in (2, 4):
        ranks[rank] = b.cell(f"ldadam/mq-iso-r{rank}", "ldadam", {"rank": rank}, MQ, ISO1, _sqrtT(adam_like), seeds=S,
                             figure=fig, label=f"LDAdam r = {rank}, η = 0.5/√T")
        b.upper(f"ldadam/slope-r{rank}", "ldadam", "ldadam_theorem1", ranks[rank], window, figure=fig,
                claim=f"r = {rank}: slope at most −1/2 (+0.05)", one_sided=UPPER_ONLY,
                mutants=("ldadam_no_error_feedback",) if rank == 2 else ("ldadam_frozen_subspace",))
    b.check(key="ldadam/rank-moves-slope", algorithm="ldadam", theorem="ldadam_theorem1", kind="gap",
            cells=(ranks[2], ranks[4]), window=window, low=-0.05, high=0.05, max_width=None, figure=fig, assess=False,
            resolution=None, no_schedule_power="a difference of two ranks on one schedule",
            claim="slope(r = 2) − slope(r = 4): the reviewers' reading says the rank moves only the intercept (gap 0)")
    arg = b.cell("adarankgrad/mq-iso", "adarankgrad", {"max_rank": 2}, MQ, ISO1, _sqrtT(0.25), seeds=g.seeds_loop,
                 figure=fig, label="AdaRankGrad r ≤ 2, η = 0.25/√T")
    b.upper("adarankgrad/slope", "adarankgrad", "adarankgrad_sumo_template", arg, window, figure=fig,
            claim="slope at most −1/2 (+0.05); the template covers SGD inner steps only", mutants=("adarankgrad_no_refresh",),
            one_sided=UPPER_ONLY)
    for name, hyper, label in [("adam_sn_sm", {"rank": 2, "update_proj_gap": 200, "subset_size": "heuristics"}, "AdamSNSM r = 2"),
                               ("mars_shampoo", {}, "MARS-Shampoo (approx, γ = 0.025)"),
                               ("fira_adamw", {"rank": 2, "scale": 1.0, "update_proj_gap": 200}, "Fira r = 2")]:
        eta0 = 0.05 if name == "mars_shampoo" else (1.0 if name == "adam_sn_sm" else adam_like)
        cell = b.cell(f"{name}/mq-iso", name, hyper, MQ, ISO1, _sqrtT(eta0), seeds=S, figure=fig, label=f"{label}, η = {eta0}/√T")
        b.upper(f"{name}/slope", name, "no_theorem_sqrt_analogy", cell, window, figure=fig,
                claim="slope at most −1/2 (+0.05), by analogy only", mutants=(frozen(name),),
                one_sided="no theorem: an upper bound by analogy with SGD/Adam")
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
                    mutants=("galore_full_rank",) if name == "galore_adamw" else ("adarankgrad_full_rank",),
                    one_sided="a floor claim: any slope flatter than −1/4 is a stall",
                    notes="reported with its window's stationarity: a floor that keeps steepening across the window is "
                          "INCONCLUSIVE, not a floor")
        elif name == "fira_adamw":
            b.upper("fira_adamw/rows-slope", name, "no_theorem_sqrt_analogy", cell, window, figure=fig,
                    claim="noise on 2 rows: the residual reaches the complement (slope <= −1/2 + 0.05); the GoLore floor "
                          "was the expectation", mutants=("fira_no_residual",), one_sided=UPPER_ONLY)
        elif name == "ldadam":
            b.upper("ldadam/rows-slope", name, "ldadam_theorem1", cell, window, figure=fig,
                    claim="noise on 2 rows: error feedback still reaches the complement (slope <= −1/2 + 0.05)",
                    mutants=("ldadam_frozen_subspace",), one_sided=UPPER_ONLY)
        elif name == "subspace_momentum":
            b.upper("subspace_momentum/rows-slope", name, "subspace_momentum_high_probability", cell, window, figure=fig,
                    claim="noise on 2 rows: the SGD complement converges (slope <= −1/2 + 0.05)",
                    mutants=("subspace_momentum_no_complement",), one_sided=UPPER_ONLY)
        else:
            b.measured("adam/rows-slope", name, "adam_defossez", cell, window, figure=fig,
                       claim="full-rank reference of the rows experiment (measured)")


def _momentum_matters(b: _Builder) -> None:
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
        keys[name] = b.cell(f"{name}/mq-ill", algorithm, hyper, ill, noise, _sqrtT(2.0), seeds=g.seeds_matrix,
                            figure=fig, label=f"{name}, ill-conditioned ABC, η = 2/√T")
    common = dict(algorithm="subspace_momentum", theorem="subspace_momentum_high_probability", kind="order",
                  window=g.window_matrix, low=-10.0, high=10.0, max_width=None, figure=fig, assess=False,
                  resolution=None, no_schedule_power="an ordering at one η (reported)")
    b.check(key="subspace_momentum/ill-vs-sgd", cells=(keys["subspace_momentum"], keys["sgd"]),
            claim="E5: log(SM / SGD) on the ill-conditioned problem (SM between SGD and SGDm: <= 0)", **common)
    b.check(key="subspace_momentum/ill-vs-sgdm", cells=(keys["subspace_momentum"], keys["sgdm"]),
            claim="E5: log(SM / SGDm) on the ill-conditioned problem (between: >= 0)", **common)


def _mars(b: _Builder) -> None:
    g, fig = b.g, "mars"
    S, window = g.seeds_mars, g.window_mars
    L = 1.0  # P1 is L-smooth and the noise additive, so every sample ∇f(·, ξ) is L-smooth (Assumption B.2)
    constants = mars_b5_constants(L, rho=1.0)  # H = I: ρ = 1 (Assumption B.3)
    schedule = {"kind": "mars_theory", "eta0": constants["eta0"], "s": constants["s"], "c": constants["c"], "beta2": 0.99}
    tight = mars_tight_from(L, curvature=1.0, constants=constants)  # P1's Hessian at the minimiser is L·I
    common = {"estimator": "exact", "clip": "none", "bias_correction": False, "eps": 1e-2, "optimize_1d": True,
              "weight_decay": 0.0, "preconditioner": "identity"}
    basin = b.p1(start=BASIN)
    label = (f"MARS exact (Alg. 1, H = I), η_t = {constants['eta0']:.3f}(s+t)^(-1/3), s = {constants['s']:g}, "
             f"c = {constants['c']:g}")
    g1 = b.cell("mars_adamw/p1-exact-g1", "mars_adamw", {**common, "gamma": 1.0}, basin, ISO1, schedule, seeds=S,
                horizons=g.mars_horizons, figure=fig, label=f"{label}, γ = 1")
    g0 = b.cell("mars_adamw/p1-exact-g0", "mars_adamw", {**common, "gamma": 0.0}, basin, ISO1, schedule, seeds=S,
                horizons=g.mars_horizons, figure=fig, label=f"{label}, γ = 0 (no correction)")
    same_schedule = {"kind": "anytime_power", "eta0": constants["eta0"], "s": constants["s"], "q": 1.0 / 3.0}
    beaten = (Alternative(key="gamma0", kind="method", label="MARS with γ = 0 on the same schedule", hyper={"gamma": 0.0}),
              Alternative(key="sgdm-same-schedule", kind="method", label="SGD-momentum (EMA 0.9) on MARS's η_t",
                          algorithm="sgd", hyper={"momentum": 0.9, "momentum_type": "ema"}, schedule=same_schedule),
              Alternative(key="adamw-same-schedule", kind="method", label="AdamW on MARS's η_t (×0.25)",
                          algorithm="adam", hyper={"betas": [0.9, 0.999]},
                          schedule={**same_schedule, "eta0": 0.25 * constants["eta0"]}))
    b.check(key="mars_adamw/gamma-gap", algorithm="mars_adamw", theorem="mars_theorem_b5", kind="gap", cells=(g1, g0),
            window=window, high=-0.05, max_width=0.4, figure=fig, provenance="D", mutants=("mars_exact_aliased",),
            resolution=None, no_schedule_power="two estimators on one schedule",
            one_sided="[D] γ = 0 keeps the lag bias (1−γ)·E[Δ_t] of the error recursion (eq. D.11), which grows "
                      "relative to the gradient like t^(1/3): γ = 0 is slower by an amount that grows with T, so only "
                      "its sign is claimed",
            claim="γ = 1 beats γ = 0 on paired seeds at Theorem B.5's constants (slope gap <= −0.05)")
    b.check(key="mars_adamw/slope", algorithm="mars_adamw", theorem="mars_theorem_b5", kind="slope", cells=(g1,),
            window=window, low=-2 / 3 - 0.1, high=-2 / 3 + 0.1, figure=fig, mutants=("mars_exact_aliased",),
            alternatives=beaten, tight_from=tight,
            notes=f"[D] the bound is tight in the basin once the estimator error is slower than the iterates "
                  f"(c·η_t <= λ/ρ), from t ≈ {tight} here (see verify.rates.cells.mars_tight_from); a window that "
                  "starts earlier is pre-asymptotic and the claim INCONCLUSIVE there. Alternatives: γ = 0, "
                  "SGD-momentum and AdamW on the same η_t (the O(T^(-1/2))-type rates the paper improves on)",
            claim="Õ(T^(-2/3)): slope −2/3 (±0.1) once the window is in the tight regime")
    b.check(key="mars_adamw/equal-calls-vs-sgdm", algorithm="mars_adamw", theorem="mars_theorem_b5", kind="order",
            cells=(g1, b.cell("sgdm/p1-mars-schedule", "sgd", {"momentum": 0.9, "momentum_type": "ema"}, basin, ISO1,
                              same_schedule, seeds=S, horizons=g.mars_horizons, figure=fig,
                              label="SGD-momentum on MARS's η_t")),
            window=window, low=-10.0, high=10.0, max_width=None, equal_calls=True, figure=fig, assess=False,
            resolution=None, no_schedule_power="a comparison at equal gradient evaluations (reported)",
            claim="log(R_T of MARS exact after T steps / R of SGD-momentum after 2T steps): exact MARS spends two "
                  "gradients per step, so rates counted per gradient evaluation compare these")
    official = b.cell("mars_adamw/p1-official", "mars_adamw", {}, b.p1(start=BASIN), ISO1, _sqrtT(0.05), figure=fig,
                      label="MARS-AdamW as shipped (approx, γ = 0.025, Adam preconditioner, clipping on), η = 0.05/√T")
    adamw = b.cell("adam/p1-mars-partner", "adam", {"betas": [0.9, 0.999]}, b.p1(start=BASIN), ISO1, _sqrtT(0.05),
                   figure=fig, label="AdamW, η = 0.05/√T (MARS-AdamW's partner)")
    b.measured("mars_adamw/official-slope", "mars_adamw", "mars_theorem_b5", official, g.window_horizon, figure=fig,
               claim="MARS-AdamW with the authors' defaults: measured slope (Theorem B.6's constants are vacuous at ρ = ε)")
    b.check(key="mars_adamw/official-vs-adamw", algorithm="mars_adamw", theorem="mars_theorem_b5", kind="order",
            cells=(official, adamw), window=g.window_horizon, low=-10.0, high=10.0, max_width=None, figure=fig,
            assess=False, resolution=None, no_schedule_power="an ordering at one η (reported)",
            claim="log(R_T of MARS-AdamW (defaults) / AdamW) at the same η: the paper's 'MARS beats AdamW', measured")


def _code_paths(b: _Builder) -> None:
    """Settings that no rate theorem covers but a one-line bug can break; measured, and guarded by
    ``verify rates --regression`` (a change of their slope or level beyond the tolerance fails it)."""
    g, fig = b.g, "code_paths"
    MQ = b.mq()
    offset = b.p1(start=BASIN, centre=3.0)
    decayed = b.cell("adam/p1-weight-decay", "adam", {"betas": [0.9, 0.999], "weight_decay": 0.1}, offset, ISO1,
                     _sqrtT(0.3), figure=fig, label="AdamW, weight decay 0.1, minimiser away from 0")
    b.measured("adam/weight-decay-slope", "adam", "adam_defossez", decayed, g.window_horizon, figure=fig,
               claim="decoupled weight decay: R_T of ∇f (measured; coupled L2 decay lands elsewhere)")
    alpha = b.cell("galore_adamw/mq-alpha", "galore_adamw", {"rank": 2, "scale": 0.25, "update_proj_gap": 200}, MQ, ISO1,
                   _sqrtT(2.0), seeds=g.seeds_matrix, figure=fig, label="GaLore r = 2, α = 0.25, η = 2/√T")
    b.measured("galore_adamw/alpha-slope", "galore_adamw", "no_theorem_sqrt_analogy", alpha, g.window_matrix,
               figure=fig, claim="GaLore with α = 0.25 (the paper's default), measured")
    adaptive = b.cell("adarankgrad/mq-adaptive", "adarankgrad", {"max_rank": 8, "rank_threshold": 0.9},
                      b.mq(eig_range=(0.1, 2.0)), ISO1, _sqrtT(0.25), seeds=g.seeds_loop, figure=fig,
                      label="AdaRankGrad r ≤ 8 (room to adapt), ill-conditioned ABC")
    b.measured("adarankgrad/adaptive-slope", "adarankgrad", "adarankgrad_sumo_template", adaptive, g.window_matrix,
               figure=fig, claim="AdaRankGrad with room for its rank to adapt, measured")
    clip = b.cell("mars_adamw/p1-clip", "mars_adamw", {"clip": "tensor", "gamma": 0.025}, b.p1(start=BASIN),
                  ("isotropic", {"level": 3.0}), _sqrtT(0.05), figure=fig,
                  label="MARS-AdamW in the basin, σ = 3 (the unit-norm clip of c_t fires)")
    b.measured("mars_adamw/clip-slope", "mars_adamw", "mars_theorem_b5", clip, g.window_horizon, figure=fig,
               claim="MARS-AdamW with its clip firing, measured")
    heuristics = b.cell("adam_sn/mq-heuristics", "adam_sn", {"betas": [0.9, 0.999], "subset_size": "heuristics"}, MQ,
                        ISO1, _sqrtT(0.5), seeds=g.seeds_matrix, figure=fig, label="AdamSN, heuristic subsets on a matrix")
    b.measured("adam_sn/heuristics-slope", "adam_sn", "no_theorem_sqrt_analogy", heuristics, g.window_matrix,
               figure=fig, claim="AdamSN's heuristic subset rule on a matrix parameter, measured")


def build(grid: str = "quick", master_seed: int = 0) -> tuple[list[Cell], list[Check]]:
    """Every cell and check of ``grid`` (``"quick"`` or ``"full"``) for one master seed.

    The master seed picks disjoint noise streams and a problem instance: P1's start radii, the ABC
    problem's matrices and start, the sparse noise's placement (master seed 0: the reference instance).
    """
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
    _momentum_matters(b)
    _mars(b)
    _code_paths(b)
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
