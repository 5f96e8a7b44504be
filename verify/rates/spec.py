r"""Plain-data descriptions of rate cells and checks.

A :class:`Cell` is one (algorithm, problem, noise, step-size schedule) with a horizon grid, a seed
count and the metrics to record: everything that determines its result, and nothing else, enters
its :meth:`Cell.digest`, which keys the cache (:mod:`verify.rates.store`).

A :class:`Check` is one claim about one or more cells (a slope, an explicit bound, a slope gap, an
ordering, a δ-dependence) tied to a theorem of :mod:`verify.rates.theorems`; checks are evaluated
from stored rows only (:mod:`verify.rates.checks`), so changing a claim never reruns a cell.

Metrics (:data:`METRICS`): ``avg_sq_grad`` = :math:`R_T = \frac1T\sum_{t=0}^{T-1}\|\nabla f(x_t)\|_2^2`,
``min_sq_grad`` = :math:`\min_{t<T}\|\nabla f(x_t)\|_2^2`, ``avg_l1_sq`` (ℓ₁²) and ``avg_l21_sq``
(the mixed :math:`(\sum_j \|\nabla f_{\Psi_j}\|_2)^2` over contiguous subsets of size ``l21_subset``),
``last_sq_grad`` = :math:`\|\nabla f(x_T)\|_2^2` (the last iterate: a statistic that does not self-average),
each per seed at each horizon, on the exact gradient at the query points.

Schedules (``schedule["kind"]``, see :data:`verify.rates.theorems.SCHEDULES`):

``constant``              ``{"kind": "constant", "eta": η}``: anytime (one run of max(T) steps).
``one_over_L``            η = 1/L of the problem; anytime.
``inverse_sqrt_horizon``  ``{"eta0": η0, "beta2_horizon": bool}``: one run per T with η = η0/√T
                          (and β₂ = 1 − 1/T when ``beta2_horizon``).
``horizon_power``         ``{"eta_ref", "T_ref", "p"}``: one run per T with η = eta_ref·(T_ref/T)^p (and
                          ``beta2_horizon``): the schedule of a power alternative, matched to the claimed
                          schedule at the window's smallest horizon T_ref so that only the exponent changes.
``mars_theory``           ``{"eta0", "s", "c", "beta2", "q"}``: η_t = η0 (s+t)^(−q) (q = 1/3 unless given),
                          β1,t = 1 − min(1, c η_t²), β2 constant (or ``"theory"``: 1 − η_t⁶); anytime.
``anytime_power``         ``{"eta0", "s", "q"}``: η_t = η0 (s+t)^(−q) for any optimizer, betas from the
                          hyperparameters (AdamW / SGD-momentum on MARS's schedule); anytime.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["FORMAT_VERSION", "METRICS", "SCHEDULE_KINDS", "CHECK_KINDS", "ALTERNATIVE_KINDS", "Cell", "Check", "Alternative",
           "mutant_alternative", "SEED_STRIDE", "seed_ids"]

#: bump when the meaning of a stored row changes (invalidates every cached cell)
FORMAT_VERSION = 1
METRICS = ("avg_sq_grad", "min_sq_grad", "avg_l1_sq", "avg_l21_sq", "last_sq_grad")
SCHEDULE_KINDS = ("constant", "one_over_L", "inverse_sqrt_horizon", "horizon_power", "mars_theory", "anytime_power")
ANYTIME_KINDS = ("constant", "one_over_L", "mars_theory", "anytime_power")
CHECK_KINDS = ("slope", "bound", "gap", "order", "delta", "dim")
ALTERNATIVE_KINDS = ("schedule", "mutant", "method")
#: seed ids of master seed m are m·SEED_STRIDE + 0..S−1 (disjoint streams across master seeds)
SEED_STRIDE = 1_000_003


def seed_ids(master_seed: int, count: int) -> list[int]:
    return [master_seed * SEED_STRIDE + i for i in range(count)]


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class Cell:
    key: str
    algorithm: str
    hyper: dict
    problem: tuple[str, dict]
    noise: tuple[str, dict]
    schedule: dict
    horizons: tuple[int, ...]
    seeds: int
    metrics: tuple[str, ...] = ("avg_sq_grad", "min_sq_grad")
    master_seed: int = 0
    l21_subset: int | None = None
    figure: str = ""
    label: str = ""

    def __post_init__(self) -> None:
        if not self.key or any(c in self.key for c in " \\:"):
            raise ValueError(f"cell key must be non-empty without spaces, backslashes or colons, got {self.key!r}")
        if self.schedule.get("kind") not in SCHEDULE_KINDS:
            raise ValueError(f"cell {self.key}: schedule kind must be one of {SCHEDULE_KINDS}, got {self.schedule!r}")
        if len(self.horizons) < 2 or list(self.horizons) != sorted(set(self.horizons)) or self.horizons[0] < 1:
            raise ValueError(f"cell {self.key}: horizons must be >= 2 increasing positive ints, got {self.horizons}")
        if self.seeds < 2:
            raise ValueError(f"cell {self.key}: seeds must be >= 2, got {self.seeds}")
        for m in self.metrics:
            if m not in METRICS:
                raise ValueError(f"cell {self.key}: unknown metric {m!r}; known: {METRICS}")
        if "avg_l21_sq" in self.metrics and not self.l21_subset:
            raise ValueError(f"cell {self.key}: avg_l21_sq needs l21_subset")

    @property
    def anytime(self) -> bool:
        return self.schedule["kind"] in ANYTIME_KINDS

    @property
    def steps_total(self) -> int:
        """Optimizer steps the cell costs (anytime: one run of max(T); else one run per T)."""
        return max(self.horizons) if self.anytime else sum(self.horizons)

    def spec(self) -> dict[str, Any]:
        """Everything that determines the result (figure and label excluded)."""
        out = asdict(self)
        out.pop("figure")
        out.pop("label")
        out["problem"] = list(self.problem)
        out["noise"] = list(self.noise)
        out["horizons"] = list(self.horizons)
        out["metrics"] = list(self.metrics)
        out["format"] = FORMAT_VERSION
        return json.loads(_canonical(out))

    def digest(self) -> str:
        return hashlib.sha256(_canonical(self.spec()).encode()).hexdigest()[:20]

    def seed_ids(self) -> list[int]:
        return seed_ids(self.master_seed, self.seeds)

    def with_master_seed(self, master_seed: int) -> "Cell":
        data = asdict(self)
        data.update(master_seed=master_seed, problem=tuple(self.problem), noise=tuple(self.noise),
                    horizons=tuple(self.horizons), metrics=tuple(self.metrics))
        return Cell(**data)


@dataclass(frozen=True)
class Alternative:
    """An alternative a check must reject: the rate or behaviour it claims to tell apart from the claim.

    ``kind``:

    ``schedule``  the correct algorithm with the step-size exponent ``exponent`` (η ∝ T^(−p) for
                  fixed-horizon claims, η_t ∝ (s+t)^(−q) for anytime ones), η matched to the claimed
                  schedule at the window's smallest horizon so that only the exponent changes;
    ``mutant``    a planted bug of :mod:`verify.rates.mutants` (``mutant`` names it);
    ``method``    another method or setting in the subject cell's place (``algorithm``/``hyper``/
                  ``schedule`` replace the cell's): the rate the paper claims to beat (MARS with
                  γ = 0, AdamW on MARS's schedule, ...).

    Rejected means the check's outcome on the alternative is FAIL.
    """

    key: str
    kind: str
    label: str
    exponent: float | None = None
    mutant: str | None = None
    algorithm: str | None = None
    hyper: dict | None = None
    schedule: dict | None = None

    def __post_init__(self) -> None:
        if self.kind not in ALTERNATIVE_KINDS:
            raise ValueError(f"alternative {self.key}: kind must be one of {ALTERNATIVE_KINDS}, got {self.kind!r}")
        if not self.key or any(c in self.key for c in " /\\:@"):
            raise ValueError(f"alternative key must be non-empty without spaces, slashes, colons or @, got {self.key!r}")
        needs = {"schedule": self.exponent is not None, "mutant": bool(self.mutant),
                 "method": bool(self.algorithm or self.hyper or self.schedule)}[self.kind]
        if not needs:
            raise ValueError(f"alternative {self.key}: a {self.kind} alternative needs "
                             + {"schedule": "exponent", "mutant": "mutant", "method": "algorithm, hyper or schedule"}[self.kind])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def mutant_alternative(name: str) -> Alternative:
    return Alternative(key=f"mutant-{name}", kind="mutant", label=f"planted bug {name}", mutant=name)


@dataclass(frozen=True)
class Check:
    """A claim about cells. ``low``/``high`` bound the estimated quantity (slope, slope gap, log-ratio...).

    ``high_from_bound``: the upper end is the theorem bound's own log-log slope over the fitted
    window plus ``slack`` (log factors make Õ-bounds flatter than their exponent on finite windows).
    ``require_disjoint`` (gap checks): a pass also needs the two cells' own slope intervals to be disjoint.

    **Power** (:mod:`verify.rates.power`). ``mutants`` are planted bugs the check must FAIL;
    ``alternatives`` other methods or settings it must reject; ``resolution`` the step-size exponent
    distance beyond which the correct algorithm on another schedule must be rejected (tested at
    ±(resolution + 0.05) and ±(resolution + 0.2) around the claimed exponent; ``None`` when a
    schedule alternative does not apply, with the reason in ``no_schedule_power``). A check is
    asserted only when its power was measured and every alternative was rejected, with at least one
    method-specific mutant among them.

    ``one_sided``: the reason a slope or gap band is open on one side (a band is two-sided wherever
    the cell makes the bound tight). ``stationarity``: the largest allowed difference between the
    local slopes of the window's two halves (default: the band's half-width, or the resolution for a
    one-sided band); beyond it a PASS becomes INCONCLUSIVE.
    """

    key: str
    algorithm: str
    theorem: str
    kind: str
    cells: tuple[str, ...]
    metric: str = "avg_sq_grad"
    statistic: str = "mean"
    window: tuple[int, int] | None = None
    low: float | None = None
    high: float | None = None
    high_from_bound: bool = False
    slack: float = 0.0
    max_width: float | None = 0.3
    require_disjoint: bool = False
    levels: tuple[str, ...] = ()
    provenance: str | None = None  #: overrides the theorem's tag (e.g. a comparison whose claim is the paper's)
    mutants: tuple[str, ...] = ()  #: planted bugs (verify.rates.mutants) this check must FAIL
    alternatives: tuple[Alternative, ...] = ()
    resolution: float | None = 0.1
    no_schedule_power: str = ""
    one_sided: str = ""
    stationarity: float | None = None
    #: the horizon from which the cell makes the bound tight (derived in the check's notes): a window that
    #: starts earlier is pre-asymptotic, and the slope claim is INCONCLUSIVE there
    tight_from: int | None = None
    #: order/dim checks: ``cells`` is consecutive groups of these sizes (candidate step sizes of one setting);
    #: each group is reduced to its best cell (smallest statistic at the largest horizon): a tuned η
    tune_groups: tuple[int, ...] = ()
    #: order checks: compare the two cells at equal gradient evaluations (exact MARS spends 2 per step)
    equal_calls: bool = False
    #: False: a measurement reported with its interval and no verdict ("MEASURED"), for quantities whose
    #: claim no planted bug was found to break (so a pass would certify nothing)
    assess: bool = True
    claim: str = ""
    notes: str = ""
    figure: str = ""

    def __post_init__(self) -> None:
        if self.kind not in CHECK_KINDS:
            raise ValueError(f"check {self.key}: kind must be one of {CHECK_KINDS}, got {self.kind!r}")
        if self.low is None and self.high is None and not self.high_from_bound and self.kind != "bound":
            raise ValueError(f"check {self.key}: needs a target (low, high or high_from_bound)")
        if isinstance(self.mutants, str):
            raise TypeError(f"check {self.key}: mutants must be a tuple of mutant names, got a str")
        if self.resolution is None and not self.no_schedule_power:
            raise ValueError(f"check {self.key}: resolution=None needs the reason in no_schedule_power")
        if self.resolution is not None and not self.resolution > 0:
            raise ValueError(f"check {self.key}: resolution must be > 0 or None, got {self.resolution!r}")
        two_sided = self.low is not None and (self.high is not None or self.high_from_bound)
        if self.kind in ("slope", "gap") and not two_sided and not self.one_sided:
            raise ValueError(f"check {self.key}: a one-sided {self.kind} band needs its reason in one_sided")
        if self.tune_groups:
            if self.kind not in ("order", "dim") or sum(self.tune_groups) != len(self.cells) or min(self.tune_groups) < 1:
                raise ValueError(f"check {self.key}: tune_groups {self.tune_groups} must partition its {len(self.cells)} "
                                 "cells (order and dim checks only)")
            if self.kind == "order" and len(self.tune_groups) != 2:
                raise ValueError(f"check {self.key}: an order check takes 2 tune groups")
            return
        if self.kind == "dim":
            if len(self.cells) < 2:
                raise ValueError(f"check {self.key}: a dim check takes at least 2 cells (one per dimension)")
            return
        needed = {"slope": 1, "bound": 1, "gap": 2, "order": 2, "delta": 1}[self.kind]
        if len(self.cells) != needed:
            raise ValueError(f"check {self.key}: a {self.kind} check takes {needed} cell(s), got {len(self.cells)}")

    @property
    def mutant(self) -> str:
        """The first declared planted bug (``""`` when none)."""
        return self.mutants[0] if self.mutants else ""

    @property
    def half_width(self) -> float | None:
        if self.low is not None and self.high is not None:
            return (self.high - self.low) / 2
        return None

    def stationarity_tolerance(self) -> float | None:
        if self.stationarity is not None:
            return self.stationarity
        return self.half_width if self.half_width is not None else self.resolution

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cells"] = list(self.cells)
        out["window"] = list(self.window) if self.window else None
        out["levels"] = list(self.levels)
        out["mutants"] = list(self.mutants)
        out["tune_groups"] = list(self.tune_groups)
        out["alternatives"] = [a.to_dict() for a in self.alternatives]
        return out
