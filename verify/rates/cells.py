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

Experiments (``figure`` names group the cells of one plot; :data:`FIGURES` is their order). The cells
and checks are declared by each method family in :mod:`verify.methods` (:func:`rate_entry`: a figure
and the entry's position in it); :func:`build` collects them:

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

The experiment templates (:meth:`Builder.p1_analogy`, :meth:`Builder.matrix_analogy`,
:meth:`Builder.rows_cell`) are the parts of an experiment that every method in it shares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from verify.methods import Registry

from .spec import Cell, Check

__all__ = ["GRIDS", "Grid", "FIGURES", "RateEntry", "RATE_ENTRIES", "rate_entry", "Builder", "build", "cells_for",
           "algorithms_covered", "mars_b5_constants", "mars_tight_from", "const", "sqrt_horizon", "frozen",
           "NONE", "ISO1", "ROWS3", "BAND", "ORDER_TOLERANCE", "BASIN", "TIGHT_NOISE", "UPPER_ONLY"]


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
UPPER_ONLY = "the statement is an upper bound and this cell is not shown to make it tight"
TIGHT_NOISE = ("[D] in the basin the iterates sit in the noise floor, whose size is proportional to the step, "
               "so R_T ∝ η0/√T: the bound's T^(-1/2) is tight here (two-sided band)")


def const(eta: float) -> dict:
    return {"kind": "constant", "eta": eta}


def sqrt_horizon(eta0: float, **extra: Any) -> dict:
    return {"kind": "inverse_sqrt_horizon", "eta0": eta0, **extra}


def mars_b5_constants(L: float, rho: float = 1.0) -> dict[str, float]:
    r"""Theorem B.5's smallest admissible constants for per-sample smoothness L and H ⪰ ρI:
    s = ⌈8L³/ρ³⌉, c = ⌈32L²/ρ² + 1⌉ and η0 with :math:`\eta_1 = \eta_0 (s+1)^{-1/3} = \rho/(2L)`."""
    s = float(math.ceil(8 * L**3 / rho**3))
    c = float(math.ceil(32 * L**2 / rho**2 + 1))
    eta0 = rho / (2 * L) * (s + 1.0) ** (1.0 / 3.0)
    return {"s": s, "c": c, "eta0": eta0}


#: the floor's local exponent must be within this of −2/3 for the two-sided band to apply
MARS_TIGHT_WITHIN = 0.05


def mars_tight_from(L: float, curvature: float, constants: dict[str, float], rho: float = 1.0,
                    within: float = MARS_TIGHT_WITHIN) -> int:
    r"""[D] The first step at which Algorithm 1's floor of ‖∇F‖² decays within ``within`` of t^(−2/3).

    With :math:`1-\beta_t = c\eta_t^2`, the error :math:`e_t = m_t - \nabla F(x_t)` is an average over
    :math:`1/(c\eta_t^2)` steps; the iterates relax in :math:`1/(\eta_t\lambda/\rho)` steps (λ the
    curvature at the minimiser). With :math:`x_t = c\eta_t\rho/\lambda` (the ratio of the two times),
    the iterates low-pass the error and the floor is about
    :math:`\tfrac12(1-\beta_t)\sigma^2/(1 + x_t)`: SGD's floor ∝ η_t ∝ t^(−1/3) while
    :math:`x_t \gg 1`, the error's variance ∝ t^(−2/3) (the theorem's rate) once :math:`x_t \ll 1`.
    Its local exponent is :math:`-\tfrac13 - \tfrac13/(1 + x_t)`, within ``within`` of −2/3 once
    :math:`x_t \le 1/(1 - 3\,\text{within}) - 1` (0.176 for 0.05). Under B.5's constants
    (c·η_1 ≈ 16L/ρ) that is millions of steps, and the running average R_T lags behind the floor.
    """
    eta0, s, c = constants["eta0"], constants["s"], constants["c"]
    x_max = 1.0 / (1.0 - 3.0 * within) - 1.0
    # c·η0·(s+t)^(-1/3)·ρ/curvature <= x_max  <=>  s + t >= (c·η0·ρ/(x_max·curvature))^3
    return int(math.ceil((c * eta0 * rho / (x_max * curvature)) ** 3 - s))


def frozen(name: str) -> str:
    """The generic planted bug of ``name`` (parameters stop moving after step 1)."""
    return f"{name}_frozen_after_first_step"


class Builder:
    """Collects the cells and checks of one grid and master seed; the experiment templates live here."""

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

    # ------------------------------------------------------------------ experiment templates
    def p1_analogy(self, name: str, hyper: dict, eta0: float, label: str) -> None:
        """``sn_adam``: a method with no theorem on P1 at η0/√T, its slope bounded by analogy with SGD/Adam."""
        fig = "sn_adam"
        cell = self.cell(f"{name}/p1", name, hyper, self.p1(), ISO1, sqrt_horizon(eta0), figure=fig, label=label)
        self.upper(f"{name}/slope", name, "no_theorem_sqrt_analogy", cell, self.g.window_horizon, figure=fig,
                   claim="slope at most −1/2 (+0.05), by analogy only", mutants=(frozen(name),),
                   one_sided="no theorem: an upper bound by analogy with SGD/Adam")

    def matrix_analogy(self, name: str, hyper: dict, eta0: float, label: str) -> None:
        """``matrix_iso``: a method with no theorem on the ABC problem at η0/√T, bounded by analogy."""
        fig = "matrix_iso"
        cell = self.cell(f"{name}/mq-iso", name, hyper, self.mq(), ISO1, sqrt_horizon(eta0), seeds=self.g.seeds_matrix,
                         figure=fig, label=f"{label}, η = {eta0}/√T")
        self.upper(f"{name}/slope", name, "no_theorem_sqrt_analogy", cell, self.g.window_matrix, figure=fig,
                   claim="slope at most −1/2 (+0.05), by analogy only", mutants=(frozen(name),),
                   one_sided="no theorem: an upper bound by analogy with SGD/Adam")

    def rows_cell(self, name: str, hyper: dict, eta0: float, label: str, *, seeds: int | None = None,
                  beta2_horizon: bool = False) -> str:
        """``matrix_rows``: the ABC problem with noise on 2 rows (an SVD of the noisy gradient picks them)."""
        schedule = sqrt_horizon(eta0, beta2_horizon=True) if beta2_horizon else sqrt_horizon(eta0)
        return self.cell(f"{name}/mq-rows", name, hyper, self.mq(), ROWS3, schedule, seeds=seeds or self.g.seeds_matrix,
                         figure="matrix_rows", label=f"{label}, noise on 2 rows")


#: the experiments in the order of the grid (and of the verdict tables)
FIGURES = ("baselines", "noise_adaptation", "dimension_sparsity", "partition_alignment", "sn_adam", "matrix_iso",
           "matrix_rows", "momentum_matters", "mars", "code_paths")


@dataclass(frozen=True)
class RateEntry:
    """A method family's part of one experiment: ``build(b)`` adds its cells and checks to the grid."""

    figure: str
    position: int  #: the entry's place in its figure (the order of the verdict tables)
    build: Callable[[Builder], None]


#: every rate entry the method modules declare, by ``"<figure>/<position>"``
RATE_ENTRIES: Registry[RateEntry] = Registry("rate entry")


def rate_entry(figure: str, position: int):
    """Decorator (in :mod:`verify.methods`): ``fn(b: Builder)`` adds its cells and checks to ``figure``."""
    if figure not in FIGURES:
        raise ValueError(f"figure must be one of {FIGURES}, got {figure!r}")

    def decorate(fn: Callable[[Builder], None]) -> Callable[[Builder], None]:
        RATE_ENTRIES.add(f"{figure}/{position}", RateEntry(figure, position, fn))
        return fn

    return decorate


def build(grid: str = "quick", master_seed: int = 0) -> tuple[list[Cell], list[Check]]:
    """Every cell and check of ``grid`` (``"quick"`` or ``"full"``) for one master seed, collected from the rate
    entries of :mod:`verify.methods` in figure order and, within a figure, by position.

    The master seed picks disjoint noise streams and a problem instance: P1's start radii, the ABC
    problem's matrices and start, the sparse noise's placement (master seed 0: the reference instance).
    """
    try:
        g = GRIDS[grid]
    except KeyError:
        raise ValueError(f"grid must be one of {sorted(GRIDS)}, got {grid!r}") from None
    b = Builder(g, master_seed)
    for entry in sorted(RATE_ENTRIES.values(), key=lambda e: (FIGURES.index(e.figure), e.position)):
        entry.build(b)
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
