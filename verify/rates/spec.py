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
each per seed at each horizon, on the exact gradient at the query points.

Schedules (``schedule["kind"]``, see :data:`verify.rates.theorems.SCHEDULES`):

``constant``              ``{"kind": "constant", "eta": η}``: anytime (one run of max(T) steps).
``one_over_L``            η = 1/L of the problem; anytime.
``inverse_sqrt_horizon``  ``{"eta0": η0, "beta2_horizon": bool}``: one run per T with η = η0/√T
                          (and β₂ = 1 − 1/T when ``beta2_horizon``).
``mars_theory``           ``{"eta0", "s", "c", "beta2"}``: η_t = η0 (s+t)^(−1/3), β1,t = 1 − min(1, c η_t²),
                          β2 constant (or ``"theory"``: 1 − η_t⁶); anytime.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["FORMAT_VERSION", "METRICS", "SCHEDULE_KINDS", "CHECK_KINDS", "Cell", "Check", "SEED_STRIDE", "seed_ids"]

#: bump when the meaning of a stored row changes (invalidates every cached cell)
FORMAT_VERSION = 1
METRICS = ("avg_sq_grad", "min_sq_grad", "avg_l1_sq", "avg_l21_sq")
SCHEDULE_KINDS = ("constant", "one_over_L", "inverse_sqrt_horizon", "mars_theory")
ANYTIME_KINDS = ("constant", "one_over_L", "mars_theory")
CHECK_KINDS = ("slope", "bound", "gap", "order", "delta", "dim")
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
class Check:
    """A claim about cells. ``low``/``high`` bound the estimated quantity (slope, slope gap, log-ratio...).

    ``high_from_bound``: the upper end is the theorem bound's own log-log slope over the fitted
    window plus ``slack`` (log factors make Õ-bounds flatter than their exponent on finite windows).
    ``require_disjoint`` (gap checks): a pass also needs the two cells' own slope intervals to be disjoint.
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
    mutant: str = ""  #: the planted bug (verify.rates.mutants) this check must FAIL
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
        if self.kind == "dim":
            if len(self.cells) < 2:
                raise ValueError(f"check {self.key}: a dim check takes at least 2 cells (one per dimension)")
            return
        needed = {"slope": 1, "bound": 1, "gap": 2, "order": 2, "delta": 1}[self.kind]
        if len(self.cells) != needed:
            raise ValueError(f"check {self.key}: a {self.kind} check takes {needed} cell(s), got {len(self.cells)}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cells"] = list(self.cells)
        out["window"] = list(self.window) if self.window else None
        out["levels"] = list(self.levels)
        return out
